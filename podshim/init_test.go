package podshim

import (
	"context"
	"errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func instanceOf(rt *fakeCRI, name string) (running, total int, newest *runtimeapi.ContainerState) {
	var attempt uint32
	for _, c := range rt.Containers {
		if c.Metadata.Name != name {
			continue
		}
		total++
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			running++
		}
		if newest == nil || c.Metadata.Attempt >= attempt {
			st := c.State
			newest, attempt = &st, c.Metadata.Attempt
		}
	}
	return
}

func exitOne(rt *fakeCRI, name string, code int32) {
	for _, c := range rt.Containers {
		if c.Metadata.Name == name && c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			c.State, c.ExitCode, c.FinishedAt = runtimeapi.ContainerState_CONTAINER_EXITED, code, time.Now().UnixNano()
		}
	}
}

// Init containers run one at a time, in order, before the app containers; a
// sidecar is started before the next init container and keeps running; a
// restart of an app container does not run the init containers again.
func TestInitContainersAndSidecars(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	pod := testPod()
	always := corev1.ContainerRestartPolicyAlways
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "setup", Image: "busybox:1", ImagePullPolicy: corev1.PullIfNotPresent},
		{Name: "proxy", Image: "busybox:1", ImagePullPolicy: corev1.PullIfNotPresent, RestartPolicy: &always},
		{Name: "migrate", Image: "busybox:1", ImagePullPolicy: corev1.PullIfNotPresent},
	}
	s := newShim(t, pod, rt, &notes{})
	ctx := context.Background()
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(step string, want map[string]int) {
		t.Helper()
		for name, n := range want {
			if got, _, _ := instanceOf(rt, name); got != n {
				t.Errorf("%s: %s has %d running, want %d", step, name, got, n)
			}
		}
	}
	check("start", map[string]int{"setup": 1, "proxy": 0, "migrate": 0, "app": 0})
	if st, _ := ReadState(s.cfg.StateDir, "shop", "web"); st.Status.Phase != corev1.PodPending || len(st.Status.InitContainerStatuses) != 3 {
		t.Errorf("while initializing: phase %s, %d init statuses", st.Status.Phase, len(st.Status.InitContainerStatuses))
	}

	exitOne(rt, "setup", 1) // fails: retried (OnFailure for init containers)
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	check("setup failed", map[string]int{"setup": 1, "proxy": 0})
	exitOne(rt, "setup", 0)
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	// The sidecar runs (it has no startup probe to wait for): the next init
	// container starts with it.
	check("setup done", map[string]int{"setup": 0, "proxy": 1, "migrate": 1, "app": 0})
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	check("migrate running", map[string]int{"proxy": 1, "migrate": 1, "app": 0})
	exitOne(rt, "migrate", 0)
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	check("initialized", map[string]int{"proxy": 1, "app": 1})
	st, _ := ReadState(s.cfg.StateDir, "shop", "web")
	if st.Status.Phase != corev1.PodRunning || conditionOf(st, corev1.PodInitialized) != corev1.ConditionTrue {
		t.Errorf("after init: phase %s, Initialized %s", st.Status.Phase, conditionOf(st, corev1.PodInitialized))
	}

	// An app restart does not run init containers again.
	_, setups, _ := instanceOf(rt, "setup")
	exitOne(rt, "app", 2)
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := instanceOf(rt, "setup"); total != setups {
		t.Errorf("setup ran again: %d instances", total)
	}
	check("app restarted", map[string]int{"app": 1, "proxy": 1})
}

// Under restartPolicy Never a failed init container fails the pod; the app
// containers never start.
func TestInitFailureUnderNever(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	pod := testPod()
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox:1", ImagePullPolicy: corev1.PullIfNotPresent}}
	s := newShim(t, pod, rt, &notes{})
	ctx := context.Background()
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
	exitOne(rt, "setup", 9)
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	done, err := s.finished(ctx)
	if !done || !errors.Is(err, ErrPodFailed) {
		t.Fatalf("finished=%v err=%v", done, err)
	}
	if _, total, _ := instanceOf(rt, "app"); total != 0 {
		t.Error("the app container started after a failed init container")
	}
	// In the kubelet's words (the kubelet oracle compares them).
	st, _ := ReadState(s.cfg.StateDir, "shop", "web")
	if c := conditionFull(st, corev1.PodInitialized); c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotInitialized" {
		t.Errorf("Initialized %+v, want False (ContainersNotInitialized)", c)
	}
	if c := conditionFull(st, corev1.PodReady); c.Reason != "PodFailed" {
		t.Errorf("Ready %+v, want reason PodFailed", c)
	}
	if w := st.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
		t.Errorf("app container %+v, want waiting: PodInitializing", st.Status.ContainerStatuses[0].State)
	}
}

// A pod whose app container ended under restartPolicy Never ends once its
// sidecar, stopped after it, has ended: the sidecar's status says how it
// ended, and the conditions say PodCompleted, as the kubelet's do.
func TestSidecarEndsWithThePod(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	pod := testPod()
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	always := corev1.ContainerRestartPolicyAlways
	pod.Spec.InitContainers = []corev1.Container{{Name: "side", Image: "busybox:1", ImagePullPolicy: corev1.PullIfNotPresent, RestartPolicy: &always}}
	s := newShim(t, pod, rt, &notes{})
	ctx := context.Background()
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	exitOne(rt, "app", 0)
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.podStatus(); st.Phase != corev1.PodRunning {
		t.Errorf("app done, sidecar running: phase %s, want Running until the sidecar ends", st.Phase)
	}
	if done, err := s.finished(ctx); !done || err != nil {
		t.Fatalf("finished=%v err=%v", done, err)
	}
	st, _ := ReadState(s.cfg.StateDir, "shop", "web")
	if st.Status.Phase != corev1.PodSucceeded {
		t.Errorf("phase %s, want Succeeded", st.Status.Phase)
	}
	if side := st.Status.InitContainerStatuses[0]; side.State.Terminated == nil || side.Ready {
		t.Errorf("sidecar after the pod ended: %+v ready=%v, want terminated", side.State, side.Ready)
	}
	for _, ct := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady, corev1.PodInitialized} {
		if c := conditionFull(st, ct); c.Reason != "PodCompleted" {
			t.Errorf("%s %+v, want reason PodCompleted", ct, c)
		}
	}
}

func conditionFull(st *State, t corev1.PodConditionType) corev1.PodCondition {
	for _, c := range st.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.PodCondition{}
}

func conditionOf(st *State, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range st.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// preStop runs before the container is stopped; a failing postStart kills
// the container it ran for.
func TestLifecycleHooks(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	pod := testPod()
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{
		PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"warm-up"}}},
		PreStop:   &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"drain"}}},
	}
	s := newShim(t, pod, rt, &notes{})
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
	calls := func() string { return strings.Join(rt.FakeRuntimeService.GetCalls(), " ") }
	if !strings.Contains(calls(), "StartContainer ExecSync") {
		t.Errorf("postStart did not run right after the start: %s", calls())
	}
	rt.FakeRuntimeService.Called = nil
	cancel()
	if err := s.teardown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(calls(), "ExecSync StopContainer") {
		t.Errorf("preStop did not run before the stop: %s", calls())
	}

	rt2 := newFakeCRI("busybox:1")
	rt2.FakeRuntimeService.InjectError("ExecSync", errors.New("exit 1"))
	s2 := newShim(t, pod, rt2, &notes{})
	if err := s2.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if running, _, _ := instanceOf(rt2, "app"); running != 0 {
		t.Error("a container whose postStart hook failed is still running")
	}
}

// A pod past its activeDeadlineSeconds is stopped and Failed with the
// kubelet's reason, DeadlineExceeded; its containers do not start again,
// and podshim ends with ErrPodFailed (its unit is not restarted). The
// deadline counts from when podshim made the sandbox, on its own clock; a
// runtime that cannot be asked at the deadline marks nothing (the loop
// rides it out and asks again).
func TestActiveDeadlineFailsThePod(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	pod := testPod()
	deadline := int64(5)
	pod.Spec.ActiveDeadlineSeconds = &deadline
	s := newShim(t, pod, rt, &notes{})
	clk := &clock{now: time.Unix(1_000_000, 0)}
	s.cfg.Now = clk.Now
	ctx := context.Background()
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
	begun := clk.Now()
	clk.now = begun.Add(4 * time.Second)
	if s.pastDeadline(clk.Now()) {
		t.Fatal("past the deadline 4 s into 5")
	}
	s.cfg.PollInterval = time.Hour // the deadline alone wakes it
	if next := s.nextCheck(clk.Now(), clk.Now().Add(time.Hour)); !next.Equal(begun.Add(5 * time.Second)) {
		t.Errorf("next check at %v, want the deadline %v", next, begun.Add(5*time.Second))
	}
	clk.now = begun.Add(5 * time.Second)

	rt.FakeRuntimeService.InjectError("ListContainers", status.Error(codes.Unavailable, "connection refused"))
	if err := s.reconcile(ctx); !s.runtimeUnavailable(err) {
		t.Fatalf("reconcile with the runtime away: %v, want it unavailable", err)
	}
	if s.deadlineExceeded {
		t.Fatal("marked past the deadline while its containers could not be stopped")
	}

	exitOne(rt, "app", 1) // exited meanwhile: not restarted
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if running, total, _ := instanceOf(rt, "app"); running != 0 || total != 1 {
		t.Errorf("%d app containers running (%d made) past the deadline, want 0 (1)", running, total)
	}
	done, err := s.finished(ctx)
	if !done || !errors.Is(err, ErrPodFailed) {
		t.Fatalf("finished=%v err=%v, want the pod failed", done, err)
	}
	st, _ := ReadState(s.cfg.StateDir, "shop", "web")
	if st.Status.Phase != corev1.PodFailed || st.Status.Reason != "DeadlineExceeded" {
		t.Errorf("phase %s reason %q, want Failed DeadlineExceeded", st.Status.Phase, st.Status.Reason)
	}
	if c := conditionFull(st, corev1.PodReady); c.Status != corev1.ConditionFalse {
		t.Errorf("Ready %+v of a pod past its deadline", c)
	}
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if running, _, _ := instanceOf(rt, "app"); running != 0 {
		t.Error("the app container started again past the deadline")
	}
}
