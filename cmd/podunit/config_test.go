package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/podunit/podunit/cni"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The packaged config.yaml states the defaults: loading it must give the
// same units as no file at all.
func TestPackagedConfigIsTheDefaults(t *testing.T) {
	cfg, err := loadConfig("../../packaging/config.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	def := defaultConfig()
	got, want := cfg.unitConfig("/run/podunit/specs", nil), def.unitConfig("/run/podunit/specs", nil)
	if cfg.ManifestDir != def.ManifestDir || cfg.CRIEndpoint != def.CRIEndpoint || cfg.CgroupDriver != def.CgroupDriver {
		t.Errorf("packaged config %+v differs from the defaults %+v", cfg, def)
	}
	// The log keys restate podshim's defaults as flags; the pods' cluster
	// DNS is the default range's resolver either way.
	dns := []string{"--cluster-dns", "10.96.0.10", "--cluster-domain", "cluster.local"}
	if !slices.Equal(got.Podshim.Argv("podshim"), append([]string{"podshim", "--log-max-size", "10485760", "--log-max-files", "5"}, dns...)) ||
		!slices.Equal(want.Podshim.Argv("podshim"), append([]string{"podshim"}, dns...)) {
		t.Errorf("podshim args: packaged %q, default %q", got.Podshim.Argv("podshim"), want.Podshim.Argv("podshim"))
	}
}

// The credential provider plugins' configuration is read as the kubelet's:
// a CredentialProviderConfig, checked, with its executables' directory.
func TestCredentialProviderConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "providers.yaml")
	os.WriteFile(good, []byte(`apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
- name: ecr-credential-provider
  matchImages: ["*.dkr.ecr.*.amazonaws.com"]
  defaultCacheDuration: 12h
  apiVersion: credentialprovider.kubelet.k8s.io/v1
  args: [get-credentials]
`), 0o644)
	cfg := Config{ImageCredentialProviderConfigPath: good, ImageCredentialProviderBinDir: "/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec"}
	p, err := cfg.providers()
	if err != nil || len(p.Providers) != 1 || p.Providers[0].Name != "ecr-credential-provider" || p.BinDir != cfg.ImageCredentialProviderBinDir {
		t.Fatalf("providers %+v, %v", p, err)
	}
	if args, _ := cfg.podshimArgs(); args.CredentialProviders == "" {
		t.Error("podshim is not given the plugins' configuration")
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("kind: CredentialProviderConfig\nproviders:\n- name: x\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n"), 0o644)
	cfg.ImageCredentialProviderConfigPath = bad
	if _, err := cfg.providers(); err == nil || !strings.Contains(err.Error(), "matchImages") || !strings.Contains(err.Error(), bad) {
		t.Errorf("a provider without matchImages: %v", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for text, want := range map[string]string{
		"containerLogMaxSize: lots\n":   "containerLogMaxSize",
		"containerLogMaxFiles: 1\n":     "containerLogMaxFiles",
		"resolvConf: etc/resolv.conf\n": "resolvConf",
		"manifestDirs: /x\n":            "manifestDirs",
		"cgroupDriver: both\n":          "cgroupDriver",
		"restrictHostAccess: yes\n":     "restrictHostAccess",
		"imagePullOffline: never\n":     "imagePullOffline",
		"registryAuthFile: auth.json\n": "registryAuthFile",
		// The Services' keys.
		"serviceClusterIPRange: 10.96.0.0\n":                            "serviceClusterIPRange",
		"serviceClusterIPRange: fd00::/108\n":                           "serviceClusterIPRange",
		"serviceClusterIPRange: 10.0.0.0/8\n":                           "serviceClusterIPRange",
		"serviceClusterIPRange: 10.96.0.0/30\n":                         "serviceClusterIPRange",
		"serviceNodePortRange: 32767-30000\n":                           "serviceNodePortRange",
		"serviceNodePortRange: 30000-70000\n":                           "serviceNodePortRange",
		"clusterDomain: Cluster_Local\n":                                "clusterDomain",
		"clusterDNS: 10.96.0.256\n":                                     "clusterDNS",
		"clusterDNS: 127.0.0.53\n":                                      "clusterDNS",
		"clusterDNS: 10.96.0.0\n":                                       "clusterDNS",
		"serviceClusterIPRange: 10.96.0.0/29\n":                         "clusterDNS", // no 10th address
		"serviceClusterIPRange: 10.96.0.0/28\nclusterDNS: 10.96.0.15\n": "clusterDNS", // its broadcast address
	} {
		path := writeConfig(t, text)
		_, err := loadConfig(path, true)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: error %v, want one naming %s and the file", text, err, want)
		}
	}
}

// The Services' keys default as the kube-apiserver and kubeadm do, take
// what config.yaml gives, reach the manifests' reader, and must keep clear
// of the pods' network.
func TestServiceKeys(t *testing.T) {
	def, err := loadConfig(writeConfig(t, ""), true)
	if err != nil {
		t.Fatal(err)
	}
	sn, _ := def.services()
	if got := fmt.Sprint(sn.ClusterIPRange, " ", sn.NodePorts, " ", sn.ClusterDomain, " ", sn.ClusterDNS); got != "10.96.0.0/12 30000-32767 cluster.local 10.96.0.10" {
		t.Errorf("defaults: %s", got)
	}
	cfg, err := loadConfig(writeConfig(t, "serviceClusterIPRange: 172.20.0.0/16\nserviceNodePortRange: 31000-31099\nclusterDomain: edge.example.\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	sn, _ = cfg.services()
	if got := fmt.Sprint(sn.ClusterIPRange, " ", sn.NodePorts, " ", sn.ClusterDomain, " ", sn.ClusterDNS); got != "172.20.0.0/16 31000-31099 edge.example 172.20.0.10" {
		t.Errorf("given: %s", got)
	}
	r := cfg.reader()
	if got := fmt.Sprint(r.ServiceNetwork()); got != "172.20.0.0/16 31000-31099 172.20.0.10" {
		t.Errorf("the reader reads Services against %s", got)
	}
	// NodeLocal DNSCache's link-local address, outside the range.
	cfg, err = loadConfig(writeConfig(t, "clusterDNS: 169.254.20.10\n"), true)
	if sn, _ = cfg.services(); err != nil || sn.ClusterDNS.String() != "169.254.20.10" {
		t.Errorf("clusterDNS 169.254.20.10: %v, %v", sn.ClusterDNS, err)
	}

	network := func(conflist string) *cni.Network {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "10-pods.conflist"), []byte(conflist), 0o644)
		n, err := cni.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	packaged, err := cni.Load("../../packaging/cni")
	if err != nil {
		t.Fatal(err)
	}
	if err := sn.checkPodNetwork(packaged); err != nil {
		t.Errorf("the defaults against the packaged network: %v", err)
	}
	wide := network(`{"cniVersion":"1.0.0","name":"wide","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/8"}]]}}]}`)
	sn, _ = def.services()
	err = sn.checkPodNetwork(wide)
	if err == nil || !strings.Contains(err.Error(), "serviceClusterIPRange: 10.96.0.0/12 overlaps the pods' network 10.0.0.0/8") || !strings.Contains(err.Error(), "10-pods.conflist") {
		t.Errorf("a range inside the pods' network: %v", err)
	}
	// The sync serves no Service while they overlap, and says where.
	cniDir := filepath.Dir(wide.File)
	def.path = "/etc/podunit/config.yaml"
	sc, err := def.serviceConfig(cniDir)
	if err != nil || sc.Off == nil || !strings.HasPrefix(sc.Off.Error(), "/etc/podunit/config.yaml: serviceClusterIPRange: ") || fmt.Sprint(sc.PodNetwork) != "[10.0.0.0/8]" {
		t.Errorf("the sync's Services over an overlapping network: %+v, %v", sc, err)
	}
	if sc, _ := def.serviceConfig("../../packaging/cni"); sc.Off != nil || sc.Dir != "/var/lib/podunit/services" || sc.TablePath != "/run/podunit/services/services.json" || sc.ClusterDomain != "cluster.local" {
		t.Errorf("the sync's Services: %+v", sc)
	}
	cfg, _ = loadConfig(writeConfig(t, "clusterDNS: 10.88.0.53\n"), true)
	sn, _ = cfg.services()
	if err := sn.checkPodNetwork(packaged); err == nil || !strings.HasPrefix(err.Error(), "clusterDNS: 10.88.0.53 is in the pods' network") {
		t.Errorf("a resolver address in the pods' network: %v", err)
	}
}

// A kubelet's clusterDomain names the Services unless config.yaml does.
func TestKubeletClusterDomain(t *testing.T) {
	dir := t.TempDir()
	kubelet := filepath.Join(dir, "kubelet.yaml")
	os.WriteFile(kubelet, []byte("kind: KubeletConfiguration\nclusterDomain: corp.internal\nclusterDNS: [10.96.0.10]\n"), 0o644)
	cfg, notes, err := loadConfigWithKubelet(writeConfig(t, "kubeletConfig: "+kubelet+"\n"), true, "")
	sn, _ := cfg.services()
	if err != nil || sn.ClusterDomain != "corp.internal" || !strings.Contains(strings.Join(notes, "\n"), "clusterDomain corp.internal is the domain") {
		t.Errorf("the kubelet's clusterDomain: %q, %v, %q", sn.ClusterDomain, err, notes)
	}
	cfg, notes, err = loadConfigWithKubelet(writeConfig(t, "clusterDomain: edge.local\nkubeletConfig: "+kubelet+"\n"), true, "")
	sn, _ = cfg.services()
	if err != nil || sn.ClusterDomain != "edge.local" || !strings.Contains(strings.Join(notes, "\n"), "clusterDomain corp.internal is not used") {
		t.Errorf("config.yaml's clusterDomain: %q, %v, %q", sn.ClusterDomain, err, notes)
	}
	os.WriteFile(kubelet, []byte("kind: KubeletConfiguration\nclusterDomain: -bad-\n"), 0o644)
	if _, _, err := loadConfigWithKubelet(writeConfig(t, "kubeletConfig: "+kubelet+"\n"), true, ""); err == nil || !strings.Contains(err.Error(), kubelet) || !strings.Contains(err.Error(), "clusterDomain") {
		t.Errorf("a bad clusterDomain in the kubelet's: %v", err)
	}
}
