package criconfig

import (
	"fmt"
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

// QOSClass is the pod's QoS class, as Kubernetes computes it from the cpu
// and memory requests and limits of all its containers.
func QOSClass(pod *corev1.Pod) corev1.PodQOSClass {
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
func (in *Input) linuxResources(c *corev1.Container) *runtimeapi.LinuxContainerResources {
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
	r.OomScoreAdj = in.oomScoreAdj(c)
	return r
}

// oomScoreAdj is the kubelet's: node-critical pods (every pod here is a
// static pod, so priorityClassName system-node-critical makes one, as for
// kubeadm's control plane) and Guaranteed pods last, BestEffort first,
// Burstable by the share of the host's memory the container requests.
func (in *Input) oomScoreAdj(c *corev1.Container) int64 {
	if in.Pod.Spec.PriorityClassName == "system-node-critical" {
		return guaranteedOOM
	}
	switch QOSClass(in.Pod) {
	case corev1.PodQOSGuaranteed:
		return guaranteedOOM
	case corev1.PodQOSBestEffort:
		return besteffortOOM
	}
	req := c.Resources.Requests[corev1.ResourceMemory]
	if in.Host.Memory <= 0 {
		return burstableOOMHi
	}
	adj := 1000 - 1000*req.Value()/in.Host.Memory
	return min(max(adj, burstableOOMLo), burstableOOMHi)
}

// FieldValue is a fieldRef's value (env or downward API volume item).
func (in *Input) FieldValue(path string) string {
	pod := in.Pod
	switch path {
	case "metadata.name":
		return pod.Name
	case "metadata.namespace":
		return pod.Namespace
	case "metadata.uid":
		return string(pod.UID)
	case "spec.nodeName":
		return in.Host.NodeName
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName
	case "status.podIP":
		if ips := in.IPs(); len(ips) > 0 {
			return ips[0]
		}
		return ""
	case "status.podIPs":
		return strings.Join(in.IPs(), ",")
	case "status.hostIP":
		if len(in.Host.IPs) > 0 {
			return in.Host.IPs[0]
		}
		return ""
	case "status.hostIPs":
		return strings.Join(in.Host.IPs, ",")
	}
	for kind, m := range map[string]map[string]string{"labels": pod.Labels, "annotations": pod.Annotations} {
		prefix := "metadata." + kind + "['"
		if strings.HasPrefix(path, prefix) && strings.HasSuffix(path, "']") {
			return m[strings.TrimSuffix(strings.TrimPrefix(path, prefix), "']")]
		}
	}
	return ""
}

// IPs are the pod's addresses: the sandbox's, or the host's for a
// hostNetwork pod.
func (in *Input) IPs() []string {
	if in.Pod.Spec.HostNetwork {
		return in.Host.IPs
	}
	return in.PodIPs
}

// ResourceValue is a resourceFieldRef's value, in whole divisors rounded
// up; an unset limit is the host's capacity, as in Kubernetes. c is the
// container the reference is in, for an empty containerName.
func (in *Input) ResourceValue(ref *corev1.ResourceFieldSelector, c *corev1.Container) (string, error) {
	if ref.ContainerName != "" {
		c = nil
		for _, list := range [][]corev1.Container{in.Pod.Spec.InitContainers, in.Pod.Spec.Containers} {
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
			q = *resource.NewQuantity(int64(in.Host.CPUs), resource.DecimalSI)
		} else {
			q = *resource.NewQuantity(in.Host.Memory, resource.BinarySI)
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
