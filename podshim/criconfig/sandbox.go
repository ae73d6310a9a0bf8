package criconfig

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/fnv"
	"maps"
	"path/filepath"
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

// dnsConfig is the pod's resolver configuration, as the kubelet makes it
// without cluster DNS: the host's for ClusterFirst, ClusterFirstWithHostNet
// and Default; nothing for None; then dnsConfig merged in.
func (in *Input) dnsConfig() *runtimeapi.DNSConfig {
	out := &runtimeapi.DNSConfig{}
	if in.Pod.Spec.DNSPolicy != corev1.DNSNone && in.HostDNS != nil {
		out.Servers = append(out.Servers, in.HostDNS.Servers...)
		out.Searches = append(out.Searches, in.HostDNS.Searches...)
		out.Options = append(out.Options, in.HostDNS.Options...)
	}
	if c := in.Pod.Spec.DNSConfig; c != nil {
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
	if len(out.Servers) > 3 {
		in.log().Warn("more than 3 name servers; using the first 3", "servers", out.Servers)
		out.Servers = out.Servers[:3]
	}
	out.Searches = dedupe(out.Searches)
	if len(out.Searches) > 32 {
		out.Searches = out.Searches[:32]
	}
	return out
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
			out.Searches = f[1:] // the last one wins, as in the resolver
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
