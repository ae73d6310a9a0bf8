package podshim

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// minStopGrace is the least time a container gets between SIGTERM and
// SIGKILL, even when a preStop hook used up its grace period (the kubelet's
// minimumGracePeriodInSeconds).
const minStopGrace = 2

// runHook runs a lifecycle hook within timeout: sleep here, exec in the
// container and httpGet to the pod IP from the host as probes do.
func (s *Shim) runHook(ctx context.Context, spec *corev1.Container, id string, h *corev1.LifecycleHandler, timeout time.Duration) error {
	if h.Sleep != nil {
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.probeOnce(ctx, spec, id, &corev1.Probe{
		ProbeHandler:   corev1.ProbeHandler{Exec: h.Exec, HTTPGet: h.HTTPGet},
		TimeoutSeconds: int32(max(timeout/time.Second, 1)),
	})
}

// stopContainer runs the container's preStop hook, then stops it with what
// is left of the grace period (at least minStopGrace seconds), as the
// kubelet does.
func (s *Shim) stopContainer(ctx context.Context, name, id string) error {
	grace := s.grace()
	c := s.byName(name)
	if c != nil && c.spec.Lifecycle != nil && c.spec.Lifecycle.PreStop != nil {
		start := time.Now()
		s.log.Info("running preStop hook", "container", name)
		if err := s.runHook(ctx, c.spec, id, c.spec.Lifecycle.PreStop, time.Duration(grace)*time.Second); err != nil {
			s.log.Warn("preStop hook failed", "container", name, "err", err)
		}
		grace -= int64(time.Since(start).Seconds())
	}
	if c != nil {
		if handled, err := s.stopWithOwnSignal(ctx, c.spec, id, max(grace, minStopGrace)); handled {
			return err
		}
	}
	err := s.rt.StopContainer(ctx, id, max(grace, minStopGrace))
	if err == nil || s.runtimeUnavailable(err) {
		return err
	}
	// containerd 1.x fails a kill whose task exited meanwhile ("ttrpc:
	// closed", seen under load): what counts is whether it still runs.
	st, serr := s.rt.ContainerStatus(ctx, id, false)
	switch {
	case status.Code(serr) == codes.NotFound:
		return nil
	case serr == nil && st.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING:
		s.log.Info("container stopped, though the runtime said otherwise", "container", name, "err", err)
		return nil
	case serr == nil:
		// Still running: once more.
		return s.rt.StopContainer(ctx, id, minStopGrace)
	}
	return err
}

func (s *Shim) byName(name string) *container {
	for _, c := range s.containers {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}
