package generator

import "strings"

// Field is one manifest field podunit implements.
//
// Path uses the Kubernetes reference notation: dots between fields, "[]" after
// a list. A field whose value is a map or list of scalars (labels, command)
// covers its whole value. Doc is the note rendered into
// docs/manifest-reference.md.
type Field struct {
	Path string
	Doc  string
}

// Fields is the single list of supported manifest fields. Decoding rejects
// every field not listed here, and docs/manifest-reference.md is generated from
// it (a test fails when the two disagree). Add a field here only together with
// the code that implements it and a test that shows it working.
var Fields = []Field{
	{"apiVersion", "Must be `v1`."},
	{"kind", "Must be `Pod`."},
	{"metadata.name", "Required. A DNS-1123 subdomain; becomes the unit name `pod-<name>.service`."},
	{"metadata.namespace", "Default `default`. A DNS-1123 label; other namespaces name the unit `pod-<namespace>_<name>.service`."},
	{"metadata.uid", "Optional. Without it the UID is the config hash, so every edit makes a new pod identity, as the kubelet does for static pods."},
	{"metadata.labels", "Copied to the pod sandbox and containers as CRI labels."},
	{"metadata.annotations", "Copied to the pod sandbox as CRI annotations."},
	{"spec.restartPolicy", "`Always` (default), `OnFailure` or `Never`, per container as in Kubernetes: an exited container is restarted in the same sandbox with the kubelet's back-off (10 s doubling to 5 min, shown as `CrashLoopBackOff`). A pod whose containers all finished stays `active (exited)` if it succeeded and `failed` if not, and is not run again until its manifest changes."},
	{"spec.terminationGracePeriodSeconds", "Default 30. Time between SIGTERM and SIGKILL for each container on stop; the unit's `TimeoutStopSec=` covers it."},
	{"spec.containers[].name", "Required. A DNS-1123 label, unique in the pod."},
	{"spec.containers[].image", "Required. A reference to an image the runtime can resolve or pull."},
	{"spec.containers[].imagePullPolicy", "`Always`, `IfNotPresent` or `Never`. Default `Always` for `:latest` or no tag, else `IfNotPresent`."},
	{"spec.containers[].command", "Replaces the image's entrypoint. `$(VAR)` is expanded from the container's env, `$$` is a literal `$`, as in Kubernetes."},
	{"spec.containers[].args", "Replaces the image's command. `$(VAR)` is expanded as in `command`."},
	{"spec.containers[].workingDir", "Working directory inside the container."},
	{"spec.containers[].env[].name", "Required. Environment variable name."},
	{"spec.containers[].env[].value", "The value; `$(VAR)` refers to a variable defined earlier in the list. (`valueFrom` is not supported yet.)"},
	{"spec.containers[].ports[].name", "Optional port name (an IANA_SVC_NAME)."},
	{"spec.containers[].ports[].containerPort", "Required, 1-65535. Informational unless `hostPort` is set."},
	{"spec.containers[].ports[].hostPort", "Publishes `containerPort` on the host through the CNI portmap plugin."},
	{"spec.containers[].ports[].hostIP", "Host address to bind `hostPort` to; default all addresses."},
	{"spec.containers[].ports[].protocol", "`TCP` (default) or `UDP`."},
}

// fieldTree is Fields as a tree keyed by JSON field name, for the decoder.
type fieldTree map[string]fieldTree

var supported = func() fieldTree {
	root := fieldTree{}
	for _, f := range Fields {
		node := root
		for _, part := range strings.Split(strings.ReplaceAll(f.Path, "[]", ""), ".") {
			next, ok := node[part]
			if !ok {
				next = fieldTree{}
				node[part] = next
			}
			node = next
		}
	}
	return root
}()
