package podshim

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/criconfig"
)

// stopWithOwnSignal stops a container whose stopSignal the runtime does not
// honour (containerd before 2.1 does not know the CRI's stop_signal, and
// reports the runtime default back): podshim sends the signal to the
// container's first process itself, waits up to grace seconds for it to
// exit, and leaves only the SIGKILL to the runtime. handled is false when
// the runtime honours the signal, or the process cannot be found: the
// runtime's own stop then does it all.
func (s *Shim) stopWithOwnSignal(ctx context.Context, c *corev1.Container, id string, grace int64) (handled bool, err error) {
	want := criconfig.StopSignal(c)
	if want == runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		return false, nil
	}
	st, err := s.rt.ContainerStatus(ctx, id, false)
	if err != nil || st.GetStatus().GetStopSignal() == want {
		return false, nil
	}
	sig := unix.SignalNum(string(*c.Lifecycle.StopSignal))
	pid := s.containerPID(ctx, id)
	if sig == 0 || pid <= 0 {
		return false, nil
	}
	s.log.Info("sending the container's stop signal (the runtime does not)", "container", c.Name, "signal", *c.Lifecycle.StopSignal)
	if err := unix.Kill(pid, sig); err != nil {
		return false, nil // gone already: the runtime's stop finds it exited
	}
	deadline := time.Now().Add(time.Duration(grace) * time.Second)
	for time.Now().Before(deadline) {
		st, err := s.rt.ContainerStatus(ctx, id, false)
		if err != nil || st.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			break
		}
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Whatever is left is killed: a timeout of 0 is SIGKILL at once.
	if err := s.rt.StopContainer(ctx, id, 0); err != nil {
		return true, fmt.Errorf("stop container %s: %w", id, err)
	}
	return true, nil
}
