package podshim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/cni/cache"
	"github.com/podunit/podunit/podshim/criconfig"
)

// ensureSandbox adopts the pod's ready sandbox from an earlier podshim or
// creates one. Sandboxes of this pod name with another UID (an earlier
// generation) or not ready are removed first.
func (s *Shim) ensureSandbox(ctx context.Context) error {
	items, err := s.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{
		LabelPodNamespace: s.pod.Namespace,
		LabelPodName:      s.pod.Name,
		LabelManaged:      "true",
	}})
	if err != nil {
		return fmt.Errorf("list sandboxes: %w", err)
	}
	// Newest first, so the newest ready sandbox of this UID is the one adopted.
	sort.Slice(items, func(i, j int) bool { return items[i].CreatedAt > items[j].CreatedAt })
	var (
		adopt   string
		attempt uint32
		stale   []string
	)
	for _, sb := range items {
		ours := sb.Metadata.GetUid() == string(s.pod.UID)
		if ours {
			attempt = max(attempt, sb.Metadata.GetAttempt()+1)
		}
		if ours && adopt == "" && sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			adopt = sb.Id
			attempt = sb.Metadata.GetAttempt()
			continue
		}
		stale = append(stale, sb.Id)
	}
	for _, id := range stale {
		s.log.Info("removing stale sandbox", "sandbox", id)
		if err := s.removeSandbox(ctx, id); err != nil {
			return err
		}
	}
	s.hostDNS = readHostDNS(s.cfg.ResolvConf, s.log)
	s.sandboxConfig = criconfig.Sandbox(s.input(), attempt)
	if adopt != "" {
		s.log.Info("adopted sandbox", "sandbox", adopt)
		s.sandboxID = adopt
	} else {
		// As the kubelet: the pod's log directory exists before its sandbox.
		if err := os.MkdirAll(s.sandboxConfig.LogDirectory, 0o755); err != nil {
			return fmt.Errorf("pod log directory: %w", err)
		}
		id, err := s.rt.RunPodSandbox(ctx, s.sandboxConfig, "")
		if err != nil {
			return fmt.Errorf("run pod sandbox: %w", err)
		}
		s.log.Info("created sandbox", "sandbox", id, "attempt", attempt)
		s.sandboxID = id
		s.freshSandbox = true
	}
	st, err := s.rt.PodSandboxStatus(ctx, s.sandboxID, false)
	if err != nil {
		return fmt.Errorf("sandbox %s: status: %w", s.sandboxID, err)
	}
	s.startTime = time.Unix(0, st.GetStatus().GetCreatedAt()).UTC()
	s.activeSince = s.startTime
	if s.freshSandbox {
		// Made now: this clock's reading, which a wall clock set at boot
		// (no RTC, time synced later) does not move.
		s.activeSince = s.cfg.Now()
	}
	s.podIPs = nil
	if net := st.GetStatus().GetNetwork(); net != nil && net.Ip != "" {
		s.podIPs = append(s.podIPs, net.Ip)
		for _, ip := range net.AdditionalIps {
			s.podIPs = append(s.podIPs, ip.Ip)
		}
	}
	if err := s.setupPodDir(); err != nil {
		return fmt.Errorf("pod directory %s: %w", s.podDir(), err)
	}
	return nil
}

// teardown stops every container within the grace period, then stops and
// removes the sandbox. It is bounded by the grace period plus StopTimeout.
//
// A runtime that cannot be reached is not waited for: the stop would hold
// systemd's job queue for the whole grace period, and with it the
// runtime's own start (systemd orders a queued stop before a start). The
// sandbox is left, running, to podunit sync, which removes the sandboxes
// whose unit is gone once the runtime answers again.
func (s *Shim) teardown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.grace())*time.Second+s.cfg.StopTimeout)
	defer cancel()
	if f, ok := s.rt.(failFaster); ok {
		f.SetFailFast(true)
		defer f.SetFailFast(false)
	}
	s.send("STOPPING=1\nSTATUS=Stopping: containers")
	defer s.removeState()
	// Out of its Services' rotation first: no new connection reaches a
	// container that is about to get its stop signal.
	s.terminating = true
	if err := s.writeState(); err != nil {
		s.log.Warn("write state", "err", err)
	}
	var err error
	if s.sandboxID == "" {
		// Stopped before a sandbox was made or adopted: remove any that a
		// racing RunPodSandbox left, and the directories made for it.
		if err = s.removeAll(ctx); err == nil {
			s.removePodFiles()
		}
	} else {
		err = s.removeSandbox(ctx, s.sandboxID)
	}
	if s.runtimeUnavailable(err) {
		s.log.Warn("the CRI runtime cannot be reached: the pod's sandbox is left to podunit sync, which removes it once the runtime is back", "sandbox", s.sandboxID, "err", err)
		s.send("STATUS=Stopped; the CRI runtime cannot be reached: podunit sync removes the sandbox once it is back")
		return nil
	}
	return err
}

func (s *Shim) removeAll(ctx context.Context) error {
	items, err := s.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{
		LabelPodUID: string(s.pod.UID), LabelManaged: "true",
	}})
	if err != nil {
		return fmt.Errorf("list sandboxes: %w", err)
	}
	var errs []error
	for _, sb := range items {
		errs = append(errs, s.removeSandbox(ctx, sb.Id))
	}
	return errors.Join(errs...)
}

// removeSandbox stops the sandbox's containers, each given the grace period
// (in parallel, as the kubelet does; sidecars after the others), then stops
// and removes the sandbox.
func (s *Shim) removeSandbox(ctx context.Context, id string) error {
	list, err := s.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: id})
	if err != nil {
		return fmt.Errorf("sandbox %s: list containers: %w", id, err)
	}
	if err := s.stopSidecarsLast(ctx, id, list); err != nil {
		return err
	}
	if id == s.sandboxID {
		s.forwardLogs(ctx) // what the containers said while stopping
	}
	repaired, err := cache.StopSandbox(ctx, sandboxStopper(s.stopSandbox), cache.Dir, id)
	if len(repaired) > 0 {
		s.log.Warn("removed the sandbox's unreadable CNI cache (a power cut?)", "sandbox", id, "files", repaired)
	}
	if err != nil {
		return fmt.Errorf("stop sandbox %s: %w", id, err)
	}
	if err := s.rt.RemovePodSandbox(ctx, id); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", id, err)
	}
	s.log.Info("removed sandbox", "sandbox", id)
	if id == s.sandboxID {
		s.removePodFiles()
	}
	return nil
}

// removePodFiles removes what the pod kept on the host once its sandbox is
// gone: its log directory (its logs are in the journal; the runtime leaves
// it, as the kubelet's own cleanup would remove it), made before the
// sandbox, and its pod directory (volumes go with the pod, as emptyDir and
// the downward API do).
func (s *Shim) removePodFiles() {
	if s.sandboxConfig != nil {
		if err := os.RemoveAll(s.sandboxConfig.LogDirectory); err != nil {
			s.log.Warn("remove pod log directory", "err", err)
		}
	}
	if err := s.removePodDir(); err != nil {
		s.log.Warn("remove pod directory", "dir", s.podDir(), "err", err)
	}
}

// stopSidecarsLast stops the containers of list (stopContainers), the
// sidecars after the others, as the kubelet does.
func (s *Shim) stopSidecarsLast(ctx context.Context, sandbox string, list []*runtimeapi.Container) error {
	sidecars := map[string]bool{}
	for _, c := range s.containers {
		sidecars[c.spec.Name] = c.sidecar
	}
	var first, last []*runtimeapi.Container
	for _, c := range list {
		if sidecars[c.Metadata.GetName()] {
			last = append(last, c)
		} else {
			first = append(first, c)
		}
	}
	if err := s.stopContainers(ctx, sandbox, first); err != nil {
		return err
	}
	return s.stopContainers(ctx, sandbox, last)
}

// stopContainers stops the containers of list that are not exited, in
// parallel: a running one (or one in an unknown state) within the grace
// period, a created one at once. A created container never ran its
// process, and the runtime's StopPodSandbox would stop it on its own terms:
// containerd kills it, CRI-O sends it its stop signal, which the OCI
// runtime's waiting process may ignore (as PID 1 of its namespace without
// a handler), and kills it only at the end of that call's deadline.
func (s *Shim) stopContainers(ctx context.Context, sandbox string, list []*runtimeapi.Container) error {
	var wg sync.WaitGroup
	errs := make([]error, len(list))
	for i, c := range list {
		var stop func() error
		switch c.State {
		case runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_UNKNOWN:
			stop = func() error {
				s.log.Info("stopping container", "container", c.Metadata.GetName(), "id", c.Id, "grace", s.grace())
				return s.stopContainer(ctx, c.Metadata.GetName(), c.Id)
			}
		case runtimeapi.ContainerState_CONTAINER_CREATED:
			stop = func() error {
				// A kill that fails leaves it to the sandbox's stop, bounded
				// too (stopSandbox).
				s.log.Info("killing container that was created but not started", "container", c.Metadata.GetName(), "id", c.Id)
				if err := s.rt.StopContainer(ctx, c.Id, 0); err != nil && status.Code(err) != codes.NotFound {
					s.log.Warn("kill created container", "container", c.Metadata.GetName(), "id", c.Id, "err", err)
				}
				return nil
			}
		default:
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stop(); err != nil {
				errs[i] = fmt.Errorf("stop container %s: %w", c.Id, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sandbox %s: %w", sandbox, err)
	}
	return nil
}

// DefaultSandboxStopWait is Config.SandboxStopWait's default: a few
// seconds, as the kubelet's least grace period (2 s) is, for what podshim
// could not stop itself.
const DefaultSandboxStopWait = 5 * time.Second

// sandboxStopper is a StopPodSandbox for cache.StopSandbox.
type sandboxStopper func(ctx context.Context, id string) error

func (f sandboxStopper) StopPodSandbox(ctx context.Context, id string) error { return f(ctx, id) }

// stopSandbox stops sandbox id once podshim stopped its containers. What is
// left (the infra container, a container whose create a stop cut short,
// which CRI-O keeps out of its list) the runtime stops on its own terms:
// containerd kills it at once; CRI-O sends it its stop signal and kills it
// when the call's deadline is near, which would be the client's two
// minutes, past the unit's stop timeout. The first call's deadline is
// therefore SandboxStopWait; a call cut short by it is made again, with
// the rest of ctx's time, once the runtime's kills are under way.
func (s *Shim) stopSandbox(ctx context.Context, id string) error {
	first, cancel := context.WithTimeout(ctx, s.cfg.SandboxStopWait)
	err := s.rt.StopPodSandbox(first, id)
	cancel()
	if err == nil || ctx.Err() != nil || (status.Code(err) != codes.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	s.log.Info("the runtime did not stop the sandbox in time; asking again", "sandbox", id, "wait", s.cfg.SandboxStopWait, "err", err)
	return s.rt.StopPodSandbox(ctx, id)
}
