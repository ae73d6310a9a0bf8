package generator

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// AnnotationRolloutDeadline bounds how long a replaced pod's new generation
// may take to become ready (READY=1) before the hand-off stops it and runs
// the last ready generation again: a Go duration ("2m30s") or seconds.
// Without it, the unit's start timeout.
const AnnotationRolloutDeadline = "podunit.io/rollout-deadline"

// DefaultRolloutDeadline is a replacement's deadline without the
// annotation: the pod unit's start timeout.
const DefaultRolloutDeadline = startTimeout

// RolloutDeadline is the pod's rollout deadline (validated by Validate).
func RolloutDeadline(pod *corev1.Pod) time.Duration {
	d, err := parseDeadline(pod.Annotations[AnnotationRolloutDeadline])
	if err != nil || d == 0 {
		return DefaultRolloutDeadline
	}
	return d
}

func parseDeadline(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: a duration (\"90s\", \"5m\") or a number of seconds", v)
	}
	return d, nil
}

// Auto-update annotations: podunit's, and podman's read as the same. On the
// pod, for all its containers; with a container's name after the slash
// (auto-update.podunit.io/<container>, io.containers.autoupdate/<container>),
// for that container.
const (
	AnnotationAutoUpdate        = "podunit.io/auto-update"
	AnnotationPodmanAutoUpdate  = "io.containers.autoupdate"
	annotationAutoUpdatePrefix  = "auto-update.podunit.io/"
	annotationPodmanUpdatePrefx = "io.containers.autoupdate/"
)

// Auto-update policies, podman's: registry asks the image's registry for
// the digest its tag names now; local compares with the image the tag
// names on this machine (an archive dropped into the images directory).
const (
	AutoUpdateRegistry = "registry"
	AutoUpdateLocal    = "local"
)

// AutoUpdatePolicy is the auto-update policy of a container of the pod:
// its own annotation, else the pod's; "" when it is not updated.
func AutoUpdatePolicy(pod *corev1.Pod, container string) string {
	for _, k := range []string{annotationAutoUpdatePrefix + container, annotationPodmanUpdatePrefx + container, AnnotationAutoUpdate, AnnotationPodmanAutoUpdate} {
		if v, ok := pod.Annotations[k]; ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// validateRollout checks the rollout and auto-update annotations.
func validateRollout(pod *corev1.Pod, fail func(field, format string, args ...any)) {
	if v, ok := pod.Annotations[AnnotationRolloutDeadline]; ok {
		if _, err := parseDeadline(v); err != nil || strings.TrimSpace(v) == "" {
			fail(fmt.Sprintf("metadata.annotations[%s]", AnnotationRolloutDeadline), "%q: a duration (\"90s\", \"5m\") or a number of seconds", v)
		}
	}
	containers := map[string]bool{}
	for _, c := range pod.Spec.Containers {
		containers[c.Name] = true
	}
	for _, c := range pod.Spec.InitContainers {
		containers[c.Name] = true
	}
	for k, v := range pod.Annotations {
		name, perContainer := strings.CutPrefix(k, annotationAutoUpdatePrefix)
		if !perContainer {
			name, perContainer = strings.CutPrefix(k, annotationPodmanUpdatePrefx)
		}
		if k != AnnotationAutoUpdate && k != AnnotationPodmanAutoUpdate && !perContainer {
			continue
		}
		field := fmt.Sprintf("metadata.annotations[%s]", k)
		switch strings.TrimSpace(v) {
		case AutoUpdateRegistry, AutoUpdateLocal, "disabled":
		default:
			fail(field, "%q: must be registry, local or disabled", v)
		}
		if perContainer && !containers[name] {
			fail(field, "the pod has no container %q", name)
		}
	}
}
