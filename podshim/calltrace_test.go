package podshim

import "testing"

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
