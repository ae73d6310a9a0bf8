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

// AnnotationMinReadySeconds is how long a replaced pod's new generation
// must stay ready (no container restarted, every container ready, its unit
// active) after it first was, before the replacement counts as done: a
// version that crashes a second after it started is rolled back too. A
// workload's minReadySeconds sets it on its pods.
const AnnotationMinReadySeconds = "podunit.io/min-ready-seconds"

// DefaultMinReady is the window without the annotation, as Nomad's
// min_healthy_time: long enough to see a crash at start, short enough not
// to hold up a rollout.
const DefaultMinReady = 10 * time.Second

// MinReady is the pod's window (validated by Validate); 0 is allowed: ready
// once is enough, as Kubernetes' minReadySeconds: 0.
func MinReady(pod *corev1.Pod) time.Duration {
	v, ok := pod.Annotations[AnnotationMinReadySeconds]
	if !ok {
		return DefaultMinReady
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return DefaultMinReady
	}
	return time.Duration(n) * time.Second
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
	if v, ok := pod.Annotations[AnnotationMinReadySeconds]; ok {
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err != nil || n > 3600 {
			fail(fmt.Sprintf("metadata.annotations[%s]", AnnotationMinReadySeconds), "%q: a number of seconds from 0 to 3600", v)
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
