package podshim

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CallTrace records when podshim's CRI calls began and how long they took,
// from podshim's start to the pod's first READY=1, which logs them as one
// line ("start timings": each call as offset+duration from main). The
// start trace of make bench (test/bench) reads that line; for anyone else
// it says where a slow start went. Only the start's calls are recorded:
// none after the start ended (Shim.Run ends it), at most maxTracedCalls.
type CallTrace struct {
	// Main is when podshim's main began; MainMonotonic the same moment on
	// CLOCK_MONOTONIC in microseconds, the clock of systemd's timestamps.
	Main          time.Time
	MainMonotonic int64

	mu    sync.Mutex
	calls []tracedCall
	done  bool
	// The CRI calls under way and ended (all of them, after the start
	// too), and the ended count when progressed was last asked.
	inFlight    int
	ended, seen uint64
}

// maxTracedCalls bounds the record of a start that makes many calls (many
// containers, pulls).
const maxTracedCalls = 64

type tracedCall struct {
	name       string
	begin, end time.Time
}

// Record adds a call that began at begin and ended now.
func (t *CallTrace) Record(name string, begin time.Time) {
	if t == nil {
		return
	}
	end := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.done && len(t.calls) < maxTracedCalls {
		t.calls = append(t.calls, tracedCall{name, begin, end})
	}
}

// call marks a CRI call under way; the function it returns ends it and
// records it.
func (t *CallTrace) call(name string) func() {
	begin := time.Now()
	t.mu.Lock()
	t.inFlight++
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		t.inFlight--
		t.ended++
		t.mu.Unlock()
		t.Record(name, begin)
	}
}

// progressed is whether a CRI call is under way, or one ended since it was
// last asked. Every call is bounded by the client's deadline, so a start
// that has one under way is not stuck in podshim.
func (t *CallTrace) progressed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.inFlight > 0 || t.ended != t.seen
	t.seen = t.ended
	return p
}

// end stops the record: the start is over.
func (t *CallTrace) end() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done = true
}

// attrs ends the trace and returns its calls in the order they began, as
// log attributes: name=offset+duration, both in milliseconds from Main.
func (t *CallTrace) attrs(now time.Time) []any {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done = true
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }
	out := []any{slog.Int64("mainMonotonicUs", t.MainMonotonic), slog.String("readyAt", ms(now.Sub(t.Main)))}
	calls := t.calls
	for i := 1; i < len(calls); i++ { // few calls, nearly in order already
		for j := i; j > 0 && calls[j].begin.Before(calls[j-1].begin); j-- {
			calls[j], calls[j-1] = calls[j-1], calls[j]
		}
	}
	for _, c := range calls {
		out = append(out, slog.String(c.name, ms(c.begin.Sub(t.Main))+"+"+ms(c.end.Sub(c.begin))))
	}
	return out
}

// Traced wraps rt so that the calls of a pod's start are recorded in t;
// with t nil it is rt. The wrapper keeps what the shim asks of rt beside
// its calls (reachability, failFaster): without them a runtime outage was
// waited out call by call instead of ridden out.
func Traced(rt Runtime, t *CallTrace) Runtime {
	if t == nil {
		return rt
	}
	return &tracedRuntime{Runtime: rt, t: t}
}

type tracedRuntime struct {
	Runtime
	t *CallTrace
}

// Reachable is rt's, or true when rt cannot tell.
func (r *tracedRuntime) Reachable() bool {
	if x, ok := r.Runtime.(reachability); ok {
		return x.Reachable()
	}
	return true
}

// SetFailFast is rt's, if it has one.
func (r *tracedRuntime) SetFailFast(on bool) {
	if x, ok := r.Runtime.(failFaster); ok {
		x.SetFailFast(on)
	}
}

func (r *tracedRuntime) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	defer r.t.call("RunPodSandbox")()
	return r.Runtime.RunPodSandbox(ctx, config, handler)
}

func (r *tracedRuntime) PodSandboxStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	defer r.t.call("PodSandboxStatus")()
	return r.Runtime.PodSandboxStatus(ctx, id, verbose)
}

func (r *tracedRuntime) ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	defer r.t.call("ListPodSandbox")()
	return r.Runtime.ListPodSandbox(ctx, filter)
}

func (r *tracedRuntime) CreateContainer(ctx context.Context, sandbox string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	defer r.t.call("CreateContainer")()
	return r.Runtime.CreateContainer(ctx, sandbox, config, sandboxConfig)
}

func (r *tracedRuntime) StartContainer(ctx context.Context, id string) error {
	defer r.t.call("StartContainer")()
	return r.Runtime.StartContainer(ctx, id)
}

func (r *tracedRuntime) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	defer r.t.call("ListContainers")()
	return r.Runtime.ListContainers(ctx, filter)
}

func (r *tracedRuntime) ContainerStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	defer r.t.call("ContainerStatus")()
	return r.Runtime.ContainerStatus(ctx, id, verbose)
}

func (r *tracedRuntime) ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	defer r.t.call("ImageStatus")()
	return r.Runtime.ImageStatus(ctx, image, verbose)
}

func (r *tracedRuntime) PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	defer r.t.call("PullImage")()
	return r.Runtime.PullImage(ctx, image, auth, sandboxConfig)
}

func (r *tracedRuntime) StopPodSandbox(ctx context.Context, id string) error {
	defer r.t.call("StopPodSandbox")()
	return r.Runtime.StopPodSandbox(ctx, id)
}

func (r *tracedRuntime) RemovePodSandbox(ctx context.Context, id string) error {
	defer r.t.call("RemovePodSandbox")()
	return r.Runtime.RemovePodSandbox(ctx, id)
}

func (r *tracedRuntime) StopContainer(ctx context.Context, id string, timeout int64) error {
	defer r.t.call("StopContainer")()
	return r.Runtime.StopContainer(ctx, id, timeout)
}

func (r *tracedRuntime) RemoveContainer(ctx context.Context, id string) error {
	defer r.t.call("RemoveContainer")()
	return r.Runtime.RemoveContainer(ctx, id)
}

func (r *tracedRuntime) ReopenContainerLog(ctx context.Context, id string) error {
	defer r.t.call("ReopenContainerLog")()
	return r.Runtime.ReopenContainerLog(ctx, id)
}

func (r *tracedRuntime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	defer r.t.call("ExecSync")()
	return r.Runtime.ExecSync(ctx, id, cmd, timeout)
}
