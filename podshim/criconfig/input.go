package criconfig

import (
	"cmp"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/cni/service"
	"github.com/podunit/podunit/podshim/podspec"
)

// Input is everything the translation reads.
type Input struct {
	// Pod is the defaulted, validated pod (a spec file's).
	Pod *corev1.Pod
	// Objects are the ConfigMaps and Secrets it uses.
	Objects podspec.Objects
	// Host describes the machine: the downward API's node name and host
	// IPs, the capacity an unset limit stands for, OOM scores.
	Host Host
	// HostDNS is the host's resolver configuration (ParseResolvConf); nil:
	// none.
	HostDNS *runtimeapi.DNSConfig
	// ClusterDNS are the addresses of the cluster's resolver (the
	// kubelet's clusterDNS: podunit's resolver, e.g. 10.96.0.10), the
	// name server of pods with dnsPolicy ClusterFirst; none: there is no
	// cluster DNS, and ClusterFirst falls back to Default as the kubelet
	// does.
	ClusterDNS []string
	// ClusterDomain is the cluster's DNS domain (the kubelet's
	// clusterDomain); "": ClusterDomain.
	ClusterDomain string
	// Services are the node's Services (its Service table) when the
	// container is created: the Service environment variables come from
	// them (ServiceEnv); nil: none.
	Services []service.Service
	// PodIPs are the sandbox's addresses once it has them (status.podIP);
	// a hostNetwork pod has the host's.
	PodIPs []string
	// Paths are where the pod's files are on the host.
	Paths Paths
	// ImageVolumes are the images the pod's image volumes mount, by volume
	// name, as the runtime has them once pulled (their IDs); a volume not
	// in it mounts its reference.
	ImageVolumes map[string]string
	// Log receives warnings (an envFrom key that is no variable name, more
	// than 3 name servers); nil: none.
	Log *slog.Logger
}

// Paths are the host paths a pod's configs name.
type Paths struct {
	// PodDir is the pod's own directory: its /etc/hosts, volumes and
	// termination-message files, in the kubelet's layout.
	PodDir string
	// VolumeRoot holds the PersistentVolumeClaims' directories.
	VolumeRoot string
	// LogRoot is the kubelet-style container log root (/var/log/pods).
	LogRoot string
	// CgroupParent is the sandbox's: the pod's slice (systemd cgroup
	// driver) or its cgroup path (cgroupfs).
	CgroupParent string
}

// Host is what the translation knows of the machine.
type Host struct {
	NodeName string
	IPs      []string
	CPUs     int
	Memory   int64 // bytes
}

func (in *Input) log() *slog.Logger {
	if in.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return in.Log
}

// VolumeDir is a volume's directory in the pod directory, in the kubelet's
// layout: volumes/kubernetes.io~<plugin>/<name>.
func VolumeDir(podDir, plugin, name string) string {
	return filepath.Join(podDir, "volumes", "kubernetes.io~"+plugin, name)
}

// ClaimDir is the host directory of a PersistentVolumeClaim.
func ClaimDir(root, namespace, claim string) string {
	return filepath.Join(root, namespace, claim)
}

// EtcHostsPath is the pod's managed /etc/hosts in its directory.
func EtcHostsPath(podDir string) string { return filepath.Join(podDir, "etc-hosts") }

// TerminationLog is the host file mounted at a container's
// terminationMessagePath for one attempt, so that a restarted container
// never shows its predecessor's message.
func TerminationLog(podDir, container string, attempt uint32) string {
	return filepath.Join(podDir, "containers", container, fmt.Sprintf("termination-log-%d", attempt))
}

// Plugin is the kubelet's name for a volume's directory; "" for volumes
// that have none in the pod directory (hostPath, claims).
func Plugin(v *corev1.Volume) string {
	switch {
	case v.EmptyDir != nil:
		return "empty-dir"
	case v.DownwardAPI != nil:
		return "downward-api"
	case v.ConfigMap != nil:
		return "configmap"
	case v.Secret != nil:
		return "secret"
	case v.Projected != nil:
		return "projected"
	}
	return ""
}

// ClusterDomain is the kubelet's default clusterDomain: it completes a
// pod's fully qualified name and its search list.
const ClusterDomain = "cluster.local"

// Hostnames are the pod's host name and, with a subdomain, its fully
// qualified name in the default cluster domain.
func Hostnames(pod *corev1.Pod) (hostname, fqdn string) {
	return HostnamesIn(pod, ClusterDomain)
}

// HostnamesIn are the pod's host name and, with a subdomain, its fully
// qualified name in the cluster domain given.
func HostnamesIn(pod *corev1.Pod, domain string) (hostname, fqdn string) {
	hostname = pod.Spec.Hostname
	if hostname == "" {
		hostname = pod.Name
	}
	if len(hostname) > 63 {
		hostname = strings.TrimRight(hostname[:63], "-.")
	}
	if sub := pod.Spec.Subdomain; sub != "" {
		fqdn = fmt.Sprintf("%s.%s.%s.svc.%s", hostname, sub, pod.Namespace, cmp.Or(strings.Trim(domain, "."), ClusterDomain))
	}
	return hostname, fqdn
}

// GracePeriod is the pod's termination grace period in seconds (30 when
// unset, as the API server defaults it).
func GracePeriod(pod *corev1.Pod) int64 {
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return *g
	}
	return 30
}

// DefaultTerminationMessagePath is the API server's default.
const DefaultTerminationMessagePath = "/dev/termination-log"

// TerminationMessagePath is where c writes its termination message.
func TerminationMessagePath(c *corev1.Container) string {
	if c.TerminationMessagePath != "" {
		return c.TerminationMessagePath
	}
	return DefaultTerminationMessagePath
}
