package podshim

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// container is what podshim knows of one of the pod's containers.
type container struct {
	spec    *corev1.Container
	init    bool // an init container (spec.initContainers)
	sidecar bool // an init container with restartPolicy Always

	id       string // the current instance; "" before the first is created
	attempt  uint32 // the current instance's attempt: the restart count
	imageRef string
	state    runtimeapi.ContainerState
	started  time.Time

	exit *exitInfo // how the current instance exited, once it did
	last *exitInfo // how the previous instance exited (lastState)

	done      bool      // exited and not to be restarted
	restartAt time.Time // a (re)start is due at this time; zero: none pending
	backoff   Backoff
	probes    *probes // the current instance's probe workers; nil: none

	waiting     *corev1.ContainerStateWaiting // why a (re)start is held back (image)
	pullBackoff Backoff

	exitWatch *exitWatch // the running instance's process; nil: not watched
	watchedID string     // the instance exitWatch is for

	log     containerLog // the instance's log, as forwarded
	rotated []rotatedLog // logs rotated aside that the runtime may still write, oldest first
	carry   string       // the start of a line a rotation split, for the next log's first line
}

// unwatch stops watching c's process.
func (c *container) unwatch() {
	c.exitWatch.stop()
	c.exitWatch, c.watchedID = nil, ""
}

// stopProbes ends the probe workers of the current instance.
func (c *container) stopProbes() {
	c.probes.stop()
	c.probes = nil
}

// app reports whether c is one of the pod's app containers.
func (c *container) app() bool { return !c.init }

// completed reports whether c (a regular init container) exited successfully.
func (c *container) completed() bool { return c.done && c.exit != nil && c.exit.ExitCode == 0 }

// restartPolicy is c's own: sidecars always restart; a regular init
// container restarts on failure unless the pod's policy is Never; an app
// container follows the pod.
func (c *container) restartPolicy(pod corev1.RestartPolicy) corev1.RestartPolicy {
	switch {
	case c.sidecar:
		return corev1.RestartPolicyAlways
	case c.init && pod == corev1.RestartPolicyNever:
		return corev1.RestartPolicyNever
	case c.init:
		return corev1.RestartPolicyOnFailure
	}
	return pod
}

// due reports whether a (re)start of c is due at now.
func (c *container) due(now time.Time) bool {
	return !c.done && !c.restartAt.IsZero() && !now.Before(c.restartAt)
}

// exitInfo is how a container instance ended.
type exitInfo struct {
	ContainerID string    `json:"containerID"`
	ExitCode    int32     `json:"exitCode"`
	Reason      string    `json:"reason"`
	Message     string    `json:"message,omitempty"`
	StartedAt   time.Time `json:"startedAt"`
	FinishedAt  time.Time `json:"finishedAt"`
}

func exitOf(st *runtimeapi.ContainerStatus) *exitInfo {
	if st == nil {
		return &exitInfo{ExitCode: -1, Reason: "Unknown"}
	}
	reason := st.Reason
	switch {
	case reason != "":
	case st.ExitCode == 0:
		reason = "Completed"
	default:
		reason = "Error"
	}
	return &exitInfo{
		ContainerID: st.Id,
		ExitCode:    st.ExitCode,
		Reason:      reason,
		Message:     st.Message,
		StartedAt:   time.Unix(0, st.StartedAt).UTC(),
		FinishedAt:  time.Unix(0, st.FinishedAt).UTC(),
	}
}

// waitingError is a container that cannot be created yet: its image is not
// present (reason ErrImagePull, ImagePullBackOff or ErrImageNeverPull) or its
// config cannot be met (CreateContainerConfigError). It waits with that
// reason and is tried again with back-off.
type waitingError struct{ reason, msg string }

func (e *waitingError) Error() string { return e.reason + ": " + e.msg }
