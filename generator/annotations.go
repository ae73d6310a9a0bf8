package generator

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	corev1 "k8s.io/api/core/v1"
)

// AnnotationKey is an annotation with a meaning, podunit's own or one that
// another tool (podman) writes into a pod's metadata, and what podunit
// does with it. Like a Field it
// has a class: honoured (podunit acts on it the same way), noticed
// (accepted; a value that asks for something podunit does not do gives a
// notice saying what happens instead) or dropped (a tool's own record,
// kept on the pod as any annotation, no effect, no notice).
type AnnotationKey struct {
	Key string
	// PerContainer keys are written Key + "/<container>", one a container.
	PerContainer bool
	// Doc says what podunit does with it: the notice a value gets.
	Doc   string
	Class Class
	// Quiet says which values give no notice, for the docs.
	Quiet string
	// quiet tells the values that ask for what podunit does anyway: they
	// give no notice. nil: every value of a Noticed key gives one.
	quiet func(value string, c *corev1.Container) bool
}

// Pattern is the key as docs and `podunit explain` show it.
func (a AnnotationKey) Pattern() string {
	if a.PerContainer {
		return a.Key + "/<container>"
	}
	return a.Key
}

// Notes is the entry's text in docs and `podunit explain`.
func (a AnnotationKey) Notes() string {
	if a.Quiet == "" {
		return a.Doc
	}
	return a.Doc + " " + a.Quiet
}

// podmanFalse is a podman boolean that is off, as `podman kube generate`
// writes it ("FALSE") or a person would ("false").
func podmanFalse(v string, _ *corev1.Container) bool {
	return strings.EqualFold(strings.TrimSpace(v), "false")
}

// PodAnnotations are the annotations with a meaning that podunit reads on a
// pod (and a workload's pod template): its own, podman's, which `podman
// kube generate` writes and `podman kube play` reads, and the auto-update
// family both share. Any other annotation is copied to the pod sandbox as
// it is. docs/manifest-reference.md lists them and `podunit explain
// pod.metadata.annotations` shows them.
var PodAnnotations = []AnnotationKey{
	{Key: AnnotationAfter, Class: Honoured,
		Doc: "podunit's: the pods (`name` or `namespace/name`, comma-separated) this one starts after, once their units are active (ready)."},
	{Key: AnnotationRolloutDeadline, Class: Honoured,
		Doc: "podunit's: how long a replaced pod's new generation may take to become ready (`2m`, or seconds) before the last ready generation runs again."},
	{Key: AnnotationMinReadySeconds, Class: Honoured,
		Doc: "podunit's: how long (0 to 3600 seconds; default 10) a replaced pod's new generation must then stay ready."},
	{Key: AnnotationAutoUpdate, Class: Honoured,
		Doc: "podunit's auto-update policy for the pod's containers: `registry`, `local` or `disabled`; `podunit auto-update` replaces the pod when a container's tag names a new image, through the rollout gate."},
	{Key: strings.TrimSuffix(annotationAutoUpdatePrefix, "/"), PerContainer: true, Class: Honoured,
		Doc: "podunit's auto-update policy for one container."},
	{Key: AnnotationPodmanAutoUpdate, Class: Honoured,
		Doc: "podman's auto-update policy, read as `podunit.io/auto-update`."},
	{Key: AnnotationPodmanAutoUpdate, PerContainer: true, Class: Honoured,
		Doc: "The same for one container, as `podman kube generate` writes it from the container's `io.containers.autoupdate` label."},
	{Key: "io.containers.autoupdate.authfile", PerContainer: true, Class: Noticed,
		Doc: "podman's credentials file for the update check: podunit asks the registry with the pod's `imagePullSecrets` instead; the file is not read."},
	{Key: "io.podman.annotations.userns", Class: Noticed, quiet: func(v string, _ *corev1.Container) bool { return v == "" || v == "host" },
		Doc: "podman's user namespace mode (`auto`, `keep-id`, `nomap`, …): podunit's is `spec.hostUsers` (`false`: a user namespace of 65536 IDs of the pod's own, as podman's `auto`; podman writes `hostUsers: false` beside this annotation). The annotation has no effect.", Quiet: "`host` gives no notice."},
	{Key: "io.podman.annotations.infra.name", Class: Noticed,
		Doc: "The name of podman's infra container: the pod's sandbox is the runtime's, named by it. No effect."},
	{Key: "io.podman.annotations.ulimit", Class: Noticed,
		Doc: "Resource limits (`nofile=1024:2048,…`) for every container: CRI has no per-container rlimits, so the containers get the runtime's (containerd's or CRI-O's `default_ulimits`). No effect."},
	{Key: "io.podman.annotations.init.container.type", Class: Noticed, quiet: func(v string, _ *corev1.Container) bool { return v == "always" },
		Doc: "`once` or `always`: init containers here run at every start of the pod, as podman's `always`; `once` (run only at the pod's first start) is not kept apart.", Quiet: "`always` gives no notice."},
	{Key: "io.podman.annotations.init", PerContainer: true, Class: Noticed, quiet: podmanFalse,
		Doc: "With `TRUE` podman runs an init process (catatonit) as the container's PID 1; podunit does not: the image's entrypoint is PID 1; `shareProcessNamespace: true` makes the pause process reap the pod's orphans.", Quiet: "`FALSE` gives no notice."},
	{Key: "io.podman.annotations.privileged", PerContainer: true, Class: Noticed,
		quiet: func(v string, c *corev1.Container) bool {
			return podmanFalse(v, c) || c != nil && c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
		},
		Doc: "podman's record of a privileged container: the container's `securityContext.privileged` decides (`podman kube generate` writes it too), so without it the container is not privileged.", Quiet: "`FALSE`, or `TRUE` with `privileged: true`, gives no notice."},
	{Key: "io.podman.annotations.autoremove", PerContainer: true, Class: Noticed, quiet: podmanFalse,
		Doc: "With `TRUE` podman removes the container when it exits; podunit removes a pod's containers itself, at the latest when the pod stops: no effect.", Quiet: "`FALSE` gives no notice."},
	{Key: "io.podman.annotations.autoremove-image", PerContainer: true, Class: Noticed, quiet: podmanFalse,
		Doc: "With `TRUE` podman removes the image with the container; podunit leaves images to the runtime: no effect.", Quiet: "`FALSE` gives no notice."},
	{Key: "io.podman.annotations.publish-all", PerContainer: true, Class: Noticed, quiet: podmanFalse,
		Doc: "With `TRUE` podman publishes every port the image exposes; podunit publishes only the ports that have a `hostPort`.", Quiet: "`FALSE` gives no notice."},
	{Key: "io.podman.annotations.seccomp", PerContainer: true, Class: Noticed,
		Doc: "podman's seccomp option (`unconfined`, a profile's path): the container's `securityContext.seccompProfile` decides (default `Unconfined`, as the kubelet); this annotation has no effect."},
	{Key: "io.podman.annotations.apparmor", PerContainer: true, Class: Noticed,
		Doc: "podman's AppArmor option: the runtime's default profile applies, as for any container here; this annotation has no effect."},
	{Key: "io.podman.annotations.label", PerContainer: true, Class: Noticed,
		Doc: "podman's SELinux option (`disable`, `type:spc_t`, `nested`, …): the container's `securityContext.seLinuxOptions` decides; this annotation has no effect."},
	{Key: "io.podman.annotations.volumes-from", PerContainer: true, Class: Noticed,
		Doc: "podman mounts the volumes of the containers named here: podunit does not. Share data between containers through a volume of the pod mounted in each (`emptyDir`, a claim)."},
	{Key: "io.podman.annotations.kube.image.volumes.mount", PerContainer: true, Class: Noticed,
		Doc: "podman mounts the volumes of the images named here: podunit does not. An image's files are mounted with an `image` volume (`spec.volumes[].image`)."},
	{Key: "io.podman.annotations.cid-file", PerContainer: true, Class: Noticed,
		Doc: "podman writes the container's ID to this file: podunit does not (`podunit get pods -o yaml` shows container IDs)."},
	{Key: "io.podman.annotations.pids-limit", PerContainer: true, Class: Noticed,
		Doc: "A PID limit for the container: not set (CRI has no per-container PID limit): no effect."},
	{Key: "io.podman.annotations.cpuset", PerContainer: true, Class: Noticed,
		Doc: "The CPUs the container may run on: not set; podunit sets CPU quotas and shares from `resources`."},
	{Key: "io.podman.annotations.memory-nodes", PerContainer: true, Class: Noticed,
		Doc: "The NUMA memory nodes of the container: not set."},
	{Key: "seccomp.security.alpha.kubernetes.io/pod", Class: Noticed,
		Doc: "Kubernetes' old seccomp annotation, which `podman kube play` still reads: the `seccompProfile` field replaced it in Kubernetes, and podunit reads the field only. The pod's `securityContext.seccompProfile` decides (default `Unconfined`); this annotation has no effect."},
	{Key: "container.seccomp.security.alpha.kubernetes.io", PerContainer: true, Class: Noticed,
		Doc: "The same for one container: its `securityContext.seccompProfile` decides; this annotation has no effect."},
	{Key: "io.podman.annotations.kube.health.check", PerContainer: true, Class: Dropped,
		Doc: "podman's mark that a container's probes follow Kubernetes' rules (`initialDelaySeconds`), which podunit's always do: kept as any annotation, no notice."},
	{Key: "bind-mount-options", Class: Noticed,
		Doc: "`<host path>:z` (podman 5) or, as the key `bind-mount-options:<host path>`, `z` (podman 4): podman relabels that hostPath for SELinux. podunit does not (neither does the kubelet): label the directory yourself (`chcon -t container_file_t`) where SELinux enforces; elsewhere it changes nothing."},
	{Key: "io.kubernetes.cri-o.ContainerType", PerContainer: true, Class: Dropped,
		Doc: "Written by `podman kube generate` from the container's runtime annotations, as is any `io.kubernetes.cri-o.<key>/<container>` (podman 4: `ContainerType`, `TTY`, `SandboxID`; podman 5: `SandboxID`): podman's record, kept as any annotation, no notice."},
}

// annotationKeyOf finds the entry of an annotation key and the container
// it names ("" for a pod's key).
func annotationKeyOf(key string) (a *AnnotationKey, container string, ok bool) {
	// podman 4 wrote the SELinux relabel option with the path in the key.
	if strings.HasPrefix(key, "bind-mount-options:") {
		key = "bind-mount-options"
	}
	if base, ctr, found := strings.Cut(key, "/"); found && strings.HasPrefix(base, "io.kubernetes.cri-o.") {
		key = "io.kubernetes.cri-o.ContainerType/" + ctr // one entry for podman's copies of CRI-O's keys
	}
	for i, e := range PodAnnotations {
		if !e.PerContainer && key == e.Key {
			return &PodAnnotations[i], "", true
		}
		if ctr, found := strings.CutPrefix(key, e.Key+"/"); e.PerContainer && found && ctr != "" {
			return &PodAnnotations[i], ctr, true
		}
	}
	return nil, "", false
}

// validateKnownAnnotations gives the notices of the pod's known
// annotations, each at its key, in key order.
func validateKnownAnnotations(pod *corev1.Pod, note failFunc) {
	containers := map[string]*corev1.Container{}
	for i := range pod.Spec.InitContainers {
		containers[pod.Spec.InitContainers[i].Name] = &pod.Spec.InitContainers[i]
	}
	for i := range pod.Spec.Containers {
		containers[pod.Spec.Containers[i].Name] = &pod.Spec.Containers[i]
	}
	for _, k := range slices.Sorted(maps.Keys(pod.Annotations)) {
		a, ctr, ok := annotationKeyOf(k)
		if !ok || a.Class != Noticed {
			continue
		}
		v := pod.Annotations[k]
		c := containers[ctr]
		if a.quiet != nil && a.quiet(v, c) {
			continue
		}
		field := fmt.Sprintf("metadata.annotations[%s]", k)
		if a.PerContainer && c == nil {
			note(field, "%q: for a container %q that the pod does not have: no effect", v, ctr)
			continue
		}
		note(field, "%q: %s", v, a.Doc)
	}
}

// podmanAnnotationKey tells whether an annotation key that is not a
// Kubernetes qualified name is one podman writes all the same (podman 4's
// `bind-mount-options:<path>`), which is accepted.
func podmanAnnotationKey(key string) bool {
	path, ok := strings.CutPrefix(key, "bind-mount-options:")
	return ok && strings.HasPrefix(path, "/") && len(key) <= 253 &&
		!strings.ContainsFunc(path, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}
