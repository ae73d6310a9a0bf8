package podshim

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The kubelet's CPU and OOM constants.
const (
	minShares      = 2
	sharesPerCPU   = 1024
	quotaPeriod    = 100000 // µs
	minQuota       = 1000   // µs
	guaranteedOOM  = -997
	besteffortOOM  = 1000
	burstableOOMLo = 2
	burstableOOMHi = 999
)

// Host is what podshim knows of the machine, for the downward API and the
// OOM score of Burstable pods.
type Host struct {
	NodeName string
	IPs      []string
	CPUs     int
	Memory   int64 // bytes
}

// ReadHost describes this machine.
func ReadHost() Host {
	h := Host{CPUs: runtime.NumCPU(), Memory: memTotal(), IPs: hostIPs()}
	h.NodeName, _ = os.Hostname()
	return h
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// qosClass is the pod's QoS class, as Kubernetes computes it from the cpu
// and memory requests and limits of all its containers.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	any, guaranteed := false, true
	lists := [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers}
	if r := pod.Spec.Resources; r != nil && (len(r.Requests) > 0 || len(r.Limits) > 0) {
		// Pod-level resources decide, as in Kubernetes.
		lists = [][]corev1.Container{{{Resources: *r}}}
	}
	for _, list := range lists {
		for _, c := range list {
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[name]
				limit, hasLimit := c.Resources.Limits[name]
				if (hasReq && !req.IsZero()) || (hasLimit && !limit.IsZero()) {
					any = true
				}
				if !hasLimit || limit.IsZero() || (hasReq && req.Cmp(limit) != 0) {
					guaranteed = false
				}
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// linuxResources are the container's cgroup settings, as the kubelet
// computes them.
func (s *Shim) linuxResources(c *corev1.Container) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{CpuShares: minShares}
	if req, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		r.CpuShares = max(minShares, req.MilliValue()*sharesPerCPU/1000)
	}
	if limit, ok := c.Resources.Limits[corev1.ResourceCPU]; ok && !limit.IsZero() {
		r.CpuPeriod = quotaPeriod
		r.CpuQuota = max(minQuota, limit.MilliValue()*quotaPeriod/1000)
	}
	if limit, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		r.MemoryLimitInBytes = limit.Value()
	}
	r.OomScoreAdj = s.oomScoreAdj(c)
	return r
}

// oomScoreAdj is the kubelet's: node-critical pods (every pod here is a
// static pod, so priorityClassName system-node-critical makes one, as for
// kubeadm's control plane) and Guaranteed pods last, BestEffort first,
// Burstable by the share of the host's memory the container requests.
func (s *Shim) oomScoreAdj(c *corev1.Container) int64 {
	if s.pod.Spec.PriorityClassName == "system-node-critical" {
		return guaranteedOOM
	}
	switch qosClass(s.pod) {
	case corev1.PodQOSGuaranteed:
		return guaranteedOOM
	case corev1.PodQOSBestEffort:
		return besteffortOOM
	}
	req := c.Resources.Requests[corev1.ResourceMemory]
	if s.cfg.Host.Memory <= 0 {
		return burstableOOMHi
	}
	adj := 1000 - 1000*req.Value()/s.cfg.Host.Memory
	return min(max(adj, burstableOOMLo), burstableOOMHi)
}

// fieldValue is an env fieldRef's value.
func (s *Shim) fieldValue(path string) string {
	pod := s.pod
	switch path {
	case "metadata.name":
		return pod.Name
	case "metadata.namespace":
		return pod.Namespace
	case "metadata.uid":
		return string(pod.UID)
	case "spec.nodeName":
		return s.cfg.Host.NodeName
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName
	case "status.podIP":
		if ips := s.ips(); len(ips) > 0 {
			return ips[0]
		}
		return ""
	case "status.podIPs":
		return strings.Join(s.ips(), ",")
	case "status.hostIP":
		if len(s.cfg.Host.IPs) > 0 {
			return s.cfg.Host.IPs[0]
		}
		return ""
	case "status.hostIPs":
		return strings.Join(s.cfg.Host.IPs, ",")
	}
	for kind, m := range map[string]map[string]string{"labels": pod.Labels, "annotations": pod.Annotations} {
		prefix := "metadata." + kind + "['"
		if strings.HasPrefix(path, prefix) && strings.HasSuffix(path, "']") {
			return m[strings.TrimSuffix(strings.TrimPrefix(path, prefix), "']")]
		}
	}
	return ""
}

// ips are the pod's addresses: the sandbox's, or the host's for a
// hostNetwork pod.
func (s *Shim) ips() []string {
	if s.pod.Spec.HostNetwork {
		return s.cfg.Host.IPs
	}
	return s.podIPs
}

// resourceValue is a resourceFieldRef's value, in whole divisors rounded up;
// an unset limit is the host's capacity, as in Kubernetes. c is the
// container the reference is in, for an empty containerName.
func (s *Shim) resourceValue(ref *corev1.ResourceFieldSelector, c *corev1.Container) (string, error) {
	if ref.ContainerName != "" {
		c = nil
		for _, list := range [][]corev1.Container{s.pod.Spec.InitContainers, s.pod.Spec.Containers} {
			for i := range list {
				if list[i].Name == ref.ContainerName {
					c = &list[i]
				}
			}
		}
	}
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef: no container %q", ref.ContainerName)
	}
	kind, name, _ := strings.Cut(ref.Resource, ".")
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok || (kind == "limits" && q.IsZero()) {
		if kind == "requests" {
			q = resource.Quantity{}
		} else if name == "cpu" {
			q = *resource.NewQuantity(int64(s.cfg.Host.CPUs), resource.DecimalSI)
		} else {
			q = *resource.NewQuantity(s.cfg.Host.Memory, resource.BinarySI)
		}
	}
	return strconv.FormatInt(inDivisors(q, ref.Divisor), 10), nil
}

// inDivisors is q counted in divisors (default 1), rounded up.
func inDivisors(q, divisor resource.Quantity) int64 {
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	// Milli-units keep cpu's fractions; memory fits them up to 9 PB.
	v, d := q.MilliValue(), divisor.MilliValue()
	return (v + d - 1) / d
}

// hostIPs are the host's addresses for status.hostIP: those of the
// interface with the default route, else of the first interface that is up
// and not a loopback or a container bridge.
func hostIPs() []string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	preferred := defaultRouteInterface()
	sort.SliceStable(ifaces, func(i, j int) bool { return ifaces[i].Name == preferred && ifaces[j].Name != preferred })
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 ||
			strings.HasPrefix(iface.Name, "veth") || strings.HasPrefix(iface.Name, "podunit") || strings.HasPrefix(iface.Name, "cni") {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		var ips []string
		for _, a := range addrs {
			if ipnet, ok := a.(*net.IPNet); ok && ipnet.IP.IsGlobalUnicast() {
				ips = append(ips, ipnet.IP.String())
			}
		}
		if len(ips) > 0 {
			return ips
		}
	}
	return nil
}

// defaultRouteInterface names the interface of the IPv4 default route.
func defaultRouteInterface() string {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "00000000" {
			return f[0]
		}
	}
	return ""
}
