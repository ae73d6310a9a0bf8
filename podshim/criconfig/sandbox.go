package criconfig

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRI labels and annotations, as the kubelet sets them, so that CRI tools and
// log collectors recognise podunit's pods.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
	// LabelManaged marks every sandbox and container podunit created.
	LabelManaged = "podunit.io/managed"

	// AnnotationContainerHash is a container's ContainerHash: a container
	// whose annotation differs from its spec's is recreated.
	AnnotationContainerHash = "io.kubernetes.container.hash"
	annotationRestartCount  = "io.kubernetes.container.restartCount"
	annotationGracePeriod   = "io.kubernetes.pod.terminationGracePeriod"
)

// PodLabels are the CRI labels of the pod's sandbox and containers: the
// pod's own and the kubelet's.
func PodLabels(pod *corev1.Pod) map[string]string {
	labels := make(map[string]string, len(pod.Labels)+4)
	maps.Copy(labels, pod.Labels)
	labels[LabelPodName] = pod.Name
	labels[LabelPodNamespace] = pod.Namespace
	labels[LabelPodUID] = string(pod.UID)
	labels[LabelManaged] = "true"
	return labels
}

// Sandbox is the pod's sandbox config for an attempt.
func Sandbox(in *Input, attempt uint32) *runtimeapi.PodSandboxConfig {
	pod := in.Pod
	var ports []*runtimeapi.PortMapping
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			ports = append(ports, &runtimeapi.PortMapping{
				Protocol:      protocol(p.Protocol),
				ContainerPort: p.ContainerPort,
				HostPort:      p.HostPort,
				HostIp:        p.HostIP,
			})
		}
	}
	hostname, _ := Hostnames(pod)
	if pod.Spec.HostNetwork {
		hostname = "" // the host's UTS namespace: its own name
	}
	var sysctls map[string]string
	if sc := pod.Spec.SecurityContext; sc != nil && len(sc.Sysctls) > 0 {
		sysctls = make(map[string]string, len(sc.Sysctls))
		for _, sysctl := range sc.Sysctls {
			sysctls[sysctl.Name] = sysctl.Value
		}
	}
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt,
		},
		Hostname:     hostname,
		DnsConfig:    in.dnsConfig(),
		LogDirectory: filepath.Join(in.Paths.LogRoot, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		PortMappings: ports,
		Labels:       PodLabels(pod),
		Annotations:  pod.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    in.Paths.CgroupParent,
			SecurityContext: in.sandboxSecurityContext(),
			Sysctls:         sysctls,
		},
	}
}

func protocol(p corev1.Protocol) runtimeapi.Protocol {
	if p == corev1.ProtocolUDP {
		return runtimeapi.Protocol_UDP
	}
	return runtimeapi.Protocol_TCP
}

// Limits of the resolver configuration the kubelet composes for a pod:
// glibc reads 3 name servers; since Kubernetes 1.28 (KEP-2595, expanded
// DNS configuration) a search list may hold 32 domains and 2048
// characters, and a search domain longer than 253 characters is dropped
// (glibc 2.28 aborts on one).
const (
	maxNameservers     = 3
	maxSearches        = 32
	maxSearchListChars = 2048
	maxSearchChars     = 253
)

// ndotsCluster is the option the kubelet gives a pod that uses cluster
// DNS: names with fewer than 5 dots are tried with the search list first.
const ndotsCluster = "ndots:5"

// dnsConfig is the pod's resolver configuration, as the kubelet's DNS
// configurer composes it:
//   - ClusterFirst (the default), and ClusterFirstWithHostNet on any pod:
//     the cluster's resolver (ClusterDNS) as the only name server, the
//     search list <ns>.svc.<domain> svc.<domain> <domain> followed by the
//     node's, and options ndots:5 only;
//   - ClusterFirst on a hostNetwork pod, and Default: the node's
//     configuration (HostDNS);
//   - None: nothing;
//   - with no ClusterDNS (Services off), ClusterFirst falls back to
//     Default, with a warning, as the kubelet does without clusterDNS;
//
// then the pod's dnsConfig appended (name servers and search domains
// without duplicates, options replacing those of the same name), and
// the limits applied (maxNameservers, maxSearches, maxSearchListChars,
// maxSearchChars), with a warning when they cut something.
func (in *Input) dnsConfig() *runtimeapi.DNSConfig {
	spec := &in.Pod.Spec
	out := &runtimeapi.DNSConfig{}
	host := func() {
		if in.HostDNS != nil {
			out.Servers = slices.Clone(in.HostDNS.Servers)
			out.Searches = slices.Clone(in.HostDNS.Searches)
			out.Options = slices.Clone(in.HostDNS.Options)
		}
	}
	clusterFirst := spec.DNSPolicy == corev1.DNSClusterFirstWithHostNet ||
		((spec.DNSPolicy == corev1.DNSClusterFirst || spec.DNSPolicy == "") && !spec.HostNetwork)
	switch {
	case spec.DNSPolicy == corev1.DNSNone:
	case clusterFirst && len(in.ClusterDNS) > 0:
		domain := in.clusterDomain()
		out.Servers = slices.Clone(in.ClusterDNS)
		out.Searches = []string{in.Pod.Namespace + ".svc." + domain, "svc." + domain, domain}
		if in.HostDNS != nil {
			out.Searches = append(out.Searches, in.HostDNS.Searches...)
		}
		out.Options = []string{ndotsCluster}
	case clusterFirst:
		in.log().Warn("no cluster DNS is configured (Services are off): dnsPolicy falls back to Default, the node's resolver configuration, as the kubelet does without clusterDNS",
			"dnsPolicy", cmp.Or(spec.DNSPolicy, corev1.DNSClusterFirst))
		host()
	default:
		host()
	}
	if c := spec.DNSConfig; c != nil {
		out.Servers = append(out.Servers, c.Nameservers...)
		out.Searches = append(out.Searches, c.Searches...)
		for _, o := range c.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			out.Options = mergeOption(out.Options, o.Name, opt)
		}
	}
	out.Servers = dedupe(out.Servers)
	if len(out.Servers) > maxNameservers {
		out.Servers = out.Servers[:maxNameservers]
		in.log().Warn("more than 3 name servers: the first 3 are used", "servers", strings.Join(out.Servers, " "))
	}
	var cut bool
	out.Searches, cut = fitSearches(dedupe(out.Searches))
	if cut {
		in.log().Warn("the search list exceeds the resolver's limits (32 domains, 2048 characters, 253 per domain): some domains are left out",
			"search", strings.Join(out.Searches, " "))
	}
	return out
}

// clusterDomain is the cluster's DNS domain; "" is ClusterDomain.
func (in *Input) clusterDomain() string {
	return cmp.Or(strings.Trim(in.ClusterDomain, "."), ClusterDomain)
}

// fitSearches cuts a search list to the limits as the kubelet does: the
// first 32 domains, without those over 253 characters, then domains off
// the end until the line fits 2048 characters; cut tells whether any was
// left out.
func fitSearches(search []string) (out []string, cut bool) {
	if len(search) > maxSearches {
		search, cut = search[:maxSearches], true
	}
	for _, s := range search {
		if len(s) > maxSearchChars {
			cut = true
			continue
		}
		out = append(out, s)
	}
	for len(out) > 0 && len(strings.Join(out, " ")) > maxSearchListChars {
		out, cut = out[:len(out)-1], true
	}
	return out, cut
}

// ParseResolvConf reads the nameserver, search and options lines of a
// resolv.conf; options are kept in CRI form (name or name:value).
func ParseResolvConf(b []byte) *runtimeapi.DNSConfig {
	out := &runtimeapi.DNSConfig{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line, _, _ = strings.Cut(line, ";")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			out.Servers = append(out.Servers, f[1])
		case "search", "domain":
			// The last one wins, as in the resolver; a trailing dot is
			// dropped as the kubelet drops it (but from "."), so that
			// cluster.local. and cluster.local count once.
			out.Searches = nil
			for _, d := range f[1:] {
				if d != "." {
					d = strings.TrimSuffix(d, ".")
				}
				out.Searches = append(out.Searches, d)
			}
		case "options":
			for _, o := range f[1:] {
				name, _, _ := strings.Cut(o, ":")
				out.Options = mergeOption(out.Options, name, o)
			}
		}
	}
	return out
}

// mergeOption replaces the option called name in opts by opt, or adds it.
func mergeOption(opts []string, name, opt string) []string {
	for i, o := range opts {
		if n, _, _ := strings.Cut(o, ":"); n == name {
			opts[i] = opt
			return opts
		}
	}
	return append(opts, opt)
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	out := list[:0]
	for _, v := range list {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// namespaceOptions are the pod's namespaces, for the sandbox and each
// container.
func (in *Input) namespaceOptions() *runtimeapi.NamespaceOption {
	spec := &in.Pod.Spec
	ns := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
	if spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	switch {
	case spec.HostPID:
		ns.Pid = runtimeapi.NamespaceMode_NODE
	case spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace:
		ns.Pid = runtimeapi.NamespaceMode_POD
	}
	if spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	if spec.HostUsers != nil && !*spec.HostUsers {
		ns.UsernsOptions = userNamespace(in.Pod.UID)
	}
	return ns
}

// userNamespace maps the pod's users to 65536 host IDs of their own, as the
// kubelet's user namespace manager does for hostUsers: false. The range is
// chosen from the pod's UID (1 of 32767 ranges above the first 65536 IDs),
// so that it stays the same when podshim adopts the pod.
func userNamespace(uid types.UID) *runtimeapi.UserNamespace {
	h := fnv.New32a()
	h.Write([]byte(uid))
	base := int64(h.Sum32()%32767+1) * 65536
	mapping := []*runtimeapi.IDMapping{{HostId: uint32(base), ContainerId: 0, Length: 65536}}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping}
}

func (in *Input) privileged() bool {
	for _, list := range [][]corev1.Container{in.Pod.Spec.InitContainers, in.Pod.Spec.Containers} {
		for _, c := range list {
			if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
				return true
			}
		}
	}
	return false
}

func (in *Input) sandboxSecurityContext() *runtimeapi.LinuxSandboxSecurityContext {
	sc := &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: in.namespaceOptions(),
		// The runtime refuses a privileged container in an unprivileged
		// sandbox, as for the kubelet.
		Privileged: in.privileged(),
	}
	if psc := in.Pod.Spec.SecurityContext; psc != nil {
		sc.RunAsUser = int64Value(psc.RunAsUser)
		sc.RunAsGroup = int64Value(psc.RunAsGroup)
		sc.SupplementalGroups = supplementalGroups(in.Pod)
		sc.Seccomp = seccomp(psc.SeccompProfile)
		sc.SelinuxOptions = selinux(psc.SELinuxOptions)
	}
	return sc
}
