package generator

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Node is what admission knows of this machine: its name and labels, and
// its container runtime when known.
type Node struct {
	Name   string
	Labels map[string]string
	// Runtime is the runtime's name and version ("containerd 1.6.20");
	// empty when not known (then what depends on it is not checked).
	Runtime string
	// UserNamespaces tells whether the runtime runs pods in user
	// namespaces (hostUsers: false): containerd 2.0 or later, CRI-O.
	UserNamespaces bool
	// ImageVolumes tells whether the runtime mounts images as volumes
	// (volumes[].image): containerd 2.1 or later, CRI-O 1.31 or later.
	ImageVolumes bool
}

// RuntimeSupportsUserNamespaces tells whether a CRI runtime of this name
// and version runs pods with hostUsers: false.
func RuntimeSupportsUserNamespaces(name, version string) bool {
	major, _, ok := ParseVersion(version)
	switch name {
	case "containerd":
		return ok && major >= 2
	case "cri-o":
		return ok && major >= 1 // user namespaces since before 1.25 (the oldest CRI v1 CRI-O)
	}
	return false
}

// RuntimeSupportsImageVolumes tells whether a CRI runtime of this name and
// version mounts images as volumes (CRI Mount.image): containerd 2.1 and
// CRI-O 1.31 were the first.
func RuntimeSupportsImageVolumes(name, version string) bool {
	major, minor, ok := ParseVersion(version)
	switch name {
	case "containerd":
		return ok && (major > 2 || major == 2 && minor >= 1)
	case "cri-o":
		return ok && (major > 1 || major == 1 && minor >= 31)
	}
	return false
}

// ParseVersion reads the major and minor numbers of a version as runtimes
// and systemd report them: "v2.1.9", "2.1.9~ds1", "1.31.0",
// "252.38-1~deb12u1", "262~rc1-1" (minor 0). ok is false when it does not
// start with a number.
func ParseVersion(version string) (major, minor int, ok bool) {
	major, rest, ok := leadingInt(strings.TrimPrefix(strings.TrimSpace(version), "v"))
	if !ok {
		return 0, 0, false
	}
	if rest, dot := strings.CutPrefix(rest, "."); dot {
		minor, _, _ = leadingInt(rest)
	}
	return major, minor, true
}

// leadingInt is the number s starts with, and what follows it.
func leadingInt(s string) (n int, rest string, ok bool) {
	end := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(s)
	}
	n, err := strconv.Atoi(s[:end])
	return n, s[end:], err == nil
}

// NewNode is the node named hostname with the labels the kubelet gives every
// node (kubernetes.io/hostname, os and arch, and their beta. forms) and the
// extra ones from config.yaml's nodeLabels, which win.
func NewNode(hostname string, extra map[string]string) Node {
	labels := map[string]string{
		"kubernetes.io/hostname":  hostname,
		"kubernetes.io/os":        runtime.GOOS,
		"kubernetes.io/arch":      runtime.GOARCH,
		"beta.kubernetes.io/os":   runtime.GOOS,
		"beta.kubernetes.io/arch": runtime.GOARCH,
	}
	maps.Copy(labels, extra)
	return Node{Name: hostname, Labels: labels}
}

// Rejection is why the kubelet's admission would not run a pod on this node,
// in its words: Reason NodeAffinity or PodOSNotSupported, and a message.
type Rejection struct {
	Reason  string
	Message string
}

func (r *Rejection) String() string { return r.Reason + ": " + r.Message }

// Admit matches a pod against the node as the kubelet's admission does
// (its predicate NodeAffinity covers nodeSelector and the required node
// affinity; the OS check covers spec.os). nil means the pod may run.
func Admit(pod *corev1.Pod, node Node) *Rejection {
	if hu := pod.Spec.HostUsers; hu != nil && !*hu && node.Runtime != "" && !node.UserNamespaces {
		return &Rejection{Reason: "UserNamespacesNotSupported", Message: fmt.Sprintf("Pod was rejected: hostUsers: false needs a container runtime with user namespaces (containerd 2.0 or later, CRI-O); this node runs %s", node.Runtime)}
	}
	if node.Runtime != "" && !node.ImageVolumes {
		for _, v := range pod.Spec.Volumes {
			if v.Image != nil {
				return &Rejection{Reason: "ImageVolumesNotSupported", Message: fmt.Sprintf("Pod was rejected: volume %q is an image volume, which needs a container runtime that mounts images (containerd 2.1 or later, CRI-O 1.31 or later); this node runs %s", v.Name, node.Runtime)}
			}
		}
	}
	if os := pod.Spec.OS; os != nil && string(os.Name) != runtime.GOOS {
		return &Rejection{Reason: "PodOSNotSupported", Message: fmt.Sprintf("Pod was rejected: the pod's OS %q does not match the node's OS %q", os.Name, runtime.GOOS)}
	}
	fail := &Rejection{Reason: "NodeAffinity", Message: "Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"}
	for _, k := range slices.Sorted(maps.Keys(pod.Spec.NodeSelector)) { // the same message every time
		v := pod.Spec.NodeSelector[k]
		if have, ok := node.Labels[k]; !ok || have != v {
			fail.Message += fmt.Sprintf(" (nodeSelector %s=%s; the node has %s)", k, v, describeLabel(node.Labels, k))
			return fail
		}
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if !slices.ContainsFunc(terms, func(t corev1.NodeSelectorTerm) bool { return matchTerm(t, node) }) {
			fail.Message += " (no term of requiredDuringSchedulingIgnoredDuringExecution matches)"
			return fail
		}
	}
	return nil
}

func describeLabel(labels map[string]string, k string) string {
	if v, ok := labels[k]; ok {
		return strconv.Quote(v)
	}
	return "no such label"
}

// matchTerm is true when every expression of a term matches; a term
// without any matches nothing, as in Kubernetes.
func matchTerm(t corev1.NodeSelectorTerm, node Node) bool {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		return false
	}
	for _, r := range t.MatchExpressions {
		v, ok := node.Labels[r.Key]
		if !matchRequirement(r, v, ok) {
			return false
		}
	}
	for _, r := range t.MatchFields {
		// The only field Kubernetes allows here is metadata.name (validated).
		if !matchRequirement(r, node.Name, true) {
			return false
		}
	}
	return true
}

func matchRequirement(r corev1.NodeSelectorRequirement, value string, present bool) bool {
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return present && slices.Contains(r.Values, value)
	case corev1.NodeSelectorOpNotIn:
		return !present || !slices.Contains(r.Values, value)
	case corev1.NodeSelectorOpExists:
		return present
	case corev1.NodeSelectorOpDoesNotExist:
		return !present
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !present || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(value, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	}
	return false
}

// validateAdmission checks the admission fields' values as the API server
// does, and notes a priority class that podunit cannot look up.
func validateAdmission(spec *corev1.PodSpec, fail, note failFunc) {
	if os := spec.OS; os != nil && os.Name != corev1.Linux && os.Name != corev1.Windows {
		fail("spec.os.name", "%q: must be linux or windows%s", os.Name, caseHint(string(os.Name), "linux", "windows"))
	}
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		base := "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
		terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if len(terms) == 0 {
			fail(base, "required: at least one term")
		}
		for i, t := range terms {
			for j, r := range t.MatchExpressions {
				validateRequirement(fmt.Sprintf("%s[%d].matchExpressions[%d]", base, i, j), r, fail)
			}
			for j, r := range t.MatchFields {
				p := fmt.Sprintf("%s[%d].matchFields[%d]", base, i, j)
				if r.Key != "metadata.name" {
					fail(p+".key", "%q: only metadata.name is supported", r.Key)
				}
				validateRequirement(p, r, fail)
			}
		}
	}
	switch pc := spec.PriorityClassName; pc {
	case "", SystemNodeCritical, SystemClusterCritical:
	default:
		note("spec.priorityClassName", "%q: there are no PriorityClass objects without an API server; the pod gets the usual OOM score of its QoS class (only system-node-critical changes it)", pc)
	}
}

func validateRequirement(p string, r corev1.NodeSelectorRequirement, fail failFunc) {
	ops := []string{"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}
	switch r.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(r.Values) == 0 {
			fail(p+".values", "required with operator %s", r.Operator)
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(r.Values) > 0 {
			fail(p+".values", "must be empty with operator %s", r.Operator)
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(r.Values) != 1 {
			fail(p+".values", "exactly one number with operator %s", r.Operator)
		} else if _, err := strconv.ParseInt(r.Values[0], 10, 64); err != nil {
			fail(p+".values", "%q: must be a whole number with operator %s", r.Values[0], r.Operator)
		}
	default:
		fail(p+".operator", "%q: must be %s%s", r.Operator, orList(ops), caseHint(string(r.Operator), ops...))
	}
}

// Priority classes the kubelet knows without an API server.
const (
	SystemNodeCritical    = "system-node-critical"
	SystemClusterCritical = "system-cluster-critical"
)

// orList is "A, B or C".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// caseHint is " (did you mean \"TCP\"?)" when value differs from an allowed
// value only in case, else "".
func caseHint(value string, allowed ...string) string {
	for _, a := range allowed {
		if a != value && strings.EqualFold(a, value) {
			return fmt.Sprintf(" (did you mean %q?)", a)
		}
	}
	return ""
}

// Host access policies (config.yaml restrictHostAccess): which pods may
// not reach the host. The kubelet lets static pods do anything; a site that
// runs manifests from a URL it does not fully trust can refuse them that.
const (
	HostAccessAllowed = ""    // every pod may (default)
	HostAccessNoneURL = "url" // pods from manifestURL may not
	HostAccessNoneAll = "all" // no pod may
)

// HostAccess lists what of the pod reaches the host: privileged
// containers, added capabilities, hostPath volumes, the host's network,
// PID or IPC namespace. Empty: none.
func HostAccess(pod *corev1.Pod) []string {
	var out []string
	spec := &pod.Spec
	for _, f := range []struct {
		on   bool
		path string
	}{{spec.HostNetwork, "spec.hostNetwork"}, {spec.HostPID, "spec.hostPID"}, {spec.HostIPC, "spec.hostIPC"}} {
		if f.on {
			out = append(out, f.path)
		}
	}
	for i, v := range spec.Volumes {
		if v.HostPath != nil {
			out = append(out, fmt.Sprintf("spec.volumes[%d].hostPath (%s)", i, v.HostPath.Path))
		}
	}
	for _, list := range []struct {
		name string
		cs   []corev1.Container
	}{{"initContainers", spec.InitContainers}, {"containers", spec.Containers}} {
		for i, c := range list.cs {
			sc := c.SecurityContext
			if sc == nil {
				continue
			}
			if sc.Privileged != nil && *sc.Privileged {
				out = append(out, fmt.Sprintf("spec.%s[%d].securityContext.privileged", list.name, i))
			}
			if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
				out = append(out, fmt.Sprintf("spec.%s[%d].securityContext.capabilities.add", list.name, i))
			}
		}
	}
	return out
}

// restrictHostAccess rejects a pod that reaches the host where the policy
// refuses it; fromURL tells whether the pod came from manifestURL.
func restrictHostAccess(p *Pod, policy string, fromURL bool) {
	if p.Rejected != nil || policy == HostAccessAllowed || (policy == HostAccessNoneURL && !fromURL) {
		return
	}
	if access := HostAccess(p.Spec); len(access) > 0 {
		p.Rejected = &Rejection{Reason: "HostAccessForbidden", Message: fmt.Sprintf(
			"Pod was rejected: config.yaml restrictHostAccess: %s refuses pods that reach the host: %s", policy, strings.Join(access, ", "))}
	}
}
