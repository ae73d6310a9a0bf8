package generator

import (
	"fmt"
	"strings"
)

// Class is what podunit does with a manifest field. Every field of every kind
// podunit reads is in exactly one class, kept in the kind's field list
// (Fields, Kinds); a field in none of them is rejected.
type Class int

const (
	// Honoured fields are mapped to the runtime and systemd as the kubelet
	// maps them.
	Honoured Class = iota
	// Dropped fields are state a server or kubectl wrote
	// (creationTimestamp, status, managedFields, …). They are removed
	// without a word and never change a pod's config hash.
	Dropped
	// Noticed fields mean something only to a scheduler or an API server.
	// They are accepted with a notice saying what podunit did with them
	// (the field's Doc), and are not part of the pod: they never change its
	// config hash. `strict: true` in config.yaml makes a notice an error.
	Noticed
	// Admission fields are matched against this node as the kubelet's
	// admission does (nodeSelector, required node affinity, nodeName,
	// priorityClassName, os): a pod that does not fit is not started.
	Admission
)

func (c Class) String() string {
	switch c {
	case Honoured:
		return "honoured"
	case Dropped:
		return "dropped"
	case Noticed:
		return "notice"
	case Admission:
		return "admission"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Rejected is how docs and `podunit explain` name the class of a field that
// is in no list: decoding refuses it.
const Rejected = "rejected"

// Notice is a field podunit accepted without acting on it, or a value it
// cannot fully honour, and what it did instead. It names the place as a
// FieldError does; it is never an error unless strict mode asks for it.
type Notice struct {
	File  string
	Line  int
	Field string // the field path in the file; empty for a whole document
	Msg   string
}

// String is "file:line: notice: field: message".
func (n Notice) String() string {
	msg := n.Msg
	if n.Field != "" {
		msg = n.Field + ": " + msg
	}
	return (&FieldError{File: n.File, Line: n.Line, Field: "notice", Msg: msg}).Error()
}

// AsError is the notice as strict mode reports it.
func (n Notice) AsError() *FieldError {
	return &FieldError{File: n.File, Line: n.Line, Field: n.Field, Msg: n.Msg + " (a notice, an error because config.yaml says strict: true)"}
}

// serverFields are what an API server or kubectl writes into an object's
// metadata and status: `kubectl get -o yaml` and `kubectl create
// --dry-run=client -o yaml` print them. prefix is "" or a template's
// "spec.template.".
func serverFields(prefix string) []Field {
	const doc = "Written by an API server or kubectl; dropped without a word."
	rows := []Field{
		{prefix + "metadata.creationTimestamp", doc, Dropped},
		{prefix + "metadata.resourceVersion", doc, Dropped},
		{prefix + "metadata.generation", doc, Dropped},
		{prefix + "metadata.selfLink", doc, Dropped},
		{prefix + "metadata.managedFields", doc, Dropped},
		{prefix + "metadata.deletionTimestamp", doc, Dropped},
		{prefix + "metadata.deletionGracePeriodSeconds", doc, Dropped},
		{prefix + "metadata.ownerReferences", "Set by the controller that made the object, for an API server's garbage collector, which podunit does not have: accepted, no effect.", Noticed},
		{prefix + "metadata.finalizers", "Honoured by an API server before it deletes an object: accepted, no effect (a pod goes when its manifest goes).", Noticed},
		{prefix + "metadata.generateName", "An API server uses it only when `name` is empty; podunit needs `name`: accepted, no effect.", Noticed},
	}
	return rows
}

// statusField is the status of a kind that has one.
var statusField = Field{"status", "The object's state as an API server last saw it; dropped without a word (podunit reports the live status in `/pods`).", Dropped}

// podPolicyFields are the Pod's fields that podunit reads without mapping
// them to the runtime: scheduler and API-server fields (a notice), and the
// ones evaluated as the kubelet's admission.
var podPolicyFields = append(serverFields(""), statusField,
	Field{"spec.tolerations", "Tolerations matter only against a node's taints, set through an API server; this node has none: accepted, no effect.", Noticed},
	Field{"spec.schedulerName", "There is no scheduler: the pod runs on this node. Accepted, no effect.", Noticed},
	Field{"spec.priority", "Set by an API server from `priorityClassName`, which podunit reads instead: accepted, no effect.", Noticed},
	Field{"spec.preemptionPolicy", "Preemption is a scheduler's: accepted, no effect.", Noticed},
	Field{"spec.schedulingGates", "Gates hold a pod back from a scheduler, and there is none: the pod starts. Accepted, no effect.", Noticed},
	Field{"spec.topologySpreadConstraints", "Spreading pods across nodes is a scheduler's work; one node: accepted, no effect.", Noticed},
	Field{"spec.affinity.podAffinity", "Pod affinity is a scheduler's; one node: accepted, no effect.", Noticed},
	Field{"spec.affinity.podAntiAffinity", "Pod anti-affinity is a scheduler's; one node: accepted, no effect.", Noticed},
	Field{"spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution", "A preference for a scheduler choosing among nodes: accepted, no effect.", Noticed},
	Field{"spec.serviceAccountName", "There is no API server, so no service account and no token is mounted: accepted, no effect.", Noticed},
	Field{"spec.serviceAccount", "The old name of `serviceAccountName`: accepted, no effect.", Noticed},
	Field{"spec.automountServiceAccountToken", "There is no API server, so no token is ever mounted: accepted, no effect.", Noticed},
	Field{"spec.readinessGates", "Conditions that a controller sets through an API server: accepted, not waited for (readiness is the containers' and their probes').", Noticed},
	Field{"spec.overhead", "Set by an API server from a RuntimeClass: accepted, no effect.", Noticed},
	Field{"spec.nodeSelector", "Matched against this node's labels as the kubelet's admission does: `kubernetes.io/hostname`, `kubernetes.io/os`, `kubernetes.io/arch` (and their `beta.` forms) and `nodeLabels:` in config.yaml. A pod that does not match is not started; `podunit get pods` and `/pods` show it `Failed` with reason `NodeAffinity`.", Admission},
	Field{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution", "Matched as `nodeSelector` is: one term of `nodeSelectorTerms` must match, every expression of it (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`; `matchFields` on `metadata.name`).", Admission},
	Field{"spec.nodeName", "The pod runs on this node whatever it names; a name other than this host's gives a notice.", Admission},
	Field{"spec.priorityClassName", "`system-node-critical`: the kubelet's OOM score adjustment for node-critical pods (-997), as kubeadm's control-plane pods have. `system-cluster-critical`: the usual QoS score, as the kubelet gives it. Both are stopped last at shutdown, once every other pod has stopped, as the kubelet's graceful node shutdown stops critical pods (their units are ordered `Before=podunit-critical.target`, every other pod's `After=` it). Any other name: a notice (there are no PriorityClass objects without an API server).", Admission},
	Field{"spec.hostUsers", "`false`: the pod runs in a user namespace of its own, its root mapped to an unprivileged range of 65536 host IDs, as the kubelet does; needs a runtime with user namespaces (containerd 2.0 or later, CRI-O). On an older runtime the pod is not started (reason `UserNamespacesNotSupported`, naming the runtime's version). `true` (default): the host's users.", Admission},
	Field{"spec.os.name", "Must be `linux`, this node's OS, as the kubelet's admission checks; a pod for another OS is not started (reason `PodOSNotSupported`).", Admission},
)

// containerPolicyFields are a container's fields read without mapping them
// to the runtime.
func containerPolicyFields(prefix string) []Field {
	return []Field{
		{prefix + ".resizePolicy", "In-place resizing goes through an API server: accepted, no effect; a changed resource replaces the pod.", Noticed},
	}
}

// workloadPolicyFields are the fields of a workload kind's own spec that
// only its controller in an API server acts on.
func workloadPolicyFields(kind string) []Field {
	minReady := Field{"spec.minReadySeconds", "How long a replaced pod's new generation must stay ready (no container restarted) before the replacement counts as done; one that does not is rolled back to the last ready generation. Set on the pods as `podunit.io/min-ready-seconds`, after the config hash; without it 10 s.", Honoured}
	history := func(what string) Field {
		return Field{"spec.revisionHistoryLimit", "podunit keeps the last good generation of each pod, not " + what + ": accepted, no effect.", Noticed}
	}
	rows := []Field{
		{"metadata.uid", "Written by an API server; dropped without a word (a workload's pods get their own UIDs).", Dropped},
	}
	switch kind {
	case "Deployment":
		rows = append(rows, minReady, history("old ReplicaSets"),
			Field{"spec.strategy.rollingUpdate", "podunit replaces one replica at a time, each new pod ready before the next old one stops (maxSurge 1, maxUnavailable 0): accepted, these values have no effect.", Noticed},
			Field{"spec.progressDeadlineSeconds", "How long a replaced pod's new generation has to become ready before it is rolled back to the last ready generation. Set on the pods as `podunit.io/rollout-deadline`, after the config hash; without it the unit's start timeout (90 s).", Honoured},
		)
	case "ReplicaSet", "ReplicationController":
		rows = append(rows, minReady)
	case "StatefulSet":
		rows = append(rows, minReady, history("controller revisions"),
			Field{"spec.updateStrategy", "podunit replaces the pods one at a time, highest ordinal first, each ready before the next: accepted, these values have no effect.", Noticed},
			Field{"spec.persistentVolumeClaimRetentionPolicy", "Claims are kept until `podunit volume rm`, as with `Retain`: accepted, no effect.", Noticed},
		)
	case "DaemonSet":
		rows = append(rows, minReady, history("controller revisions"),
			Field{"spec.updateStrategy", "A DaemonSet has one pod here, replaced as any pod is (the old stops, the new starts): accepted, these values have no effect.", Noticed},
		)
	case "Job":
		rows = append(rows,
			Field{"spec.ttlSecondsAfterFinished", "A finished Job's unit stays, with its result, until the manifest changes: accepted, no effect.", Noticed},
			Field{"spec.manualSelector", "podunit checks the selector against the template either way: accepted, no effect.", Noticed},
		)
	}
	return rows
}

// SkippedKind is a kind of object that podunit does not run, because on one
// machine without an API server it has nothing to act on. A document of such
// a kind is skipped with a notice naming it, and the rest of the file runs.
type SkippedKind struct {
	Group string // API group; "" for the core group
	Name  string
	Why   string
}

// SkippedKinds are the built-in kinds that manifests carry beside their
// workloads. Objects of a group that is not a built-in one (custom
// resources, e.g. a ServiceMonitor) are skipped too; an unknown kind of a
// built-in group is an error, as a typo.
var SkippedKinds = []SkippedKind{
	{"", "ServiceAccount", "there is no API server, so no service account tokens"},
	{"", "Namespace", "a namespace needs no object here: it is part of each pod's identity"},
	{"", "Endpoints", "a Service's endpoints are the ready pods its selector matches, which podunit finds itself; it reads no hand-written ones"},
	{"", "LimitRange", "admission by an API server"},
	{"", "ResourceQuota", "admission by an API server"},
	{"", "PersistentVolume", "a claim is a host directory here, bound to no volume object"},
	{"discovery.k8s.io", "EndpointSlice", "a Service's endpoints are the ready pods its selector matches, which podunit finds itself; it reads no hand-written ones"},
	{"rbac.authorization.k8s.io", "Role", "there is no API server to authorize"},
	{"rbac.authorization.k8s.io", "ClusterRole", "there is no API server to authorize"},
	{"rbac.authorization.k8s.io", "RoleBinding", "there is no API server to authorize"},
	{"rbac.authorization.k8s.io", "ClusterRoleBinding", "there is no API server to authorize"},
	{"storage.k8s.io", "StorageClass", "a claim is a host directory here, whatever its class"},
	{"storage.k8s.io", "CSIDriver", "claims are host directories, not CSI volumes"},
	{"networking.k8s.io", "Ingress", "there is no ingress controller"},
	{"networking.k8s.io", "IngressClass", "there is no ingress controller"},
	{"networking.k8s.io", "NetworkPolicy", "the CNI network is the runtime's; podunit enforces no policies"},
	{"policy", "PodDisruptionBudget", "there are no evictions to budget"},
	{"autoscaling", "HorizontalPodAutoscaler", "replicas are what the manifest says"},
	{"scheduling.k8s.io", "PriorityClass", "priorityClassName is read by name (system-node-critical)"},
	{"apiextensions.k8s.io", "CustomResourceDefinition", "there is no API server to serve it"},
	{"admissionregistration.k8s.io", "MutatingWebhookConfiguration", "there is no API server to call it"},
	{"admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "there is no API server to call it"},
	{"apiregistration.k8s.io", "APIService", "there is no API server to aggregate it"},
	{"coordination.k8s.io", "Lease", "there is no API server"},
}

// builtinGroup tells whether an API group is one of Kubernetes' own, whose
// kinds podunit knows: an unknown kind there is a typo, not a custom
// resource.
func builtinGroup(group string) bool {
	switch group {
	case "", "apps", "batch", "policy", "autoscaling", "extensions":
		return true
	}
	return strings.HasSuffix(group, ".k8s.io")
}

func findSkippedKind(group, name string) *SkippedKind {
	for i, k := range SkippedKinds {
		if k.Name == name && k.Group == group {
			return &SkippedKinds[i]
		}
	}
	return nil
}

// groupOf is the API group of an apiVersion ("apps/v1" → "apps", "v1" → "").
func groupOf(apiVersion string) string {
	if g, _, ok := strings.Cut(apiVersion, "/"); ok {
		return g
	}
	return ""
}
