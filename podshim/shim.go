package podshim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ErrContainerExited is returned by Run when one of the pod's containers is no
// longer running. The sandbox is left in place for the next podshim to adopt.
var ErrContainerExited = errors.New("container exited")

// Config is what one podshim needs besides the pod.
type Config struct {
	// CgroupParent is the sandbox's CgroupParent: the pod's slice (systemd
	// cgroup driver) or its cgroup path (cgroupfs).
	CgroupParent string
	// StateDir is where the pod's state file is written (/run/podunit/pods).
	StateDir string
	// LogRoot is the kubelet-style container log root (/var/log/pods).
	LogRoot string
	// PollInterval is how often the containers' states are checked. The
	// CRI of containerd 1.6 has no event stream, so this is a poll, like the
	// kubelet's PLEG relist.
	PollInterval time.Duration
	// StopTimeout bounds the sandbox teardown after the containers stopped.
	StopTimeout time.Duration
}

// Notify sends a state string to systemd (sd_notify). It is a no-op when not
// run by systemd.
type Notify func(state string) error

// Shim runs one pod.
type Shim struct {
	pod    *corev1.Pod
	cfg    Config
	rt     Runtime
	notify Notify
	log    *slog.Logger

	sandboxID string
}

// New returns a Shim for pod, which must be defaulted and validated (as the
// spec files written by `podunit sync` are).
func New(pod *corev1.Pod, cfg Config, rt Runtime, notify Notify, log *slog.Logger) *Shim {
	if cfg.LogRoot == "" {
		cfg.LogRoot = DefaultLogRoot
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = time.Minute
	}
	return &Shim{pod: pod, cfg: cfg, rt: rt, notify: notify, log: log}
}

func (s *Shim) grace() int64 {
	if g := s.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return *g
	}
	return 30
}

func (s *Shim) status(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if err := s.notify("STATUS=" + msg); err != nil {
		s.log.Warn("sd_notify", "err", err)
	}
}

// Run brings the pod up, reports it ready, and watches it until ctx is done
// (a stop was requested: the pod is torn down and Run returns nil) or a
// container exits (Run returns an error wrapping ErrContainerExited and leaves
// the sandbox for the next podshim). A start-up failure is returned as is; the
// sandbox, if any, is kept for the next attempt unless ctx is done.
func (s *Shim) Run(ctx context.Context) error {
	err := s.start(ctx)
	if err == nil {
		err = s.watch(ctx)
	}
	if ctx.Err() != nil {
		return s.teardown(context.WithoutCancel(ctx))
	}
	return err
}

func (s *Shim) start(ctx context.Context) error {
	s.status("Starting: pod sandbox")
	id, config, err := s.ensureSandbox(ctx)
	if err != nil {
		return err
	}
	s.sandboxID = id
	containers, err := s.containers(ctx)
	if err != nil {
		return err
	}
	for i := range s.pod.Spec.Containers {
		if err := s.ensureContainer(ctx, &s.pod.Spec.Containers[i], config, containers); err != nil {
			return err
		}
	}
	st, err := s.writeState(ctx)
	if err != nil {
		return err
	}
	n := len(s.pod.Spec.Containers)
	s.log.Info("pod running", "sandbox", id, "ip", st.PodIP)
	if err := s.notify(fmt.Sprintf("READY=1\nSTATUS=Running: %d/%d containers running, pod IP %s", n, n, st.PodIP)); err != nil {
		s.log.Warn("sd_notify", "err", err)
	}
	return nil
}

// ensureSandbox adopts the pod's ready sandbox from an earlier podshim or
// creates one. Sandboxes of this pod name with another UID (an earlier
// generation) or not ready are removed first.
func (s *Shim) ensureSandbox(ctx context.Context) (string, *runtimeapi.PodSandboxConfig, error) {
	items, err := s.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{
		LabelPodNamespace: s.pod.Namespace,
		LabelPodName:      s.pod.Name,
		LabelManaged:      "true",
	}})
	if err != nil {
		return "", nil, fmt.Errorf("list sandboxes: %w", err)
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
			return "", nil, err
		}
	}
	config := s.sandboxConfig(attempt)
	if adopt != "" {
		s.log.Info("adopted sandbox", "sandbox", adopt)
		return adopt, config, nil
	}
	id, err := s.rt.RunPodSandbox(ctx, config, "")
	if err != nil {
		return "", nil, fmt.Errorf("run pod sandbox: %w", err)
	}
	s.log.Info("created sandbox", "sandbox", id, "attempt", attempt)
	return id, config, nil
}

// containers returns the sandbox's containers by name, newest first.
func (s *Shim) containers(ctx context.Context) (map[string][]*runtimeapi.Container, error) {
	list, err := s.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: s.sandboxID})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Metadata.GetAttempt() > list[j].Metadata.GetAttempt() })
	byName := map[string][]*runtimeapi.Container{}
	for _, c := range list {
		name := c.Metadata.GetName()
		byName[name] = append(byName[name], c)
	}
	return byName, nil
}

// ensureContainer keeps a running container whose spec is unchanged, or
// creates and starts the next attempt of it.
func (s *Shim) ensureContainer(ctx context.Context, c *corev1.Container, sandbox *runtimeapi.PodSandboxConfig, existing map[string][]*runtimeapi.Container) error {
	var attempt uint32
	hash := containerHash(c)
	for i, old := range existing[c.Name] {
		if i == 0 {
			attempt = old.Metadata.GetAttempt() + 1
			if old.State == runtimeapi.ContainerState_CONTAINER_RUNNING && old.Annotations[annotationContainerHash] == hash {
				s.log.Info("adopted container", "container", c.Name, "id", old.Id)
				return nil
			}
		}
		if old.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			if err := s.rt.StopContainer(ctx, old.Id, s.grace()); err != nil {
				return fmt.Errorf("container %q: stop outdated %s: %w", c.Name, old.Id, err)
			}
		}
		if err := s.rt.RemoveContainer(ctx, old.Id); err != nil {
			return fmt.Errorf("container %q: remove %s: %w", c.Name, old.Id, err)
		}
	}
	s.status("Starting: container %s (image %s)", c.Name, c.Image)
	imageRef, err := s.ensureImage(ctx, c, sandbox)
	if err != nil {
		return err
	}
	id, err := s.rt.CreateContainer(ctx, s.sandboxID, s.containerConfig(c, imageRef, attempt), sandbox)
	if err != nil {
		return fmt.Errorf("container %q: create: %w", c.Name, err)
	}
	if err := s.rt.StartContainer(ctx, id); err != nil {
		return fmt.Errorf("container %q: start %s: %w", c.Name, id, err)
	}
	s.log.Info("started container", "container", c.Name, "id", id, "restartCount", attempt)
	return nil
}

// ensureImage makes the container's image present as its pull policy says
// and returns the image reference to create the container from.
func (s *Shim) ensureImage(ctx context.Context, c *corev1.Container, sandbox *runtimeapi.PodSandboxConfig) (string, error) {
	spec := &runtimeapi.ImageSpec{Image: c.Image}
	if c.ImagePullPolicy != corev1.PullAlways {
		st, err := s.rt.ImageStatus(ctx, spec, false)
		if err != nil {
			return "", fmt.Errorf("container %q: image status %s: %w", c.Name, c.Image, err)
		}
		if st.GetImage() != nil {
			return st.Image.Id, nil
		}
		if c.ImagePullPolicy == corev1.PullNever {
			return "", fmt.Errorf("container %q: ErrImageNeverPull: image %s is not present and imagePullPolicy is Never", c.Name, c.Image)
		}
	}
	s.status("Starting: pulling image %s for container %s", c.Image, c.Name)
	s.log.Info("pulling image", "container", c.Name, "image", c.Image)
	ref, err := s.rt.PullImage(ctx, spec, nil, sandbox)
	if err != nil {
		return "", fmt.Errorf("container %q: ErrImagePull: %s: %w", c.Name, c.Image, err)
	}
	return ref, nil
}

// watch returns when ctx is done (nil) or when a container stops running.
func (s *Shim) watch(ctx context.Context) error {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.check(ctx); err != nil {
			return err
		}
	}
}

func (s *Shim) check(ctx context.Context) error {
	existing, err := s.containers(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	for _, c := range s.pod.Spec.Containers {
		list := existing[c.Name]
		if len(list) > 0 && list[0].State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		why := "is gone"
		if len(list) > 0 {
			why = "is " + strings.ToLower(strings.TrimPrefix(list[0].State.String(), "CONTAINER_"))
			if st, err := s.rt.ContainerStatus(ctx, list[0].Id, false); err == nil && st.GetStatus() != nil {
				why = fmt.Sprintf("exited with code %d (%s)", st.Status.ExitCode, exitReason(st.Status))
			}
		}
		s.status("Restarting: container %s %s", c.Name, why)
		return fmt.Errorf("container %q %s: %w", c.Name, why, ErrContainerExited)
	}
	return nil
}

func exitReason(st *runtimeapi.ContainerStatus) string {
	switch {
	case st.Reason != "":
		return st.Reason
	case st.ExitCode == 0:
		return "Completed"
	}
	return "Error"
}

// teardown stops every container within the grace period, then stops and
// removes the sandbox. It is bounded by the grace period plus StopTimeout.
func (s *Shim) teardown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.grace())*time.Second+s.cfg.StopTimeout)
	defer cancel()
	_ = s.notify("STOPPING=1\nSTATUS=Stopping: containers")
	defer s.removeState()
	if s.sandboxID == "" {
		// Stopped before a sandbox was made or adopted: remove any that a
		// racing RunPodSandbox left.
		return s.removeAll(ctx)
	}
	return s.removeSandbox(ctx, s.sandboxID)
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
// (in parallel, as the kubelet does), then stops and removes the sandbox.
func (s *Shim) removeSandbox(ctx context.Context, id string) error {
	list, err := s.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: id})
	if err != nil {
		return fmt.Errorf("sandbox %s: list containers: %w", id, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(list))
	for i, c := range list {
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.log.Info("stopping container", "container", c.Metadata.GetName(), "id", c.Id, "grace", s.grace())
			if err := s.rt.StopContainer(ctx, c.Id, s.grace()); err != nil {
				errs[i] = fmt.Errorf("stop container %s: %w", c.Id, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sandbox %s: %w", id, err)
	}
	if err := s.rt.StopPodSandbox(ctx, id); err != nil {
		return fmt.Errorf("stop sandbox %s: %w", id, err)
	}
	if err := s.rt.RemovePodSandbox(ctx, id); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", id, err)
	}
	s.log.Info("removed sandbox", "sandbox", id)
	return nil
}
