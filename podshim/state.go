package podshim

import (
	"github.com/podunit/podunit/cni/service"
	"github.com/podunit/podunit/podshim/atomicfile"
	"github.com/podunit/podunit/podshim/criconfig"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultStateDir is where podshim records each pod's state.
const DefaultStateDir = "/run/podunit/pods"

// State is what podshim records about its pod, in
// <StateDir>/<namespace>_<name>.json: the pod's status in the Kubernetes
// shape, for `podunit` and the status API, and what a restarted podshim
// needs to carry on (the restart back-offs).
type State struct {
	Namespace string             `json:"namespace"`
	Name      string             `json:"name"`
	UID       string             `json:"uid"`
	SandboxID string             `json:"sandboxID"`
	Status    corev1.PodStatus   `json:"status"`
	Backoff   map[string]Backoff `json:"backoff,omitempty"`
	// LogOffsets is how much of each container log file was forwarded, as
	// podshims before the offsets file (offsetsPath) recorded it: read
	// where there is no offsets file, no longer written.
	LogOffsets map[string]int64 `json:"logOffsets,omitempty"`
	// ProbeFailures counts each container's failed probes by kind
	// ("web/liveness"), over the pod's life: the status API's metrics.
	ProbeFailures map[string]int64 `json:"probeFailures,omitempty"`
	// Terminating: the pod is being stopped. Its Services' endpoints leave
	// rotation at once, before its containers are told to stop, as an
	// EndpointSlice's terminating endpoint does.
	Terminating bool `json:"terminating,omitempty"`
}

// StatePath is the state file of pod namespace/name in dir.
func StatePath(dir, namespace, name string) string {
	return filepath.Join(dir, namespace+"_"+name+".json")
}

// FailedMarkPath is the file a podshim that failed (exit status 1) leaves
// for pod namespace/name in dir, so that the next one knows it follows a
// failure (cmd/podshim's restart back-off); the pod's teardown removes it
// with the state file.
func FailedMarkPath(dir, namespace, name string) string {
	return filepath.Join(dir, namespace+"_"+name+".failed")
}

// ReadState reads a pod's state file.
func ReadState(dir, namespace, name string) (*State, error) {
	b, err := os.ReadFile(StatePath(dir, namespace, name))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("pod %s/%s: state file: %w", namespace, name, err)
	}
	return &st, nil
}

// ServiceStatus is what the node's Services need of the pod's state: its
// address, its Ready condition and whether it is stopping
// (service.Table.Join).
func (st *State) ServiceStatus() service.PodStatus {
	out := service.PodStatus{Terminating: st.Terminating}
	out.IP, _ = netip.ParseAddr(st.Status.PodIP)
	for _, c := range st.Status.Conditions {
		if c.Type == corev1.PodReady {
			out.Ready = c.Status == corev1.ConditionTrue
		}
	}
	return out
}

// restoreBackoff takes the back-offs and log offsets an earlier podshim of
// the same pod recorded.
func (s *Shim) restoreBackoff() {
	if s.cfg.StateDir == "" {
		return
	}
	prev, err := ReadState(s.cfg.StateDir, s.pod.Namespace, s.pod.Name)
	if err != nil || prev.UID != string(s.pod.UID) {
		return
	}
	for _, c := range s.containers {
		if b, ok := prev.Backoff[c.spec.Name]; ok {
			c.backoff = b
		}
	}
	s.logOffsets = prev.LogOffsets
	if offsets, err := readLogOffsets(offsetsPath(s.cfg.StateDir, s.pod.Namespace, s.pod.Name)); err == nil {
		s.logOffsets = offsets // written after every batch: the newer
	}
	s.probeFailures.restore(prev.ProbeFailures)
}

// offsetsPath is where podshim records how far it forwarded each container
// log, after every batch of output, so that a restarted podshim sends
// nothing twice. It is a file of its own, in a directory the status server
// does not watch: rewriting the state file, with the pod's whole status,
// after every batch cost a container writing ten lines a second 1.7 ms of
// CPU a line (docs/benchmarks.md).
func offsetsPath(dir, namespace, name string) string {
	return filepath.Join(dir, "logs", namespace+"_"+name)
}

// saveLogOffsets writes the offsets file if the offsets changed.
func (s *Shim) saveLogOffsets() {
	if s.cfg.StateDir == "" {
		return
	}
	if s.offsets.path == "" {
		s.offsets.path = offsetsPath(s.cfg.StateDir, s.pod.Namespace, s.pod.Name)
	}
	if err := s.offsets.save(s.logOffsets); err != nil {
		s.log.Warn("write log offsets", "err", err)
	}
}

// offsetWidth is the width an offset is written with, zero-padded: the
// widest int64. The file's length then changes only with the set of logs.
const offsetWidth = 19

// offsetsFile is the offsets file, a line "<offset> <log path>" a log,
// kept open after it was written. While the same logs are forwarded, new
// offsets overwrite the old ones in place: one write of the same length
// (offsets have a fixed width), within one page, which a kill cannot leave
// half done. A change in the set of logs replaces the file atomically. It
// is written after every batch of output, so this is most of what
// forwarding a line costs (docs/benchmarks.md).
type offsetsFile struct {
	path  string
	f     *os.File // the file at path, as last written; nil: none yet
	buf   []byte
	saved []byte // what f holds
	keys  []string
}

func (o *offsetsFile) save(offsets map[string]int64) error {
	o.keys = o.keys[:0]
	for path := range offsets {
		o.keys = append(o.keys, path)
	}
	slices.Sort(o.keys)
	b := o.buf[:0]
	for _, path := range o.keys {
		var d [offsetWidth]byte
		n := strconv.AppendInt(d[:0], offsets[path], 10)
		for range offsetWidth - len(n) {
			b = append(b, '0')
		}
		b = append(b, n...)
		b = append(b, ' ')
		b = append(b, path...)
		b = append(b, '\n')
	}
	o.buf = b
	if o.f != nil && bytes.Equal(b, o.saved) {
		return nil
	}
	if o.f != nil && len(b) == len(o.saved) && len(b) <= os.Getpagesize() {
		if _, err := o.f.WriteAt(b, 0); err == nil {
			o.saved = append(o.saved[:0], b...)
			return nil
		}
	}
	o.close()
	f, err := atomicfile.Create(o.path, b, 0o600)
	if err != nil {
		return err
	}
	o.f, o.saved = f, append(o.saved[:0], b...)
	return nil
}

func (o *offsetsFile) close() {
	if o.f != nil {
		o.f.Close()
		o.f = nil
	}
}

func readLogOffsets(path string) (map[string]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	offsets := map[string]int64{}
	for line := range strings.Lines(string(b)) {
		off, log, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		n, err := strconv.ParseInt(off, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		offsets[log] = n
	}
	return offsets, nil
}

func (s *Shim) writeState() error {
	if s.cfg.StateDir == "" {
		return nil
	}
	st := &State{
		Namespace:     s.pod.Namespace,
		Name:          s.pod.Name,
		UID:           string(s.pod.UID),
		SandboxID:     s.sandboxID,
		Status:        s.podStatus(),
		Backoff:       map[string]Backoff{},
		ProbeFailures: s.probeFailures.snapshot(),
		Terminating:   s.terminating,
	}
	for _, c := range s.containers {
		if !c.backoff.Updated.IsZero() {
			st.Backoff[c.spec.Name] = c.backoff
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if bytes.Equal(b, s.lastState) {
		return nil // nothing changed: no write every poll
	}
	if err := atomicfile.Write(StatePath(s.cfg.StateDir, st.Namespace, st.Name), b, 0o600); err != nil {
		return err
	}
	s.lastState = b
	return nil
}

// podStatus is the pod's status as the kubelet would report it.
func (s *Shim) podStatus() corev1.PodStatus {
	status := corev1.PodStatus{QOSClass: criconfig.QOSClass(s.pod)}
	// podunit knows its host's address, unlike the kubelet in standalone mode.
	for _, ip := range s.cfg.Host.IPs {
		if status.HostIP == "" {
			status.HostIP = ip
		}
		status.HostIPs = append(status.HostIPs, corev1.HostIP{IP: ip})
	}
	if !s.startTime.IsZero() {
		t := metav1.NewTime(s.startTime)
		status.StartTime = &t
	}
	if ips := s.input().IPs(); len(ips) > 0 {
		status.PodIP = ips[0]
		for _, ip := range ips {
			status.PodIPs = append(status.PodIPs, corev1.PodIP{IP: ip})
		}
	}
	for _, c := range s.containers {
		cs := s.containerStatus(c)
		if c.init {
			status.InitContainerStatuses = append(status.InitContainerStatuses, cs)
		} else {
			status.ContainerStatuses = append(status.ContainerStatuses, cs)
		}
	}
	status.Phase, _ = s.phase()
	if s.deadlineExceeded {
		status.Reason, status.Message = "DeadlineExceeded", deadlineMessage
	}
	if (status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed) && s.sidecarRunning() {
		// As the kubelet: the pod ends once its sidecars, stopped after
		// the app containers, have ended too.
		status.Phase = corev1.PodRunning
	}
	var notReady []string
	for _, c := range s.containers {
		if (c.app() || c.sidecar) && !s.containerReady(c) {
			notReady = append(notReady, c.spec.Name)
		}
	}
	containersReady := condition(corev1.ContainersReady, len(notReady) == 0)
	if len(notReady) > 0 {
		containersReady.Reason = "ContainersNotReady"
		containersReady.Message = fmt.Sprintf("containers with unready status: [%s]", strings.Join(notReady, " "))
	}
	initialized := condition(corev1.PodInitialized, s.initialized)
	if !s.initialized {
		var pending []string
		for _, c := range s.containers {
			if c.init && !c.completed() {
				pending = append(pending, c.spec.Name)
			}
		}
		initialized.Reason = "ContainersNotInitialized"
		initialized.Message = fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(pending, " "))
	}
	// The kubelet's words for a pod that ended (its status/generate.go).
	switch status.Phase {
	case corev1.PodSucceeded:
		containersReady.Status, containersReady.Reason, containersReady.Message = corev1.ConditionFalse, "PodCompleted", ""
		initialized.Reason, initialized.Message = "PodCompleted", ""
	case corev1.PodFailed:
		containersReady.Status, containersReady.Reason, containersReady.Message = corev1.ConditionFalse, "PodFailed", ""
	}
	podReady := containersReady
	podReady.Type = corev1.PodReady
	sandbox := condition(corev1.PodReadyToStartContainers, s.sandboxID != "" && status.Phase != corev1.PodSucceeded && status.Phase != corev1.PodFailed)
	if sandbox.Status == corev1.ConditionFalse {
		sandbox.Reason = "PodSandboxNotReady"
	}
	status.Conditions = []corev1.PodCondition{
		sandbox,
		initialized,
		podReady,
		containersReady,
		condition(corev1.PodScheduled, true),
	}
	if c := s.offlineCondition(); c != nil {
		status.Conditions = append(status.Conditions, *c)
	}
	s.stampConditions(status.Conditions)
	return status
}

func condition(t corev1.PodConditionType, ok bool) corev1.PodCondition {
	c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse}
	if ok {
		c.Status = corev1.ConditionTrue
	}
	return c
}

// stampConditions sets each condition's lastTransitionTime: when its status
// last changed, as podshim saw it.
func (s *Shim) stampConditions(conds []corev1.PodCondition) {
	if s.transitions == nil {
		s.transitions = map[corev1.PodConditionType]transition{}
	}
	now := metav1.NewTime(s.cfg.Now().UTC().Truncate(time.Second))
	for i := range conds {
		t, ok := s.transitions[conds[i].Type]
		if !ok || t.status != conds[i].Status {
			t = transition{status: conds[i].Status, at: now}
			s.transitions[conds[i].Type] = t
		}
		conds[i].LastTransitionTime = t.at
	}
}

type transition struct {
	status corev1.ConditionStatus
	at     metav1.Time
}

// containerReady: running, started (startup probe) and ready (readiness
// probe).
func (s *Shim) containerReady(c *container) bool {
	started, ready, _ := c.probes.result()
	return !c.done && c.state == runtimeapi.ContainerState_CONTAINER_RUNNING && c.restartAt.IsZero() && started && ready
}

func (s *Shim) containerStatus(c *container) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{
		Name:         c.spec.Name,
		Image:        c.spec.Image,
		ImageID:      c.imageRef,
		RestartCount: int32(c.attempt),
		Ready:        s.containerReady(c) || (c.init && !c.sidecar && c.completed()),
	}
	if c.id != "" {
		cs.ContainerID = s.cfg.runtimeName() + "://" + c.id
	}
	probeStarted, _, _ := c.probes.result()
	started := c.state == runtimeapi.ContainerState_CONTAINER_RUNNING && c.restartAt.IsZero() && probeStarted
	cs.Started = &started
	switch {
	case c.waiting != nil:
		w := *c.waiting
		cs.State.Waiting = &w
	case c.exit != nil && !c.restartAt.IsZero() && c.backoff.Delay > 0:
		cs.State.Waiting = &corev1.ContainerStateWaiting{
			Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
				c.backoff.Delay, c.spec.Name, s.pod.Name, s.pod.Namespace, s.pod.UID),
		}
	case c.exit != nil:
		cs.State.Terminated = terminated(c.exit)
	case c.state == runtimeapi.ContainerState_CONTAINER_RUNNING:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.started.UTC())}
	case !c.init && !s.initialized:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "PodInitializing"}
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	last := c.last
	if cs.State.Waiting != nil && c.exit != nil {
		last = c.exit // in back-off, the exit that caused it is the last state
	}
	if last != nil {
		cs.LastTerminationState.Terminated = terminated(last)
	}
	return cs
}

func terminated(e *exitInfo) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode:   e.ExitCode,
		Reason:     e.Reason,
		Message:    e.Message,
		StartedAt:  metav1.NewTime(e.StartedAt),
		FinishedAt: metav1.NewTime(e.FinishedAt),
	}
}

func (s *Shim) removeState() {
	if s.cfg.StateDir == "" {
		return
	}
	s.offsets.close()
	for _, path := range []string{
		StatePath(s.cfg.StateDir, s.pod.Namespace, s.pod.Name),
		offsetsPath(s.cfg.StateDir, s.pod.Namespace, s.pod.Name),
		FailedMarkPath(s.cfg.StateDir, s.pod.Namespace, s.pod.Name),
	} {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("remove state file", "err", err)
		}
	}
}
