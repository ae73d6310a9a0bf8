package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"sigs.k8s.io/yaml"

	"github.com/podunit/podunit/cni"
	"github.com/podunit/podunit/cni/service"
	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/podshim/registry"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
	"github.com/podunit/podunit/units/engine"
)

// DefaultConfigPath is podunit's configuration file.
const DefaultConfigPath = "/etc/podunit/config.yaml"

// Config is /etc/podunit/config.yaml. Every key is optional.
type Config struct {
	// ManifestDir is the directory of Pod manifests; ManifestDirs are more,
	// read after it (the first definition of a pod's name wins).
	ManifestDir  string   `json:"manifestDir"`
	ManifestDirs []string `json:"manifestDirs"`
	// CRIEndpoint is the container runtime's CRI socket.
	CRIEndpoint string `json:"criEndpoint"`
	// CgroupDriver must match the runtime's: systemd or cgroupfs.
	CgroupDriver string `json:"cgroupDriver"`
	// ContainerLogMaxSize and ContainerLogMaxFiles rotate each container's
	// CRI log file, as the kubelet's keys of the same names (e.g. "10Mi", 5).
	ContainerLogMaxSize  string `json:"containerLogMaxSize"`
	ContainerLogMaxFiles int    `json:"containerLogMaxFiles"`
	// ManifestURL is a URL serving manifests (a Pod, a List, several YAML
	// documents), as the kubelet's staticPodURL; `podunit fetch` keeps its
	// last good answer where sync reads it. ManifestURLHeaders are sent with
	// each request (staticPodURLHeader). ManifestURLInterval and
	// ManifestURLTimeout default to the kubelet's 20 s and 10 s.
	ManifestURL         string              `json:"manifestURL"`
	ManifestURLHeaders  map[string][]string `json:"manifestURLHeaders"`
	ManifestURLInterval string              `json:"manifestURLInterval"`
	ManifestURLTimeout  string              `json:"manifestURLTimeout"`
	// ReadOnlyPort, when not 0, serves the read-only status API over TCP
	// too, as the kubelet's readOnlyPort (10255 in tutorials), on
	// ReadOnlyAddress (default 127.0.0.1: the API has no authentication).
	ReadOnlyPort    int    `json:"readOnlyPort"`
	ReadOnlyAddress string `json:"readOnlyAddress"`
	// KubeletConfig names a kubelet's KubeletConfiguration whose static pod
	// sources (staticPodPath, staticPodURL, …), runtime
	// (containerRuntimeEndpoint) and read-only port (readOnlyPort, address)
	// podunit takes over, so a standalone kubelet's configuration works
	// unchanged.
	KubeletConfig string `json:"kubeletConfig"`
	// ResolvConf is the host resolver configuration pods' DNS starts from,
	// as the kubelet's resolvConf; default systemd-resolved's upstream file
	// when present, else /etc/resolv.conf.
	ResolvConf string `json:"resolvConf"`
	// Strict makes every manifest notice (a field that only a scheduler or
	// an API server acts on, a skipped kind) an error: the file is invalid.
	Strict bool `json:"strict"`
	// NodeName is this node's name for nodeSelector, node affinity and
	// spec.nodeName; default the host name in lower case, as the kubelet's.
	NodeName string `json:"nodeName"`
	// NodeLabels are this node's labels beside kubernetes.io/hostname,
	// kubernetes.io/os and kubernetes.io/arch, which nodeSelector and
	// required node affinity are matched against.
	NodeLabels map[string]string `json:"nodeLabels"`
	// RestrictHostAccess refuses pods that reach the host (privileged
	// containers, added capabilities, hostPath volumes, the host's network,
	// PID or IPC namespace): "url" those from manifestURL, "all" every
	// pod; default none, as the kubelet lets static pods do anything.
	RestrictHostAccess string `json:"restrictHostAccess"`
	// ImagePullOffline is what a container whose image's policy is Always
	// does when its registry cannot be reached (a network error, not a
	// refusal) and the image is here: "local-copy" (the default) runs the
	// local copy with a notice and keeps pulling in the background; "fail"
	// waits for the registry, as the kubelet does.
	ImagePullOffline string `json:"imagePullOffline"`
	// RegistryAuthFile holds the node's registry credentials in the
	// containers-auth.json format (podman login --authfile), tried after a
	// pod's image pull Secrets; default /etc/podunit/auth.json.
	RegistryAuthFile string `json:"registryAuthFile"`
	// ImageCredentialProviderConfigPath and ImageCredentialProviderBinDir
	// are the kubelet's credential provider plugins: a
	// CredentialProviderConfig and the directory of its executables, as the
	// kubelet's keys of the same names. Their credentials are tried after
	// a pod's image pull Secrets and the auth file.
	ImageCredentialProviderConfigPath string `json:"imageCredentialProviderConfigPath"`
	ImageCredentialProviderBinDir     string `json:"imageCredentialProviderBinDir"`
	// ImagesDir holds image archives (OCI or docker) imported into the
	// runtime before the pods start: a box provisioned without a
	// registry; default /var/lib/podunit/images.
	ImagesDir string `json:"imagesDir"`
	// ServiceClusterIPRange is where Services' ClusterIPs come from, an
	// IPv4 prefix (default 10.96.0.0/12, the kube-apiserver's) that must
	// not overlap the pods' CNI network; ServiceNodePortRange is where
	// NodePort and LoadBalancer Services' node ports come from (default
	// 30000-32767), as the kube-apiserver's flags of the same names.
	ServiceClusterIPRange string `json:"serviceClusterIPRange"`
	ServiceNodePortRange  string `json:"serviceNodePortRange"`
	// ClusterDomain is the DNS domain of the Services' names
	// (<service>.<namespace>.svc.<clusterDomain>): default cluster.local,
	// or the clusterDomain of the kubelet configuration (kubeletConfig).
	ClusterDomain string `json:"clusterDomain"`
	// ClusterDNS is the address of the resolver pods are given (dnsPolicy
	// ClusterFirst), which no Service may have: default the 10th address
	// of serviceClusterIPRange (10.96.0.10), as kubeadm gives kube-dns.
	ClusterDNS string `json:"clusterDNS"`

	// path is the file the configuration was read from, for messages.
	path string
}

// Values of imagePullOffline.
const (
	pullOfflineLocalCopy = "local-copy"
	pullOfflineFail      = "fail"
)

// reader reads manifests as this configuration says: strictly or not, on
// this node.
func (c Config) reader() generator.Reader {
	name := c.NodeName
	if name == "" {
		h, _ := os.Hostname()
		name = strings.ToLower(h)
	}
	sn, _ := c.services() // checked by loadConfig
	return generator.Reader{Strict: c.Strict, Node: generator.NewNode(name, c.NodeLabels), RestrictHostAccess: c.RestrictHostAccess,
		ServiceClusterIPRange: sn.ClusterIPRange, NodePortRange: sn.NodePorts, ClusterDNS: sn.ClusterDNS}
}

// serviceNetwork is the node's Service addressing, as config.yaml (or its
// defaults) gives it.
type serviceNetwork struct {
	ClusterIPRange netip.Prefix
	NodePorts      generator.PortRange
	ClusterDomain  string
	ClusterDNS     netip.Addr
}

// The kube-apiserver's bounds of an IPv4 Service range: at most 2^20
// addresses (a /12); podunit's smallest holds a few Services (a /29).
const (
	minServiceRangeBits = 12
	maxServiceRangeBits = 29
)

// services reads and checks the Service keys: a usable IPv4 range, a port
// range, a DNS domain, and a resolver address that pods can reach and no
// Service has. Errors name the key.
func (c Config) services() (serviceNetwork, error) {
	sn := serviceNetwork{
		ClusterIPRange: generator.DefaultServiceClusterIPRange,
		NodePorts:      generator.DefaultNodePortRange,
		ClusterDomain:  cmp.Or(c.ClusterDomain, service.DefaultClusterDomain),
	}
	if c.ServiceClusterIPRange != "" {
		p, err := netip.ParsePrefix(strings.TrimSpace(c.ServiceClusterIPRange))
		switch {
		case err != nil:
			return sn, fmt.Errorf("serviceClusterIPRange: %q: must be an IPv4 prefix, e.g. 10.96.0.0/12", c.ServiceClusterIPRange)
		case !p.Addr().Is4():
			return sn, fmt.Errorf("serviceClusterIPRange: %q: podunit's Services are IPv4 only", c.ServiceClusterIPRange)
		case p.Bits() < minServiceRangeBits || p.Bits() > maxServiceRangeBits:
			return sn, fmt.Errorf("serviceClusterIPRange: %q: the prefix length must be between /%d and /%d", c.ServiceClusterIPRange, minServiceRangeBits, maxServiceRangeBits)
		}
		sn.ClusterIPRange = p.Masked()
	}
	if c.ServiceNodePortRange != "" {
		r, err := generator.ParsePortRange(c.ServiceNodePortRange)
		if err != nil {
			return sn, fmt.Errorf("serviceNodePortRange: %w", err)
		}
		sn.NodePorts = r
	}
	if msgs := validation.IsDNS1123Subdomain(strings.TrimSuffix(sn.ClusterDomain, ".")); len(msgs) > 0 {
		return sn, fmt.Errorf("clusterDomain: %q: %s", sn.ClusterDomain, strings.Join(msgs, "; "))
	}
	sn.ClusterDomain = strings.TrimSuffix(sn.ClusterDomain, ".")
	ipRange, last := sn.ClusterIPRange, generator.LastAddr(sn.ClusterIPRange)
	if c.ClusterDNS == "" {
		sn.ClusterDNS = generator.DefaultClusterDNS(ipRange)
		if !ipRange.Contains(sn.ClusterDNS) || sn.ClusterDNS == last {
			return sn, fmt.Errorf("clusterDNS: serviceClusterIPRange %s has no 10th address for the resolver (the default): give clusterDNS, or a larger range", ipRange)
		}
		return sn, nil
	}
	a, err := netip.ParseAddr(strings.TrimSpace(c.ClusterDNS))
	switch {
	case err != nil || !a.Is4():
		return sn, fmt.Errorf("clusterDNS: %q: must be an IPv4 address, e.g. %s", c.ClusterDNS, generator.DefaultClusterDNS(ipRange))
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return sn, fmt.Errorf("clusterDNS: %s: pods cannot reach a resolver there", a)
	case a == ipRange.Addr() || a == last:
		return sn, fmt.Errorf("clusterDNS: %s: the first and the last address of serviceClusterIPRange %s are no one's", a, ipRange)
	}
	sn.ClusterDNS = a
	return sn, nil
}

// checkPodNetwork tells whether the Service addresses stay clear of the
// pods' network (the CNI network the runtime gives pods): a ClusterIP or
// the resolver's address inside it would shadow a pod's.
func (sn serviceNetwork) checkPodNetwork(n *cni.Network) error {
	for _, subnet := range n.Subnets {
		switch {
		case subnet.Overlaps(sn.ClusterIPRange):
			return fmt.Errorf("serviceClusterIPRange: %s overlaps the pods' network %s (CNI network %q, %s): choose a range outside it%s",
				sn.ClusterIPRange, subnet, n.Name, n.File, outsideRange(subnet))
		case subnet.Contains(sn.ClusterDNS):
			return fmt.Errorf("clusterDNS: %s is in the pods' network %s (CNI network %q, %s): a pod may have that address", sn.ClusterDNS, subnet, n.Name, n.File)
		}
	}
	return nil
}

// serviceConfig is how the sync serves Services: its record and table in
// their places, the domain, and the pods' network of the CNI directory
// (when it has one); Off when the Service addresses overlap it.
func (c Config) serviceConfig(cniDir string) (engine.ServiceConfig, error) {
	sn, err := c.services()
	if err != nil {
		return engine.ServiceConfig{}, err // checked by loadConfig
	}
	sc := engine.ServiceConfig{Dir: engine.DefaultServiceDir, TablePath: service.DefaultTablePath, ClusterDomain: sn.ClusterDomain}
	n, err := cni.Load(cniDir)
	if err != nil {
		return sc, nil // no network yet: doctor says so, and pods fail on it
	}
	sc.PodNetwork = n.Subnets
	if err := sn.checkPodNetwork(n); err != nil {
		sc.Off = fmt.Errorf("%s: %w", cmp.Or(c.path, DefaultConfigPath), err)
	}
	return sc, nil
}

// outsideRange suggests a Service range clear of the pods' subnet: the
// default, else 172.20.0.0/16 or 192.168.240.0/20.
func outsideRange(subnet netip.Prefix) string {
	for _, p := range []string{generator.DefaultServiceClusterIPRange.String(), "172.20.0.0/16", "192.168.240.0/20"} {
		if !subnet.Overlaps(netip.MustParsePrefix(p)) {
			return ", e.g. " + p
		}
	}
	return ""
}

// sources are the manifest sources sync reads, in order: the manifest
// directory, the more directories, and the URL's cached answer.
func (c Config) sources(urlCache string) []generator.Source {
	sources := []generator.Source{{Dir: c.ManifestDir}}
	for _, d := range c.ManifestDirs {
		sources = append(sources, generator.Source{Dir: d})
	}
	if c.ManifestURL != "" {
		sources = append(sources, generator.Source{Dir: urlCache, Origin: c.ManifestURL})
	}
	return sources
}

// checkNode checks nodeName and nodeLabels as an API server checks a node's.
func (c Config) checkNode() error {
	if c.NodeName != "" {
		if msgs := validation.IsDNS1123Subdomain(c.NodeName); len(msgs) > 0 {
			return fmt.Errorf("nodeName: %q: %s", c.NodeName, strings.Join(msgs, "; "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.NodeLabels)) { // the first bad one by name
		v := c.NodeLabels[k]
		if msgs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(msgs) > 0 {
			return fmt.Errorf("nodeLabels: %s=%s: %s", k, v, strings.Join(msgs, "; "))
		}
	}
	return nil
}

// podshimArgs are the podshim arguments the configuration sets.
func (c Config) podshimArgs() (podspec.Args, error) {
	var args podspec.Args
	if c.ContainerLogMaxSize != "" {
		q, err := resource.ParseQuantity(c.ContainerLogMaxSize)
		if err != nil || q.Value() < 1<<10 {
			return args, fmt.Errorf("containerLogMaxSize: %q: must be a size of at least 1Ki, e.g. 10Mi", c.ContainerLogMaxSize)
		}
		args.LogMaxSize = q.Value()
	}
	if c.ContainerLogMaxFiles != 0 {
		if c.ContainerLogMaxFiles < 2 {
			return args, fmt.Errorf("containerLogMaxFiles: %d: must be at least 2", c.ContainerLogMaxFiles)
		}
		args.LogMaxFiles = c.ContainerLogMaxFiles
	}
	if c.ResolvConf != "" {
		if !filepath.IsAbs(c.ResolvConf) {
			return args, fmt.Errorf("resolvConf: %q: must be an absolute path", c.ResolvConf)
		}
		args.ResolvConf = c.ResolvConf
	}
	sn, err := c.services()
	if err != nil {
		return args, err
	}
	args.ClusterDNS, args.ClusterDomain = sn.ClusterDNS.String(), sn.ClusterDomain
	switch c.ImagePullOffline {
	case "", pullOfflineLocalCopy:
	case pullOfflineFail:
		args.PullOfflineFail = true
	default:
		return args, fmt.Errorf("imagePullOffline: %q: must be local-copy or fail", c.ImagePullOffline)
	}
	if c.RegistryAuthFile != "" && !filepath.IsAbs(c.RegistryAuthFile) {
		return args, fmt.Errorf("registryAuthFile: %q: must be an absolute path", c.RegistryAuthFile)
	}
	if c.RegistryAuthFile != "" && c.RegistryAuthFile != registry.DefaultAuthFile {
		args.AuthFile = c.RegistryAuthFile // podshim's default otherwise
	}
	if c.ImageCredentialProviderConfigPath != "" {
		args.CredentialProviders = registry.DefaultProvidersPath // written by sync
	}
	return args, nil
}

func defaultConfig() Config {
	return Config{
		ManifestDir:  "/etc/podunit/manifests",
		CRIEndpoint:  criclient.DefaultEndpoint,
		CgroupDriver: units.CgroupDriverSystemd,

		RegistryAuthFile: registry.DefaultAuthFile,
		ImagesDir:        DefaultImagesDir,
	}
}

// providers reads the credential provider plugins' configuration; nil
// when none is configured.
func (c Config) providers() (*registry.Providers, error) {
	if c.ImageCredentialProviderConfigPath == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.ImageCredentialProviderConfigPath)
	if err != nil {
		return nil, fmt.Errorf("imageCredentialProviderConfigPath: %w", err)
	}
	var pc struct {
		Kind string `json:"kind"`
		registry.Providers
	}
	if err := yaml.Unmarshal(b, &pc); err != nil {
		return nil, fmt.Errorf("imageCredentialProviderConfigPath %s: %w", c.ImageCredentialProviderConfigPath, err)
	}
	if pc.Kind != "CredentialProviderConfig" {
		return nil, fmt.Errorf("imageCredentialProviderConfigPath %s: kind %q, want CredentialProviderConfig", c.ImageCredentialProviderConfigPath, pc.Kind)
	}
	p := &pc.Providers
	p.BinDir = c.ImageCredentialProviderBinDir
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("imageCredentialProviderConfigPath %s: %w", c.ImageCredentialProviderConfigPath, err)
	}
	return p, nil
}

// authFile is the node's registry credentials file.
func (c Config) authFile() string {
	if c.RegistryAuthFile == "" {
		return registry.DefaultAuthFile
	}
	return c.RegistryAuthFile
}

// DefaultImagesDir is where image archives are dropped to be imported.
const DefaultImagesDir = "/var/lib/podunit/images"

// loadConfig reads path over the defaults. A missing file at the default
// path is the defaults; a missing file named explicitly is an error.
func loadConfig(path string, explicit bool) (Config, error) {
	cfg := defaultConfig()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := units.CgroupParent(cfg.CgroupDriver, "default", "x"); err != nil {
		return cfg, fmt.Errorf("config %s: cgroupDriver: %w", path, err)
	}
	if _, err := cfg.podshimArgs(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.checkURL(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.ReadOnlyPort < 0 || cfg.ReadOnlyPort > 65535 {
		return cfg, fmt.Errorf("config %s: readOnlyPort: %d: must be between 0 (off) and 65535", path, cfg.ReadOnlyPort)
	}
	switch cfg.RestrictHostAccess {
	case generator.HostAccessAllowed, generator.HostAccessNoneURL, generator.HostAccessNoneAll:
	default:
		return cfg, fmt.Errorf("config %s: restrictHostAccess: %q: must be url or all (or absent)", path, cfg.RestrictHostAccess)
	}
	if err := cfg.checkNode(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := cfg.services(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.ReadOnlyAddress != "" && net.ParseIP(cfg.ReadOnlyAddress) == nil {
		return cfg, fmt.Errorf("config %s: readOnlyAddress: %q: must be an IP address", path, cfg.ReadOnlyAddress)
	}
	return cfg, nil
}

// loadConfigWithKubelet is loadConfig, then what podunit takes over from the
// kubelet configuration named by the kubeletConfig key or, when not empty,
// by kubeletFlag (--kubelet-config): its static pod sources, its runtime,
// its read-only port (applyKubeletConfig). It returns the notes of
// applyKubeletConfig, for -v.
func loadConfigWithKubelet(path string, explicit bool, kubeletFlag string) (Config, []string, error) {
	cfg, err := loadConfig(path, explicit)
	if err != nil {
		return cfg, nil, err
	}
	if kubeletFlag != "" {
		cfg.KubeletConfig = kubeletFlag
	}
	if cfg.KubeletConfig == "" {
		return cfg, nil, nil
	}
	notes, err := applyKubeletConfig(&cfg, cfg.KubeletConfig)
	return cfg, notes, err
}

// unitConfig is how this configuration makes pods into units for the
// given manager (nil: one without RestartSteps=, whose units every systemd
// takes); the configuration was checked by loadConfig.
func (c Config) unitConfig(specDir string, manager bus.Inspector) generator.UnitConfig {
	args, _ := c.podshimArgs()
	var version string
	if manager != nil {
		version, _ = bus.Version(manager)
	}
	return generator.UnitConfig{
		RestartSteps: generator.SystemdHasRestartSteps(version),
		PodshimPath:  podshimPath,
		Podshim:      args,
		SpecDir:      specDir,
		CRIEndpoint:  c.CRIEndpoint,
		CgroupDriver: c.CgroupDriver,
		JobDir:       podspec.DefaultJobDir,
	}
}

// urlTiming is the fetch interval and timeout.
func (c Config) urlTiming() (interval, timeout time.Duration) {
	interval, timeout = 20*time.Second, 10*time.Second
	if d, err := time.ParseDuration(c.ManifestURLInterval); err == nil {
		interval = d
	}
	if d, err := time.ParseDuration(c.ManifestURLTimeout); err == nil {
		timeout = d
	}
	return interval, timeout
}

func (c Config) checkURL() error {
	if c.ManifestURL != "" {
		u, err := url.Parse(c.ManifestURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("manifestURL: %q: must be an http:// or https:// URL", c.ManifestURL)
		}
	}
	for key, value := range map[string]string{"manifestURLInterval": c.ManifestURLInterval, "manifestURLTimeout": c.ManifestURLTimeout} {
		if value == "" {
			continue
		}
		if d, err := time.ParseDuration(value); err != nil || d < 100*time.Millisecond {
			return fmt.Errorf("%s: %q: must be a duration of at least 100ms, e.g. 20s", key, value)
		}
	}
	return nil
}

func (c Config) readOnlyAddress() string {
	if c.ReadOnlyAddress == "" {
		return "127.0.0.1"
	}
	return c.ReadOnlyAddress
}
