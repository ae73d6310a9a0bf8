package podshim

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The kubelet's container restart back-off: the first restart is immediate,
// then 10 s, doubling up to 5 min; a container that ran without a back-off
// for 10 min starts over.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	backoffReset   = 2 * backoffMax
)

// Backoff is one container's restart back-off. It is kept in the state file,
// so a restarted podshim backs off as the previous one would have.
type Backoff struct {
	Delay   time.Duration `json:"delay"`
	Updated time.Time     `json:"updated"`
	// For is the container instance whose exit set Delay: a podshim that
	// adopts the pod does not count the same exit twice.
	For string `json:"for,omitempty"`
}

// next returns the delay before the restart of container instance id, which
// finished at finished, and records it.
func (b *Backoff) next(id string, finished time.Time) time.Duration {
	if id != "" && id == b.For {
		return b.Delay
	}
	b.For = id
	switch {
	case b.Updated.IsZero() || finished.Sub(b.Updated) > backoffReset:
		b.Delay = 0
	case b.Delay == 0:
		b.Delay = backoffInitial
	default:
		b.Delay = min(2*b.Delay, backoffMax)
	}
	b.Updated = finished
	return b.Delay
}

// shouldRestart applies the pod's restartPolicy to a container that exited
// with code.
func shouldRestart(policy corev1.RestartPolicy, code int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	}
	return true
}
