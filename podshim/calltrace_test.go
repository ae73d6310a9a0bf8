package podshim

import (
	"context"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// outageRuntime tells whether it is reachable and records fail-fast, as
// criclient's client does.
type outageRuntime struct {
	Runtime
	reachable, failFast bool
}

func (o *outageRuntime) Reachable() bool     { return o.reachable }
func (o *outageRuntime) SetFailFast(on bool) { o.failFast = on }

// A traced runtime keeps what the shim asks of a runtime beside its calls:
// without them a runtime outage is waited out call by call (two minutes
// each) instead of ridden out at once.
func TestTracedKeepsOutageHandling(t *testing.T) {
	inner := &outageRuntime{}
	rt := Traced(inner, &CallTrace{})
	r, ok := rt.(reachability)
	if !ok {
		t.Fatal("the traced runtime does not tell whether the runtime is reachable")
	}
	if r.Reachable() {
		t.Error("reachable, while the runtime is not")
	}
	f, ok := rt.(failFaster)
	if !ok {
		t.Fatal("the traced runtime cannot be made to fail fast")
	}
	f.SetFailFast(true)
	if !inner.failFast {
		t.Error("SetFailFast did not reach the runtime")
	}
	if Traced(inner, nil) != Runtime(inner) {
		t.Error("without a trace, the runtime is not used as it is")
	}
}

// A start progresses while a CRI call is under way (each is bounded by the
// client's deadline) or one ended since the last look; not otherwise.
func TestProgressed(t *testing.T) {
	tr := &CallTrace{}
	if tr.progressed() {
		t.Error("progress before any call")
	}
	end := tr.call("RunPodSandbox")
	if !tr.progressed() || !tr.progressed() {
		t.Error("no progress while a call is under way")
	}
	end()
	if !tr.progressed() {
		t.Error("no progress after a call ended")
	}
	if tr.progressed() {
		t.Error("progress again with no call since the last look")
	}
}

// slowSandboxCRI makes its sandboxes as slowly as a machine with ten pods
// starting under emulation did (74 s), scaled down.
type slowSandboxCRI struct {
	*fakeCRI
	delay time.Duration
}

func (r *slowSandboxCRI) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	time.Sleep(r.delay)
	return r.fakeCRI.RunPodSandbox(ctx, config, handler)
}

// A start whose sandbox takes many keepalive intervals extends systemd's
// start timeout while it waits (before, a unit whose calls took longer
// than its 90 s timed out before READY, at every restart).
func TestSlowStartExtendsTheStartTimeout(t *testing.T) {
	n := &notes{}
	rt := &slowSandboxCRI{newFakeCRI("busybox:1"), 300 * time.Millisecond}
	tr := &CallTrace{}
	s := newShim(t, testPod(), Traced(rt, tr), n)
	s.cfg.Trace, s.cfg.KeepaliveInterval = tr, 20*time.Millisecond
	if err := s.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(n.all(), "EXTEND_TIMEOUT_USEC="); got < 2 {
		t.Errorf("%d extensions of the start timeout during a start of many keepalive intervals; systemd was told:\n%s", got, n.all())
	}
	// Once the start is over, the extensions stop (the loop's keepalive
	// takes over).
	before := n.all()
	time.Sleep(100 * time.Millisecond)
	if after := n.all(); after != before {
		t.Errorf("systemd was told more after the start ended:\n%s", strings.TrimPrefix(after, before))
	}
}
