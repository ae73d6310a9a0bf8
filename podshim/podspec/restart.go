package podspec

import (
	"math"
	"time"
)

// RestartBackoff is how systemd paces the restarts of a pod's podshim
// after it failed (killed, hung, the runtime unreachable at its start):
// the first restart after Sec, each next one longer, on an exponential
// curve that reaches MaxDelay at restart Steps+1 and stays there. The
// count is systemd's own NRestarts, which a start that is not an
// automatic restart (a new generation from sync, systemctl start or
// restart) sets back to zero.
//
// systemd 254 and later do it with RestartSec=, RestartSteps= and
// RestartMaxDelaySec=. On older managers the unit has RestartSec= alone,
// and podshim, run with --restart-backoff, waits out the rest itself
// before it does anything (Wait), so that the pacing is the same.
type RestartBackoff struct {
	Sec      time.Duration
	Steps    int
	MaxDelay time.Duration
}

// DefaultRestartBackoff paces podshim's restarts 2 s, 4 s, 8 s, 15 s, 30 s
// and then every minute: a podshim that fails at once (the runtime down at
// boot) does not spin, and one that failed for a passing reason is back
// within seconds. The pod's containers keep running meanwhile; they are
// not podshim's children.
var DefaultRestartBackoff = RestartBackoff{Sec: 2 * time.Second, Steps: 5, MaxDelay: time.Minute}

// Delay is how long systemd waits before the n-th automatic restart (n ≥ 1
// counts this one), as systemd computes it (service_restart_usec_next):
// Sec^((Steps-n+1)/Steps) · MaxDelay^((n-1)/Steps).
func (b RestartBackoff) Delay(n int) time.Duration {
	switch {
	case n <= 1 || b.Steps <= 0 || b.Sec <= 0 || b.MaxDelay <= b.Sec:
		return b.Sec
	case n > b.Steps:
		return b.MaxDelay
	}
	steps := float64(b.Steps)
	sec, maxDelay := float64(b.Sec/time.Microsecond), float64(b.MaxDelay/time.Microsecond)
	us := math.Pow(maxDelay, float64(n-1)/steps) * math.Pow(sec, (steps-float64(n)+1)/steps)
	return time.Duration(us) * time.Microsecond
}

// Wait is what a podshim run on a manager without RestartSteps= still has
// to wait before the n-th automatic restart goes on: systemd has already
// waited Sec.
func (b RestartBackoff) Wait(n int) time.Duration {
	return max(b.Delay(n)-b.Sec, 0)
}
