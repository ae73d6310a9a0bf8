package podshim

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/atomicfile"
	"github.com/podunit/podunit/podshim/criconfig"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/podshim/registry"
)

// ErrPodFailed is returned by Run when the pod finished with a failure (a
// container that is not restarted exited non-zero). The unit stays failed.
var ErrPodFailed = errors.New("pod failed")

// Config is what one podshim needs besides the pod.
type Config struct {
	// CgroupParent is the sandbox's CgroupParent: the pod's slice (systemd
	// cgroup driver) or its cgroup path (cgroupfs).
	CgroupParent string
	// StateDir is where the pod's state file is written (/run/podunit/pods).
	StateDir string
	// LogRoot is the kubelet-style container log root (/var/log/pods).
	LogRoot string
	// PollInterval is how often a container is checked when its exit
	// cannot be watched (the runtime does not report its PID) or its exit
	// was seen but the runtime does not show it yet. Watched containers are
	// not polled: the CRI of containerd 1.6 has no event stream, so podshim
	// watches the processes themselves (pidfd).
	PollInterval time.Duration
	// KeepaliveInterval is how often podshim pings systemd's watchdog
	// (and extends the start timeout until the pod is ready), and relists
	// the containers as a safety net.
	KeepaliveInterval time.Duration
	// StopTimeout is what the teardown may take beyond the grace period:
	// for the sandbox's stop and removal once the containers are gone
	// (DefaultStopTimeout).
	StopTimeout time.Duration
	// SandboxStopWait is the deadline of the first StopPodSandbox call of
	// a teardown (DefaultSandboxStopWait): the time CRI-O gives a container
	// podshim did not stop itself before it kills it (stopSandbox).
	SandboxStopWait time.Duration
	// Logs receives every line the containers write; nil: none forwarded.
	Logs LogSink
	// LogMaxSize and LogMaxFiles rotate each container's log file, as the
	// kubelet's containerLogMaxSize and containerLogMaxFiles do.
	LogMaxSize  int64
	LogMaxFiles int
	// RuntimeName prefixes container IDs in the status ("containerd://…").
	RuntimeName string
	// Started, if set, is called once the pod is started (or adopted) and
	// its state recorded, before podshim settles into watching it.
	Started func()
	// PodRoot holds the pods' directories (DefaultPodRoot).
	PodRoot string
	// VolumeRoot holds the PersistentVolumeClaims' directories
	// (DefaultVolumeRoot).
	VolumeRoot string
	// ResolvConf is the host's resolver configuration the pods' DNS starts
	// from; empty: none.
	ResolvConf string
	// ClusterDNS and ClusterDomain are the cluster resolver that dnsPolicy
	// ClusterFirst names; empty: none (ClusterFirst is Default).
	ClusterDNS    []string
	ClusterDomain string
	// ServiceTable is the node's Service table (service.DefaultTablePath),
	// read as each container is created for its Service environment
	// variables; "": none.
	ServiceTable string
	// Host describes the machine, for the downward API and OOM scores.
	Host Host
	// Objects are the ConfigMaps and Secrets the pod uses (its data file).
	Objects podspec.Objects
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// FinishedRecord, if set, is written with the pod's phase (Succeeded or
	// Failed) when it finishes: a Job's record (podspec.Args).
	FinishedRecord string
	// Node are the node's registry credentials (its auth file, credential
	// provider plugins), tried after the pod's image pull Secrets.
	Node registry.Node
	// Pins, after a rollback, are the image IDs this generation ran when
	// it was last ready: its containers are created from them (podspec.Pins).
	Pins *podspec.Pins
	// OfflineFallback: a container whose image's policy is Always runs the
	// local copy when the registry cannot be reached, and the pull is
	// retried in the background (imagePullOffline: local-copy).
	OfflineFallback bool
	// Trace records the CRI calls of the start (Traced wraps the runtime
	// given to New in it); they are logged with READY=1. nil: not traced.
	Trace *CallTrace
	// Serial makes the start's calls one after the other, as before they
	// overlapped: for make bench's before/after comparison only.
	Serial bool
}

func (c Config) runtimeName() string {
	if c.RuntimeName == "" {
		return "containerd"
	}
	return c.RuntimeName
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

	sandboxID     string
	sandboxConfig *runtimeapi.PodSandboxConfig
	hostDNS       *runtimeapi.DNSConfig // the host's resolver configuration, read for each new sandbox
	podIPs        []string
	startTime     time.Time
	// activeSince is when the pod became active, for its
	// activeDeadlineSeconds: this podshim's clock (monotonic) when it made
	// the sandbox, the sandbox's creation time when it adopted one.
	activeSince time.Time
	// deadlineExceeded: the pod ran past its activeDeadlineSeconds and was
	// stopped (enforceDeadline).
	deadlineExceeded bool
	containers       []*container // in spec order
	ready            bool         // READY=1 was sent
	runtimeDown      time.Time    // since when the runtime has not answered; zero: it does
	lastStatus       string
	transitions      map[corev1.PodConditionType]transition
	logOffsets       map[string]int64 // log file → bytes forwarded
	logReader        *bufio.Reader    // reused by forwardFile
	probeFailures    probeCounts
	wake             chan struct{} // a probe result changed
	lastState        []byte        // the state file as last written
	terminating      bool          // stopping: out of its Services' rotation
	offsets          offsetsFile
	initialized      bool              // every init container is through
	logWatch         *logWatch         // nil: logs are read on every reconcile
	imageVolumes     map[string]string // image volume → the ID of its pulled image
	// offline are the images run from their local copy because their
	// registry could not be reached, pulled again in the background until
	// it can (ConditionImagesPulled); guarded by offlineMu, which the
	// background pulls take too.
	offlineMu sync.Mutex
	offline   map[string]bool
	// prefetched are the image statuses asked for while the sandbox is
	// made (prefetchImages), used by the start's containers; freshSandbox: the sandbox was just made, it has no
	// containers to list yet.
	prefetched   map[string]*imageStatusCall
	freshSandbox bool
}

// DefaultStopTimeout keeps a stop within its unit's TimeoutStopSec= (the
// grace period plus podspec.StopMargin): a container creation the stop
// came during may finish first (creationWait), and podshim needs a moment
// to exit after its teardown. A podshim that systemd kills midway leaves
// its sandbox to the next one, which starts by removing it.
const DefaultStopTimeout = podspec.StopMargin - creationWait - 5*time.Second

// DefaultKeepaliveInterval is well inside the unit's WatchdogSec= (3 min)
// and StartExtension.
const DefaultKeepaliveInterval = 30 * time.Second

// wakeUp makes the main loop reconcile now rather than at the next poll.
func (s *Shim) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// New returns a Shim for pod, which must be defaulted and validated (as the
// spec files written by `podunit sync` are).
func New(pod *corev1.Pod, cfg Config, rt Runtime, notify Notify, log *slog.Logger) *Shim {
	if cfg.LogRoot == "" {
		cfg.LogRoot = DefaultLogRoot
	}
	if cfg.PodRoot == "" {
		cfg.PodRoot = DefaultPodRoot
	}
	if cfg.VolumeRoot == "" {
		cfg.VolumeRoot = DefaultVolumeRoot
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.KeepaliveInterval == 0 {
		cfg.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.SandboxStopWait == 0 {
		cfg.SandboxStopWait = DefaultSandboxStopWait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LogMaxSize == 0 {
		cfg.LogMaxSize = DefaultLogMaxSize
	}
	if cfg.LogMaxFiles == 0 {
		cfg.LogMaxFiles = DefaultLogMaxFiles
	}
	s := &Shim{pod: pod, cfg: cfg, rt: rt, notify: notify, log: log, wake: make(chan struct{}, 1)}
	// Init containers first, in order, then the app containers.
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		s.containers = append(s.containers, &container{spec: spec, init: true,
			sidecar: spec.RestartPolicy != nil && *spec.RestartPolicy == corev1.ContainerRestartPolicyAlways})
	}
	for i := range pod.Spec.Containers {
		s.containers = append(s.containers, &container{spec: &pod.Spec.Containers[i]})
	}
	return s
}

func (s *Shim) grace() int64 { return criconfig.GracePeriod(s.pod) }

func (s *Shim) send(state string) {
	if err := s.notify(state); err != nil {
		s.log.Warn("sd_notify", "err", err)
	}
}

func (s *Shim) status(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if msg != s.lastStatus {
		s.lastStatus = msg
		s.send("STATUS=" + msg)
	}
}

// Run brings the pod up and keeps it as its restartPolicy says until ctx is
// done (a stop was requested: the pod is torn down and Run returns nil) or
// the pod finished (every container exited and none is to be restarted: Run
// stops the sandbox, keeps the containers for their logs and returns nil if
// the pod succeeded, ErrPodFailed if it failed). A start-up failure is
// returned as is; the sandbox is then kept for the next podshim to adopt.
func (s *Shim) Run(ctx context.Context) error {
	if s.cfg.Logs != nil {
		lw, err := newLogWatch()
		if err != nil {
			s.log.Warn("cannot watch container logs; reading them on every check", "err", err)
		} else {
			s.logWatch = lw
			defer lw.close()
		}
	}
	err := s.start(ctx)
	// What the start called is logged with READY=1, now or once the
	// probes pass; what the running pod calls is not recorded.
	s.cfg.Trace.end()
	if err == nil {
		if s.cfg.Started != nil {
			s.cfg.Started()
		}
		err = s.loop(ctx)
	}
	for _, c := range s.containers {
		c.stopProbes()
		c.unwatch()
	}
	if ctx.Err() != nil {
		return s.teardown(context.WithoutCancel(ctx))
	}
	return err
}

// start adopts or creates the sandbox and brings every container to what
// the restart policy wants, then records and reports the pod.
func (s *Shim) start(ctx context.Context) error {
	s.status("Starting: pod sandbox")
	defer s.extendWhileProgressing()()
	if !s.cfg.Serial {
		s.prefetched = prefetchImages(ctx, s.rt, s.pod, s.cfg.Pins)
		defer func() { s.prefetched = nil }()
	}
	if err := s.ensureSandbox(ctx); err != nil {
		return err
	}
	s.restoreBackoff()
	if err := s.reconcile(ctx); err != nil {
		return err
	}
	return nil
}

// loop reconciles the containers whenever something happened (a process
// exited, a probe result changed, a restart is due) and on every keepalive,
// restarting them as the restart policy and back-off say, until ctx is done
// or the pod finished. Between those it sleeps; container output is
// forwarded as it is written.
func (s *Shim) loop(ctx context.Context) error {
	// The loop has a watchdog to ping and output to forward: a runtime
	// that went away is asked again later (rideOutRuntime), not waited for
	// in a call. Start-up and teardown wait for it.
	if f, ok := s.rt.(failFaster); ok {
		f.SetFailFast(true)
		defer f.SetFailFast(false)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	nextKeepalive := s.cfg.Now().Add(s.cfg.KeepaliveInterval)
	for {
		if done, err := s.finished(ctx); done || err != nil {
			return err
		}
		now := s.cfg.Now()
		t.Reset(s.nextCheck(now, nextKeepalive).Sub(now))
		if !s.sleep(ctx, t) {
			return nil
		}
		if now := s.cfg.Now(); !now.Before(nextKeepalive) {
			s.keepalive()
			nextKeepalive = now.Add(s.cfg.KeepaliveInterval)
		}
		if !s.runtimeDown.IsZero() && !s.runtimeBack(ctx) {
			continue
		}
		err := s.reconcile(ctx)
		switch {
		case err == nil:
			if !s.runtimeDown.IsZero() {
				// The reconcile reported the pod: its status is back.
				s.log.Info("the CRI runtime answers again", "after", s.cfg.Now().Sub(s.runtimeDown).Round(time.Second))
				s.runtimeDown = time.Time{}
			}
		case ctx.Err() != nil:
			return nil
		case s.runtimeUnavailable(err) || status.Code(err) == codes.DeadlineExceeded:
			// A runtime that does not answer in time is waited for too:
			// a podshim run again would wait for it the same way.
			s.rideOutRuntime(err)
		default:
			return err
		}
	}
}

// reachability is what a Runtime may tell of its connection (criclient's
// does).
type reachability interface{ Reachable() bool }

// failFaster is a Runtime whose calls can fail at once while it cannot be
// reached, rather than wait for it (criclient's).
type failFaster interface{ SetFailFast(on bool) }

// runtimeUnavailable reports whether err came of a runtime that cannot be
// reached or cannot answer yet: it is stopped or restarting. A call made
// then waits for the runtime and fails with DeadlineExceeded if it does not
// come back in time: the connection's state tells that from a slow answer.
func (s *Shim) runtimeUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if r, ok := s.rt.(reachability); ok && !r.Reachable() {
		return true
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unavailable:
		return true
	case codes.Unknown:
		// containerd 1.x while its CRI plugin starts (2.x says
		// Unavailable).
		return strings.Contains(st.Message(), "server is not initialized yet")
	}
	return false
}

// runtimeBack asks a runtime that went away, briefly, whether it answers
// again: a reconcile's calls would wait for it (up to their timeout, two
// minutes) while the watchdog and the container output wait too.
func (s *Shim) runtimeBack(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, runtimeRetry)
	defer cancel()
	_, err := s.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{Id: s.sandboxID})
	return err == nil
}

// rideOutRuntime is the loop's answer to a runtime that went away: the
// containers run on without it (their shims do not need it), so podshim
// keeps the pod, its watchdog pings and its log forwarding, says so in the
// unit's status, and reconciles again every second until the runtime
// answers. Exiting instead would leave the pod to systemd's restart
// back-off, which grows with every failed attempt during a long outage.
func (s *Shim) rideOutRuntime(err error) {
	if s.runtimeDown.IsZero() {
		s.runtimeDown = s.cfg.Now()
		s.log.Warn("the CRI runtime is unavailable; the containers run on, podshim waits for it", "err", err)
	}
	s.status("Runtime unavailable since %s (the containers run on): %v", s.runtimeDown.Format(time.TimeOnly), err)
}

// sleep waits for the timer or a wake-up, forwarding container output as it
// is written meanwhile. It returns false when ctx is done.
func (s *Shim) sleep(ctx context.Context, t *time.Timer) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-s.wake:
			t.Stop()
			return true
		case <-s.logWatch.writtenC():
			s.forwardLogs(ctx)
		}
	}
}

// nextCheck is when the loop must look at the containers again without an
// event: at the next keepalive, when a restart is due, and soon for a
// container whose exit cannot be watched or was seen before the runtime
// showed it.
func (s *Shim) nextCheck(now, keepalive time.Time) time.Time {
	next := keepalive
	poll := s.logWatch == nil && s.cfg.Logs != nil
	for _, c := range s.containers {
		if !c.restartAt.IsZero() && c.restartAt.Before(next) {
			next = c.restartAt
		}
		if c.state == runtimeapi.ContainerState_CONTAINER_RUNNING && (c.exitWatch == nil || c.exitWatch.fired.Load()) {
			poll = true
		}
		// A rotated log is followed until the runtime's close is seen or
		// rotatedLogWait has passed: the latter needs no event.
		poll = poll || len(c.rotated) > 0
	}
	if d := s.deadline(); !d.IsZero() && !s.deadlineExceeded && d.Before(next) {
		next = d
	}
	if !s.runtimeDown.IsZero() && now.Add(runtimeRetry).Before(next) {
		next = now.Add(runtimeRetry)
	}
	if poll && now.Add(s.cfg.PollInterval).Before(next) {
		next = now.Add(s.cfg.PollInterval)
	}
	if next.Before(now) {
		return now
	}
	return next
}

// runtimeRetry is how often podshim asks a runtime that went away again.
const runtimeRetry = time.Second

// extendWhileProgressing keeps systemd's start timeout and watchdog at
// bay during the start while its CRI calls progress (CallTrace.progressed):
// on a machine so loaded that they take minutes (ten pods at a boot under
// emulation: one RunPodSandbox took 74 s), the unit's 90 s were spent
// before READY, and each restart spent them again on removing the sandbox
// the last one made. A start with no call under way and none ended for a
// keepalive interval is not extended: stuck in podshim, it times out. The
// function it returns stops it (and waits: the ready flag is the loop's).
func (s *Shim) extendWhileProgressing() (stop func()) {
	if s.cfg.Trace == nil {
		return func() {}
	}
	return s.keepaliveWhile(s.cfg.Trace.progressed)
}

// keepaliveWhile sends a keepalive at every interval at which ok says so,
// from a goroutine of its own, until the function it returns is called
// (which waits for it: the ready flag is the loop's).
func (s *Shim) keepaliveWhile(ok func() bool) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.KeepaliveInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if ok() {
					s.keepalive()
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// StartExtension is how much each keepalive extends the unit's start
// timeout while the pod is not ready yet: a pod may take as long as it needs
// (pulls, back-offs, slow readiness) while podshim is seen making progress.
const StartExtension = 90 * time.Second

// keepalive pings systemd's watchdog and, until the pod is ready, extends
// the start timeout.
func (s *Shim) keepalive() { s.send(s.keepaliveMessage()) }

func (s *Shim) keepaliveMessage() string {
	msg := "WATCHDOG=1"
	if !s.ready {
		msg += fmt.Sprintf("\nEXTEND_TIMEOUT_USEC=%d", StartExtension.Microseconds())
	}
	return msg
}

// reconcile reads the containers from the runtime, handles the ones that
// exited, (re)creates the ones due, then records and reports the pod.
func (s *Shim) reconcile(ctx context.Context) error {
	if !s.deadlineExceeded && s.pastDeadline(s.cfg.Now()) {
		// Before anything is (re)started: also for a pod adopted past its
		// deadline, and for a wake-up at it.
		return s.enforceDeadline(ctx)
	}
	instances := map[string][]*runtimeapi.Container{}
	if s.freshSandbox && !s.cfg.Serial {
		s.freshSandbox = false // a sandbox just made has no containers yet
	} else {
		var err error
		if instances, err = s.listContainers(ctx); err != nil {
			return err
		}
	}
	s.forwardLogs(ctx)
	s.closeReplacedLogs()
	s.dropGoneLogOffsets()
	now := s.cfg.Now()
	for _, c := range s.containers {
		if err := s.observe(ctx, c, instances[c.spec.Name], now); err != nil {
			return err
		}
	}
	// Init containers one at a time, in order; a sidecar must be running
	// (and past its startup probe) before the next one starts; the app
	// containers only once all are through.
	s.initialized = true
	for _, c := range s.containers {
		if !s.initialized {
			break
		}
		if c.due(now) && !s.deadlineExceeded {
			err := s.createContainer(ctx, c, instances[c.spec.Name])
			var we *waitingError
			if errors.As(err, &we) {
				// As the kubelet: the container waits (ErrImagePull, then
				// ImagePullBackOff) and is tried again with back-off; the
				// rest of the pod carries on.
				delay := c.pullBackoff.next(fmt.Sprint(now.UnixNano()), now)
				c.restartAt = now.Add(max(delay, backoffInitial))
				c.waiting = &corev1.ContainerStateWaiting{Reason: we.reason, Message: we.msg}
				if c.pullBackoff.Delay > 0 && we.reason == "ErrImagePull" {
					c.waiting.Reason = "ImagePullBackOff"
				}
				s.log.Warn("container cannot be created yet; retrying with back-off", "container", c.spec.Name, "reason", we.reason, "err", we.msg, "retryIn", c.restartAt.Sub(now))
			} else if err != nil {
				return err
			} else {
				c.waiting = nil
				c.pullBackoff = Backoff{}
			}
		}
		if c.init && !s.through(c) {
			s.initialized = false
		}
	}
	return s.report(ctx)
}

// through reports whether init container c lets the next one start: a
// sidecar running past its startup probe, a regular one exited 0.
func (s *Shim) through(c *container) bool {
	if c.sidecar {
		started, _, _ := c.probes.result()
		return c.state == runtimeapi.ContainerState_CONTAINER_RUNNING && c.restartAt.IsZero() && started
	}
	return c.completed()
}

// observe updates what podshim knows of one container from its instances in
// the runtime, newest first, and decides what an exited one needs.
func (s *Shim) observe(ctx context.Context, c *container, instances []*runtimeapi.Container, now time.Time) error {
	if len(instances) == 0 {
		if c.id != "" && !c.done {
			// Removed behind podshim's back: treat it as exited.
			s.log.Warn("container vanished", "container", c.spec.Name, "id", c.id)
			c.id = ""
		}
		if c.id == "" && !c.done && c.restartAt.IsZero() {
			c.restartAt = now // never created (or vanished): create it now
		}
		return nil
	}
	newest := instances[0]
	if newest.Id != c.id {
		// First look at this container (start or adoption).
		// The image's ID: CRI-O's ImageRef is a repository digest of it,
		// and its ImageId the ID (containerd 1.x: no ImageId, ImageRef is
		// the ID), which is what podshim records after a pull.
		c.id, c.attempt, c.imageRef = newest.Id, newest.Metadata.GetAttempt(), cmp.Or(newest.ImageId, newest.ImageRef)
		c.exit, c.last, c.done, c.restartAt = nil, nil, false, time.Time{}
		if len(instances) > 1 {
			if st, err := s.rt.ContainerStatus(ctx, instances[1].Id, false); err == nil {
				c.last = s.exitOf(c, instances[1].Metadata.GetAttempt(), st.GetStatus())
			}
		}
	}
	c.state = newest.State
	switch newest.State {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		if newest.Annotations[criconfig.AnnotationContainerHash] != criconfig.ContainerHash(c.spec) {
			// The spec changed under the same UID: replace the container.
			s.log.Info("container spec changed; replacing it", "container", c.spec.Name)
			if err := s.rt.StopContainer(ctx, newest.Id, s.grace()); err != nil {
				return fmt.Errorf("container %q: stop outdated %s: %w", c.spec.Name, newest.Id, err)
			}
			c.restartAt = now
		}
		if c.started.IsZero() {
			if st, err := s.rt.ContainerStatus(ctx, newest.Id, false); err == nil {
				c.started = time.Unix(0, st.GetStatus().GetStartedAt())
			}
		}
		if c.probes == nil {
			c.probes = s.startProbes(c)
		}
		s.watchContainer(ctx, c)
		s.watchLogs(c)
		if _, _, failed := c.probes.result(); failed != "" && c.restartAt.IsZero() {
			// As the kubelet: a failed liveness or startup probe kills the
			// container; its restart then follows the restart policy.
			s.log.Warn("container failed a probe and will be killed", "container", c.spec.Name, "reason", failed)
			c.stopProbes()
			if err := s.stopContainer(ctx, c.spec.Name, newest.Id); err != nil {
				return fmt.Errorf("container %q: kill after failed probe: %w", c.spec.Name, err)
			}
		}
		return nil
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		// Created but never started: an earlier podshim was interrupted.
		c.restartAt = now
		return nil
	}
	c.stopProbes()
	c.unwatch()
	if c.exit != nil || (c.done && c.init) {
		return nil // already handled
	}
	st, err := s.rt.ContainerStatus(ctx, newest.Id, false)
	if err != nil {
		return fmt.Errorf("container %q: status: %w", c.spec.Name, err)
	}
	c.exit = s.exitOf(c, c.attempt, st.GetStatus())
	if !s.restartAfter(c) {
		c.done = true
		s.log.Info("container finished", "container", c.spec.Name, "exitCode", c.exit.ExitCode, "reason", c.exit.Reason)
		return nil
	}
	delay := c.backoff.next(newest.Id, c.exit.FinishedAt)
	c.restartAt = c.exit.FinishedAt.Add(delay)
	s.log.Warn("container exited; restarting it", "container", c.spec.Name, "exitCode", c.exit.ExitCode,
		"reason", c.exit.Reason, "restartCount", c.attempt+1, "backoff", delay)
	return nil
}

// restartAfter decides whether c, which exited, runs again: its restart
// policy, or for a Job's pod its backoffLimit (podunit.io/backoff-limit): a
// failed container is run again until it failed that many times more, in
// the same sandbox (the kubelet's Job controller would make new pods).
func (s *Shim) restartAfter(c *container) bool {
	if s.deadlineExceeded {
		return false
	}
	if v, ok := s.pod.Annotations[podspec.AnnotationBackoffLimit]; ok && c.app() {
		limit, err := strconv.Atoi(v)
		if err == nil {
			return c.exit.ExitCode != 0 && int(c.attempt) < limit
		}
	}
	return shouldRestart(c.restartPolicy(s.pod.Spec.RestartPolicy), c.exit.ExitCode)
}

// listContainers returns the sandbox's containers by name, newest first.
func (s *Shim) listContainers(ctx context.Context) (map[string][]*runtimeapi.Container, error) {
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

// createContainer creates and starts the next attempt of c. The newest
// instance that ran is kept (for lastState and `--previous` logs); every
// other goes.
func (s *Shim) createContainer(ctx context.Context, c *container, instances []*runtimeapi.Container) error {
	attempt := uint32(0)
	if len(instances) > 0 {
		attempt = instances[0].Metadata.GetAttempt() + 1
	}
	kept := false
	for _, old := range instances {
		if !kept && old.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			kept = true
			continue
		}
		if err := s.rt.RemoveContainer(ctx, old.Id); err != nil {
			return fmt.Errorf("container %q: remove %s: %w", c.spec.Name, old.Id, err)
		}
	}
	s.status("Starting: container %s (image %s)", c.spec.Name, c.spec.Image)
	imageRef, err := s.ensureImage(ctx, c.spec)
	if err != nil {
		return err
	}
	if err := s.ensureImageVolumes(ctx, c.spec); err != nil {
		return err
	}
	config, release, err := s.containerConfig(ctx, c.spec, imageRef, attempt)
	if err != nil {
		return &waitingError{reason: "CreateContainerConfigError", msg: fmt.Sprintf("container %q: %v", c.spec.Name, err)}
	}
	// As the kubelet: the log's directory exists before the container.
	// containerd makes it if it is missing; CRI-O's conmon does not, and
	// the container fails ("Failed to open log file").
	if err := os.MkdirAll(filepath.Dir(filepath.Join(s.sandboxConfig.LogDirectory, config.LogPath)), 0o755); err != nil {
		release()
		return fmt.Errorf("container %q: log directory: %w", c.spec.Name, err)
	}
	// A stop does not cut the runtime's create and start short: CRI-O
	// finishes a create whose caller went away but leaves the container
	// out of its list (for the caller's retry to claim), where the
	// teardown cannot stop it, and its StopPodSandbox then waits for it to
	// the end of that call's deadline. They get creationWait more.
	rtCtx, cancel := outlast(ctx, creationWait)
	defer cancel()
	id, err := s.rt.CreateContainer(rtCtx, s.sandboxID, config, s.sandboxConfig)
	release() // the container's mounts are made
	if err != nil {
		return fmt.Errorf("container %q: create: %w", c.spec.Name, err)
	}
	if ctx.Err() != nil {
		// Not started: the teardown kills it (stopContainers).
		return fmt.Errorf("container %q: created %s, not started: %w", c.spec.Name, id, ctx.Err())
	}
	if err := s.rt.StartContainer(rtCtx, id); err != nil {
		return fmt.Errorf("container %q: start %s: %w", c.spec.Name, id, err)
	}
	if l := c.spec.Lifecycle; l != nil && l.PostStart != nil {
		// As the kubelet: the container is not running for the pod until
		// its postStart hook returned; a failed hook kills it, and its
		// restart follows the restart policy.
		if err := s.runHook(ctx, c.spec, id, l.PostStart, time.Duration(s.grace())*time.Second+time.Minute); err != nil {
			s.log.Warn("postStart hook failed; killing the container", "container", c.spec.Name, "err", err)
			if err := s.rt.StopContainer(ctx, id, minStopGrace); err != nil {
				return fmt.Errorf("container %q: kill after failed postStart hook: %w", c.spec.Name, err)
			}
		}
	}
	if c.exit != nil {
		c.last = c.exit
	}
	if c.id != "" && s.cfg.Logs != nil {
		// The previous instance's last lines, before following the new log.
		s.forwardContainerLog(c)
	}
	c.log.close()
	c.id, c.attempt, c.imageRef = id, attempt, imageRef
	c.state = runtimeapi.ContainerState_CONTAINER_RUNNING
	c.exit, c.restartAt, c.started = nil, time.Time{}, s.cfg.Now()
	c.stopProbes()
	c.probes = s.startProbes(c)
	s.watchContainer(ctx, c)
	s.watchLogs(c)
	s.log.Info("started container", "container", c.spec.Name, "id", id, "restartCount", attempt)
	return nil
}

// creationWait is how long a container's create or start may go on after
// a stop (createContainer).
const creationWait = 5 * time.Second

// outlast returns a context with ctx's values and deadline that is done d
// after ctx is, or when cancel is called.
func outlast(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	var out context.Context
	var cancel context.CancelFunc
	if deadline, ok := ctx.Deadline(); ok {
		out, cancel = context.WithDeadline(context.WithoutCancel(ctx), deadline.Add(d))
	} else {
		out, cancel = context.WithCancel(context.WithoutCancel(ctx))
	}
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(d, cancel) })
	return out, func() {
		stop()
		cancel()
	}
}

// ensureImage makes the container's image present as its pull policy says
// and returns the image reference to create the container from.
func (s *Shim) ensureImage(ctx context.Context, spec *corev1.Container) (string, error) {
	return s.ensurePulled(ctx, fmt.Sprintf("container %q", spec.Name), spec.Image, spec.ImagePullPolicy)
}

// ensureImageVolumes makes the images of the image volumes c mounts
// present, each as its pull policy says, before c is created, and keeps
// their IDs for the mounts (criconfig.Input.ImageVolumes).
func (s *Shim) ensureImageVolumes(ctx context.Context, c *corev1.Container) error {
	for _, m := range c.VolumeMounts {
		for i := range s.pod.Spec.Volumes {
			v := &s.pod.Spec.Volumes[i]
			if v.Name != m.Name || v.Image == nil {
				continue
			}
			ref, err := s.ensurePulled(ctx, fmt.Sprintf("image volume %q of container %q", v.Name, c.Name), v.Image.Reference, v.Image.PullPolicy)
			if err != nil {
				return err
			}
			if s.imageVolumes == nil {
				s.imageVolumes = map[string]string{}
			}
			s.imageVolumes[v.Name] = ref
		}
	}
	return nil
}

// ensurePulled makes an image present as the pull policy says and returns
// its reference; what names the container or volume in messages.
func (s *Shim) ensurePulled(ctx context.Context, what, ref string, policy corev1.PullPolicy) (string, error) {
	if id := s.pinned(ctx, ref); id != "" {
		return id, nil
	}
	image := &runtimeapi.ImageSpec{Image: ref}
	var local string // the image's ID, when it is here
	if policy != corev1.PullAlways || s.cfg.OfflineFallback {
		st, err := s.imageStatus(ctx, image)
		if err != nil {
			return "", fmt.Errorf("%s: image status %s: %w", what, ref, err)
		}
		local = st.GetImage().GetId()
		if local != "" && policy != corev1.PullAlways {
			return local, nil
		}
		if local == "" && policy == corev1.PullNever {
			return "", &waitingError{reason: "ErrImageNeverPull", msg: fmt.Sprintf("%s: image %s is not present and imagePullPolicy is Never", what, ref)}
		}
	}
	s.status("Starting: pulling image %s for %s", ref, what)
	s.log.Info("pulling image", "for", what, "image", ref)
	// A pull takes as long as it takes: keep systemd's timers at bay.
	stop := s.keepaliveWhile(func() bool { return true })
	id, err := s.pull(ctx, image)
	stop()
	if err != nil && local != "" && registry.Unreachable(err) {
		// The box is offline (or its registry is): the kubelet would
		// never start the pod; the copy it ran last is better than none.
		s.log.Warn("the registry cannot be reached: running the local copy of the image, and pulling again in the background",
			"for", what, "image", ref, "id", local, "err", err)
		s.status("Starting: %s runs its local copy of %s (the registry cannot be reached)", what, ref)
		s.pullInBackground(ref)
		return local, nil
	}
	if err != nil {
		return "", &waitingError{reason: "ErrImagePull", msg: fmt.Sprintf("%s: pull %s: %v", what, ref, err)}
	}
	return id, nil
}

// pinned is the image ID a rollback pinned ref to, when it is present; ""
// otherwise (no pins, another generation's, or the image is gone: then
// the spec's reference is used, as without pins).
func (s *Shim) pinned(ctx context.Context, ref string) string {
	p := s.cfg.Pins
	if p == nil || p.Generation != s.pod.Annotations[podspec.AnnotationConfigHash] || p.Images[ref] == "" {
		return ""
	}
	st, err := s.rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: p.Images[ref]}, false)
	if err != nil || st.GetImage() == nil {
		s.log.Warn("the image this generation ran is gone: using the image its spec names", "image", ref, "pinned", p.Images[ref])
		return ""
	}
	return st.Image.Id
}

// pullInBackground pulls ref again and again, a minute apart at first and
// at most an hour apart, until it works or podshim stops: the next
// container start then uses what it pulled.
func (s *Shim) pullInBackground(ref string) {
	s.offlineMu.Lock()
	defer s.offlineMu.Unlock()
	if s.offline == nil {
		s.offline = map[string]bool{}
	}
	if s.offline[ref] {
		return
	}
	s.offline[ref] = true
	s.wakeUp() // the state file says so
	image := &runtimeapi.ImageSpec{Image: ref}
	creds := registry.PodKeyring(s.pod, s.cfg.Objects, s.cfg.Node).Credentials(ref)
	sandbox, log, rt := s.sandboxConfig, s.log, s.rt
	go func() {
		for delay := time.Minute; ; delay = min(2*delay, time.Hour) {
			time.Sleep(delay)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			id, err := registry.Pull(ctx, rt, image, creds, sandbox)
			cancel()
			if err == nil {
				log.Info("pulled the image the registry could not give before; a container started from now on uses it", "image", ref, "id", id)
				s.offlineMu.Lock()
				delete(s.offline, ref)
				s.offlineMu.Unlock()
				s.wakeUp()
				return
			}
			log.Debug("the registry still cannot be reached", "image", ref, "err", err)
		}
	}()
}

// ConditionImagesPulled is false on a pod that runs the local copy of an
// image whose registry could not be reached (imagePullOffline:
// local-copy), until the background pull gets it.
const ConditionImagesPulled corev1.PodConditionType = "podunit.io/ImagesPulled"

// offlineCondition is ConditionImagesPulled when some image runs from its
// local copy; nil otherwise.
func (s *Shim) offlineCondition() *corev1.PodCondition {
	s.offlineMu.Lock()
	defer s.offlineMu.Unlock()
	if len(s.offline) == 0 {
		return nil
	}
	refs := make([]string, 0, len(s.offline))
	for ref := range s.offline {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	return &corev1.PodCondition{Type: ConditionImagesPulled, Status: corev1.ConditionFalse, Reason: "RegistryUnreachable",
		Message: "running the local copy of " + strings.Join(refs, ", ") + ": the registry could not be reached; pulling again in the background"}
}

// pull pulls an image with the pod's and the node's credentials
// (registry.Keyring).
func (s *Shim) pull(ctx context.Context, image *runtimeapi.ImageSpec) (string, error) {
	creds := registry.PodKeyring(s.pod, s.cfg.Objects, s.cfg.Node).Credentials(image.Image)
	return registry.Pull(ctx, s.rt, image, creds, s.sandboxConfig)
}

// finished reports whether every container is done. Then it stops the
// sandbox (the containers stay, for their logs and status), sends READY=1 if
// it was never sent, and returns ErrPodFailed for a failed pod.
func (s *Shim) finished(ctx context.Context) (bool, error) {
	phase, why := s.phase()
	if phase != corev1.PodSucceeded && phase != corev1.PodFailed {
		return false, nil
	}
	// Sidecars end after the app containers, as in Kubernetes; their
	// status then says how they ended.
	for _, c := range s.containers {
		if c.sidecar && c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
			c.stopProbes()
			if err := s.stopContainer(ctx, c.spec.Name, c.id); err != nil {
				s.log.Warn("stop sidecar of finished pod", "container", c.spec.Name, "err", err)
			}
			c.state = runtimeapi.ContainerState_CONTAINER_EXITED
			c.unwatch()
			if st, err := s.rt.ContainerStatus(ctx, c.id, false); err == nil && st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
				c.exit = s.exitOf(c, c.attempt, st.GetStatus())
			}
		}
		if c.sidecar {
			// One in its back-off is not started again either.
			c.restartAt = time.Time{}
			c.done = true
		}
	}
	s.forwardLogs(ctx)
	s.log.Info("pod finished", "phase", phase)
	if err := s.rt.StopPodSandbox(ctx, s.sandboxID); err != nil {
		s.log.Warn("stop sandbox of finished pod", "sandbox", s.sandboxID, "err", err)
	}
	if err := s.writeState(); err != nil {
		s.log.Warn("write state", "err", err)
	}
	if s.cfg.FinishedRecord != "" {
		// Synced: the Job must stay done across a power cut that comes
		// before any sync has seen its unit finished.
		err := os.MkdirAll(filepath.Dir(s.cfg.FinishedRecord), 0o755)
		if err == nil {
			err = atomicfile.WriteSync(s.cfg.FinishedRecord, []byte(string(phase)+"\n"), 0o644)
		}
		if err != nil {
			s.log.Warn("record the Job pod's end", "file", s.cfg.FinishedRecord, "err", err)
		}
	}
	s.send(fmt.Sprintf("READY=1\nSTATUS=%s: %s", phase, why))
	if phase == corev1.PodFailed {
		return true, fmt.Errorf("%s: %w", why, ErrPodFailed)
	}
	return true, nil
}

// report records the pod's state and tells systemd: READY=1 once every
// container that should run is running, STATUS= always.
func (s *Shim) report(ctx context.Context) error {
	if err := s.writeState(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	running, ready, want := 0, 0, 0
	var backoff *container
	for _, c := range s.containers {
		if c.done || (c.init && !c.sidecar) {
			continue
		}
		want++
		if c.state == runtimeapi.ContainerState_CONTAINER_RUNNING && c.restartAt.IsZero() {
			running++
		}
		if s.containerReady(c) {
			ready++
		}
		if !c.restartAt.IsZero() && (backoff == nil || c.restartAt.Before(backoff.restartAt)) && c.backoff.Delay > 0 {
			backoff = c
		}
	}
	ip := strings.Join(s.podIPs, ",")
	var pulling *container
	for _, c := range s.containers {
		if c.waiting != nil && !c.done {
			pulling = c
			break
		}
	}
	switch {
	case pulling != nil:
		s.status("%s: container %s, image %s (retry in %s); %d/%d ready, pod IP %s", pulling.waiting.Reason, pulling.spec.Name,
			pulling.spec.Image, pulling.restartAt.Sub(s.cfg.Now()).Round(time.Second), ready, want, ip)
	case !s.initialized && backoff == nil:
		for i, c := range s.containers {
			if c.init && !s.through(c) {
				s.status("Initializing: init container %s (%d/%d), pod IP %s", c.spec.Name, i+1, len(s.pod.Spec.InitContainers), ip)
				break
			}
		}
	case backoff != nil:
		s.status("CrashLoopBackOff: back-off %s restarting failed container=%s pod=%s_%s(%s); %d/%d ready, pod IP %s",
			backoff.backoff.Delay, backoff.spec.Name, s.pod.Name, s.pod.Namespace, s.pod.UID, ready, want, ip)
	case running < want:
		s.status("Starting: %d/%d containers running, pod IP %s", running, want, ip)
	case ready < want:
		s.status("Running: %d/%d ready (waiting for readiness probes), pod IP %s", ready, want, ip)
	default:
		s.status("Running: %d/%d ready, pod IP %s", ready, want, ip)
	}
	if !s.ready && want > 0 && ready == want {
		s.ready = true
		s.log.Info("pod running", "sandbox", s.sandboxID, "ip", ip)
		s.send("READY=1")
		if s.cfg.Trace != nil {
			// After READY=1, not to hold it up; readyAt is when it was sent.
			s.log.Info("start timings", s.cfg.Trace.attrs(time.Now())...)
		}
	}
	return nil
}

// phase is the pod's phase, and for a finished pod why: Failed when a
// regular init container under restartPolicy Never or a Job's container
// past its backoffLimit failed, or when every app container finished and
// one of them failed; Succeeded when every app container finished well;
// Pending until the init containers are through.
func (s *Shim) phase() (corev1.PodPhase, string) {
	if s.deadlineExceeded {
		return corev1.PodFailed, deadlineMessage
	}
	appsDone := true
	failed := ""
	_, job := s.pod.Annotations[podspec.AnnotationBackoffLimit]
	for _, c := range s.containers {
		if c.done && !c.sidecar && c.exit != nil && c.exit.ExitCode != 0 && failed == "" {
			failed = fmt.Sprintf("container %s exited with code %d (%s)", c.spec.Name, c.exit.ExitCode, c.exit.Reason)
			if c.init || job {
				// A failed init container fails the pod at once, and so
				// does a Job's container past its backoffLimit (the Job
				// controller would stop the pod).
				return corev1.PodFailed, failed
			}
		}
		if c.app() && !c.done {
			appsDone = false
		}
	}
	switch {
	case appsDone && failed != "":
		// As the kubelet: Failed once every container is done, when one
		// of them failed; until then the others run on.
		return corev1.PodFailed, failed
	case appsDone:
		return corev1.PodSucceeded, "all containers completed"
	case !s.initialized:
		return corev1.PodPending, ""
	}
	// As the kubelet: a container that has not run yet (its image
	// missing, its volume not there) keeps the pod Pending.
	for _, c := range s.containers {
		if c.app() && !c.done && c.exit == nil && c.last == nil && c.attempt == 0 && c.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
			return corev1.PodPending, ""
		}
	}
	return corev1.PodRunning, ""
}

// deadlineMessage is the kubelet's, for a pod past its
// activeDeadlineSeconds (reason DeadlineExceeded).
const deadlineMessage = "Pod was active on the node longer than the specified deadline"

// pastDeadline reports whether the pod has been active (since its sandbox
// was made) for its activeDeadlineSeconds.
func (s *Shim) pastDeadline(now time.Time) bool {
	d := s.deadline()
	return !d.IsZero() && !now.Before(d)
}

// deadline is when the pod's activeDeadlineSeconds runs out; zero if it
// has none.
func (s *Shim) deadline() time.Time {
	if s.pod.Spec.ActiveDeadlineSeconds == nil || s.activeSince.IsZero() {
		return time.Time{}
	}
	return s.activeSince.Add(time.Duration(*s.pod.Spec.ActiveDeadlineSeconds) * time.Second)
}

// enforceDeadline ends a pod past its activeDeadlineSeconds, as the
// kubelet does: out of its Services' rotation first, then every container
// stopped within the grace period (sidecars after the others) and none
// started again; the pod is Failed (DeadlineExceeded), and its unit fails
// without a restart, until the manifest changes. A runtime that cannot be
// reached fails it before anything is marked, and the loop rides it out
// and tries again.
func (s *Shim) enforceDeadline(ctx context.Context) error {
	instances, err := s.listContainers(ctx)
	if err != nil {
		return err
	}
	s.log.Warn("the pod was active longer than its activeDeadlineSeconds; stopping it", "activeDeadlineSeconds", *s.pod.Spec.ActiveDeadlineSeconds)
	s.terminating = true
	if err := s.writeState(); err != nil {
		s.log.Warn("write state", "err", err)
	}
	var list []*runtimeapi.Container
	for _, c := range s.containers {
		c.stopProbes()
		c.restartAt = time.Time{}
		list = append(list, instances[c.spec.Name]...)
	}
	if err := s.stopSidecarsLast(ctx, s.sandboxID, list); err != nil {
		return err
	}
	s.deadlineExceeded = true
	// Their exits recorded (restartAfter says no more runs).
	return s.reconcile(ctx)
}

// sidecarRunning reports whether a sidecar still runs.
func (s *Shim) sidecarRunning() bool {
	for _, c := range s.containers {
		if c.sidecar && c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
			return true
		}
	}
	return false
}
