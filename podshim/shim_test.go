package podshim

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/podunit/podunit/podshim/criconfig"
)

var _ = types.UID("")

// fakeCRI is cri-api's own fake runtime and image services in one.
type fakeCRI struct {
	*critest.FakeRuntimeService
	*critest.FakeImageService
}

func newFakeCRI(images ...string) *fakeCRI {
	f := &fakeCRI{critest.NewFakeRuntimeService(), critest.NewFakeImageService()}
	f.FakeImageService.SetFakeImages(images)
	return f
}

// notes records what podshim told systemd.
type notes struct {
	mu   sync.Mutex
	sent []string
}

func (n *notes) notify(s string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, s)
	return nil
}

func (n *notes) all() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.sent, "\n")
}

func testPod() *corev1.Pod {
	grace := int64(7)
	return &corev1.Pod{
		ObjectMeta: metav1ObjectMeta("web", "shop", "uid-1", map[string]string{"app": "web"}),
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "app", Image: "busybox:1", ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c"}, Args: []string{"echo $(GREETING) $$(GREETING) $(UNDEFINED)"},
				Env:   []corev1.EnvVar{{Name: "NAME", Value: "world"}, {Name: "GREETING", Value: "hello $(NAME)"}},
				Ports: []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: corev1.ProtocolTCP}},
			}},
		},
	}
}

func newShim(t testing.TB, pod *corev1.Pod, rt Runtime, n *notes) *Shim {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return New(pod, Config{CgroupParent: "podunit-shop_web.slice", StateDir: t.TempDir(), PodRoot: t.TempDir(), VolumeRoot: t.TempDir(), LogRoot: t.TempDir(), PollInterval: 10 * time.Millisecond}, rt, n.notify, log)
}

func TestStartCreatesPodTheKubeletWay(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	n := &notes{}
	s := newShim(t, testPod(), rt, n)
	if err := s.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rt.Sandboxes) != 1 || len(rt.Containers) != 1 {
		t.Fatalf("%d sandboxes, %d containers", len(rt.Sandboxes), len(rt.Containers))
	}
	for _, sb := range rt.Sandboxes {
		for k, want := range map[string]string{LabelPodName: "web", LabelPodNamespace: "shop", LabelPodUID: "uid-1", LabelManaged: "true", "app": "web"} {
			if sb.Labels[k] != want {
				t.Errorf("sandbox label %s = %q, want %q", k, sb.Labels[k], want)
			}
		}
		if sb.Metadata.Name != "web" || sb.Metadata.Namespace != "shop" || sb.Metadata.Uid != "uid-1" {
			t.Errorf("sandbox metadata %+v", sb.Metadata)
		}
	}
	for _, c := range rt.Containers {
		if c.Labels[LabelContainerName] != "app" || c.Annotations["io.kubernetes.container.restartCount"] != "0" || c.Annotations["io.kubernetes.pod.terminationGracePeriod"] != "7" {
			t.Errorf("container labels %v annotations %v", c.Labels, c.Annotations)
		}
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container state %s", c.State)
		}
	}
	// The container's log directory is made before the container, as the
	// kubelet makes it: CRI-O's conmon does not, and fails without it.
	if fi, err := os.Stat(filepath.Join(s.cfg.LogRoot, "shop_web_uid-1", "app")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("container log directory: %v %v", fi, err)
	}
	if !strings.Contains(n.all(), "READY=1") || !strings.Contains(n.all(), "STATUS=Running: 1/1 ready, pod IP 192.168.192.168") {
		t.Errorf("notifications:\n%s", n.all())
	}
	st, err := ReadState(s.cfg.StateDir, "shop", "web")
	if err != nil || st.Status.PodIP != "192.168.192.168" || st.Status.Phase != corev1.PodRunning ||
		st.Status.ContainerStatuses[0].State.Running == nil || !st.Status.ContainerStatuses[0].Ready {
		t.Errorf("state %+v, %v", st, err)
	}
}

func TestSandboxAndContainerConfig(t *testing.T) {
	s := newShim(t, testPod(), newFakeCRI(), &notes{})
	sb := criconfig.Sandbox(s.input(), 2)
	if sb.Metadata.Attempt != 2 || sb.Linux.CgroupParent != "podunit-shop_web.slice" ||
		sb.LogDirectory != filepath.Join(s.cfg.LogRoot, "shop_web_uid-1") {
		t.Errorf("sandbox config %+v", sb)
	}
	if len(sb.PortMappings) != 1 || sb.PortMappings[0].HostPort != 8080 || sb.PortMappings[0].ContainerPort != 80 {
		t.Errorf("port mappings %v", sb.PortMappings)
	}
	c, release, err := s.containerConfig(context.Background(), &s.pod.Spec.Containers[0], "sha256:abc", 3)
	defer release()
	if err != nil {
		t.Fatal(err)
	}
	if c.LogPath != "app/3.log" || c.Image.Image != "sha256:abc" || c.Image.UserSpecifiedImage != "busybox:1" {
		t.Errorf("container config %+v", c)
	}
	// $(VAR) is expanded as the kubelet does: from earlier variables, $$ escapes, undefined stays.
	if got, want := c.Args[0], "echo hello world $(GREETING) $(UNDEFINED)"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if got := string(c.Envs[1].Value); got != "hello world" {
		t.Errorf("GREETING = %q", got)
	}
}

// A second podshim adopts the running sandbox and container instead of
// creating new ones.
func TestStartAdoptsRunningPod(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	first := newShim(t, testPod(), rt, &notes{})
	if err := first.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	rt.FakeRuntimeService.Called = nil
	second := newShim(t, testPod(), rt, &notes{})
	if err := second.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if second.sandboxID != first.sandboxID {
		t.Errorf("sandbox %s not adopted (new %s)", first.sandboxID, second.sandboxID)
	}
	for _, call := range rt.FakeRuntimeService.Called {
		if call == "RunPodSandbox" || call == "CreateContainer" || call == "StopContainer" {
			t.Errorf("adoption made a %s call: %v", call, rt.FakeRuntimeService.Called)
		}
	}
}

// clock is a settable time source.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// exit makes every running container of the fake exit with code at now.
func exit(rt *fakeCRI, code int32, at time.Time) {
	for _, c := range rt.Containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			c.State = runtimeapi.ContainerState_CONTAINER_EXITED
			c.ExitCode = code
			c.FinishedAt = at.UnixNano()
		}
	}
}

func running(rt *fakeCRI) []*critest.FakeContainer {
	var out []*critest.FakeContainer
	for _, c := range rt.Containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			out = append(out, c)
		}
	}
	return out
}

// A container that exits is recreated in the same sandbox: at once the first
// time, then after the kubelet's back-off, shown as CrashLoopBackOff. The
// back-off survives a podshim restart.
func TestCrashLoopBackOff(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	clk := &clock{now: time.Unix(1_000_000, 0)}
	n := &notes{}
	s := newShim(t, testPod(), rt, n)
	s.cfg.Now = clk.Now
	ctx := context.Background()
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
	sandbox := s.sandboxID

	exit(rt, 7, clk.now)
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if r := running(rt); len(r) != 1 || r[0].Metadata.Attempt != 1 {
		t.Fatalf("first restart not immediate: %v", r)
	}

	clk.now = clk.now.Add(time.Second)
	exit(rt, 7, clk.now)
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if r := running(rt); len(r) != 0 {
		t.Fatalf("second restart not backed off: %d running", len(r))
	}
	want := "STATUS=CrashLoopBackOff: back-off 10s restarting failed container=app pod=web_shop(uid-1)"
	if !strings.Contains(n.all(), want) {
		t.Errorf("no %q in notifications:\n%s", want, n.all())
	}
	st, _ := ReadState(s.cfg.StateDir, "shop", "web")
	cs := st.Status.ContainerStatuses[0]
	if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" || cs.RestartCount != 1 ||
		cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 7 ||
		cs.LastTerminationState.Terminated.Reason != "Error" || cs.Ready {
		t.Errorf("container status in back-off: %+v", cs)
	}

	// A new podshim (the old one was killed) keeps the back-off.
	s2 := newShim(t, testPod(), rt, &notes{})
	s2.cfg.StateDir = s.cfg.StateDir
	s2.cfg.Now = clk.Now
	if err := s2.start(ctx); err != nil {
		t.Fatal(err)
	}
	if s2.sandboxID != sandbox {
		t.Error("sandbox not kept")
	}
	if r := running(rt); len(r) != 0 {
		t.Fatalf("the new podshim skipped the back-off")
	}
	clk.now = clk.now.Add(10 * time.Second)
	if err := s2.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if r := running(rt); len(r) != 1 || r[0].Metadata.Attempt != 2 || r[0].SandboxID != sandbox {
		t.Fatalf("restart after the back-off: %v", r)
	}
	// The instance it replaced stays, for lastState; older ones go.
	if len(rt.Containers) != 2 {
		t.Errorf("%d container instances kept, want 2", len(rt.Containers))
	}
}

func TestRestartPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy   corev1.RestartPolicy
		code     int32
		restarts bool
		err      error // from finished, when the pod ends
	}{
		{corev1.RestartPolicyAlways, 0, true, nil},
		{corev1.RestartPolicyOnFailure, 1, true, nil},
		{corev1.RestartPolicyOnFailure, 0, false, nil},
		{corev1.RestartPolicyNever, 0, false, nil},
		{corev1.RestartPolicyNever, 3, false, ErrPodFailed},
	} {
		rt := newFakeCRI("busybox:1")
		pod := testPod()
		pod.Spec.RestartPolicy = tc.policy
		n := &notes{}
		s := newShim(t, pod, rt, n)
		s.cfg.FinishedRecord = filepath.Join(t.TempDir(), "jobs", "shop_web-hash")
		ctx := context.Background()
		if err := s.start(ctx); err != nil {
			t.Fatal(err)
		}
		exit(rt, tc.code, time.Now())
		if err := s.reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if got := len(running(rt)) == 1; got != tc.restarts {
			t.Errorf("%s, exit %d: restarted=%v", tc.policy, tc.code, got)
		}
		done, err := s.finished(ctx)
		if done == tc.restarts || !errors.Is(err, tc.err) {
			t.Errorf("%s, exit %d: finished=%v err=%v", tc.policy, tc.code, done, err)
		}
		record, _ := os.ReadFile(s.cfg.FinishedRecord)
		if !done {
			if len(record) > 0 {
				t.Errorf("%s, exit %d: a running pod recorded as finished: %q", tc.policy, tc.code, record)
			}
			continue
		}
		st, _ := ReadState(s.cfg.StateDir, "shop", "web")
		wantPhase := corev1.PodSucceeded
		if tc.err != nil {
			wantPhase = corev1.PodFailed
		}
		// The Job's record, at once: no sync need see the unit finished.
		if string(record) != string(wantPhase)+"\n" {
			t.Errorf("%s, exit %d: finished record %q, want %s", tc.policy, tc.code, record, wantPhase)
		}
		if st.Status.Phase != wantPhase || st.Status.ContainerStatuses[0].State.Terminated == nil {
			t.Errorf("%s, exit %d: phase %s, state %+v", tc.policy, tc.code, st.Status.Phase, st.Status.ContainerStatuses[0].State)
		}
		if !strings.Contains(n.all(), "READY=1\nSTATUS="+string(wantPhase)) {
			t.Errorf("%s: notifications:\n%s", tc.policy, n.all())
		}
	}
}

func TestRunTearsDownOnStop(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	n := &notes{}
	s := newShim(t, testPod(), rt, n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	for !strings.Contains(n.all(), "READY=1") {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// RemovePodSandbox removes the sandbox's containers in a real runtime
	// (the CRI requires it); the fake only forgets the sandbox.
	if len(rt.Sandboxes) != 0 {
		t.Errorf("left %d sandboxes", len(rt.Sandboxes))
	}
	for _, c := range rt.Containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container %s still running", c.Id)
		}
	}
	if !strings.Contains(n.all(), "STOPPING=1") {
		t.Errorf("no STOPPING=1 sent:\n%s", n.all())
	}
	if _, err := ReadState(s.cfg.StateDir, "shop", "web"); err == nil {
		t.Error("state file left after stop")
	}
}

// A runtime that goes away (containerd stopped or restarting) is waited
// out in the loop: podshim does not exit, the container is not replaced,
// and the unit's status says why until the runtime answers again.
func TestRunRidesOutRuntimeOutage(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	n := &notes{}
	s := newShim(t, testPod(), rt, n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitUntil(t, "READY=1", func() bool { return strings.Contains(n.all(), "READY=1") })
	var before []string
	for id := range rt.Containers {
		before = append(before, id)
	}
	down := status.Error(codes.Unavailable, "connection error: dial unix /run/containerd/containerd.sock: connect: no such file or directory")
	rt.FakeRuntimeService.Lock()
	rt.FakeRuntimeService.Called = nil
	rt.FakeRuntimeService.Unlock()
	rt.FakeRuntimeService.InjectError("ListContainers", down)
	// While it is down, podshim asks it briefly whether it is back
	// before it reconciles, rather than wait in a reconcile's calls.
	rt.FakeRuntimeService.InjectError("ListPodSandbox", down)
	rt.FakeRuntimeService.InjectError("ListPodSandbox", down)
	waitUntil(t, "the outage in the unit's status", func() bool { return strings.Contains(n.all(), "STATUS=Runtime unavailable since") })
	waitUntil(t, "the status back to running", func() bool {
		all := n.all()
		return strings.Contains(all[strings.LastIndex(all, "Runtime unavailable"):], "STATUS=Running: 1/1 ready")
	})
	select {
	case err := <-done:
		t.Fatalf("Run returned during the outage: %v", err)
	default:
	}
	rt.FakeRuntimeService.Lock()
	calls := strings.Join(rt.FakeRuntimeService.Called, " ")
	rt.FakeRuntimeService.Unlock()
	if !strings.Contains(calls, "ListContainers ListPodSandbox ListPodSandbox ListPodSandbox ListContainers") {
		t.Errorf("calls during the outage: %s", calls)
	}
	if len(rt.Containers) != 1 || rt.Containers[before[0]] == nil || rt.Containers[before[0]].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("the container was not kept: %v → %v", before, rt.Containers)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestImagePullPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy  corev1.PullPolicy
		present bool
		pulls   bool
		waiting string // the container's waiting reason afterwards
	}{
		{corev1.PullIfNotPresent, true, false, ""},
		{corev1.PullIfNotPresent, false, true, ""},
		{corev1.PullAlways, true, true, ""},
		{corev1.PullNever, true, false, ""},
		{corev1.PullNever, false, false, "ErrImageNeverPull"},
	} {
		var images []string
		if tc.present {
			images = []string{"busybox:1"}
		}
		rt := newFakeCRI(images...)
		pod := testPod()
		pod.Spec.Containers[0].ImagePullPolicy = tc.policy
		s := newShim(t, pod, rt, &notes{})
		if err := s.start(context.Background()); err != nil {
			t.Fatal(err)
		}
		pulled := false
		for _, c := range rt.FakeImageService.Called {
			pulled = pulled || c == "PullImage"
		}
		st, _ := ReadState(s.cfg.StateDir, "shop", "web")
		waiting := ""
		if w := st.Status.ContainerStatuses[0].State.Waiting; w != nil {
			waiting = w.Reason
		}
		if pulled != tc.pulls || waiting != tc.waiting {
			t.Errorf("%s, present=%v: pulled=%v waiting=%q", tc.policy, tc.present, pulled, waiting)
		}
	}
}

// A pull that fails leaves the container waiting (ErrImagePull, then
// ImagePullBackOff) and retried with back-off; the other containers run.
func TestImagePullBackOff(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	pod := testPod()
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "missing", Image: "nowhere/app:1", ImagePullPolicy: corev1.PullIfNotPresent})
	clk := &clock{now: time.Unix(1_000_000, 0)}
	n := &notes{}
	s := newShim(t, pod, rt, n)
	s.cfg.Now = clk.Now
	rt.FakeImageService.InjectError("PullImage", errors.New("registry unreachable"))
	rt.FakeImageService.InjectError("PullImage", errors.New("registry unreachable"))
	ctx := context.Background()
	if err := s.start(ctx); err != nil {
		t.Fatalf("a failed pull stopped the pod: %v", err)
	}
	reason := func() string {
		st, _ := ReadState(s.cfg.StateDir, "shop", "web")
		if w := st.Status.ContainerStatuses[1].State.Waiting; w != nil {
			return w.Reason
		}
		return ""
	}
	if r := reason(); r != "ErrImagePull" {
		t.Errorf("after the first failed pull: %q", r)
	}
	if running, _, _ := instanceOf(rt, "app"); running != 1 {
		t.Error("the other container is not running")
	}
	clk.now = clk.now.Add(11 * time.Second)
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if r := reason(); r != "ImagePullBackOff" {
		t.Errorf("after the second failed pull: %q", r)
	}
	if !strings.Contains(n.all(), "STATUS=ImagePullBackOff: container missing, image nowhere/app:1") {
		t.Errorf("notifications:\n%s", n.all())
	}
	clk.now = clk.now.Add(time.Minute)
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if running, _, _ := instanceOf(rt, "missing"); running != 1 || reason() != "" {
		t.Errorf("after the pull worked: running=%d waiting=%q", running, reason())
	}
}

// Under restartPolicy Never, a failed container does not end the pod while
// another runs: as the kubelet's, the pod is Running until every container
// is done, then Failed.
func TestNeverPodRunsUntilEveryContainerIsDone(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	pod := testPod()
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "side", Image: "busybox:1"})
	s := newShim(t, pod, rt, &notes{})
	ctx := context.Background()
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
	first := true
	for _, c := range rt.Containers { // the first container fails
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING && first {
			c.State, c.ExitCode, c.FinishedAt, first = runtimeapi.ContainerState_CONTAINER_EXITED, 3, time.Now().UnixNano(), false
		}
	}
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if done, err := s.finished(ctx); done || err != nil {
		t.Fatalf("finished=%v err=%v while a container still runs", done, err)
	}
	if phase, _ := s.phase(); phase != corev1.PodRunning || len(running(rt)) != 1 {
		t.Fatalf("phase %s with %d running, want Running with 1", phase, len(running(rt)))
	}
	exit(rt, 0, time.Now())
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if done, err := s.finished(ctx); !done || !errors.Is(err, ErrPodFailed) {
		t.Errorf("finished=%v err=%v once every container is done, want the pod failed", done, err)
	}
}

// An image volume's image is pulled as its pull policy says before the
// container that mounts it is created, and the container mounts it.
func TestImageVolumePulledBeforeTheContainer(t *testing.T) {
	rt := &recordingCRI{fakeCRI: newFakeCRI("busybox:1")}
	pod := testPod()
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "tools",
		VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "localhost/tools:1", PullPolicy: corev1.PullIfNotPresent}}})
	pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "tools", MountPath: "/tools", SubPath: "bin"})
	s := newShim(t, pod, rt, &notes{})
	if err := s.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rt.FakeImageService.Called, "PullImage") {
		t.Fatalf("the image volume's image was not pulled: %v", rt.FakeImageService.Called)
	}
	var mount *runtimeapi.Mount
	for _, c := range rt.created {
		for _, m := range c.Mounts {
			if m.ContainerPath == "/tools" {
				mount = m
			}
		}
	}
	if mount == nil || mount.Image.GetImage() != "localhost/tools:1" || mount.ImageSubPath != "bin" || !mount.Readonly || mount.HostPath != "" {
		t.Errorf("the container's mount of the image volume: %+v", mount)
	}

	// Never, and absent: the container waits, as for its own image.
	rt = &recordingCRI{fakeCRI: newFakeCRI("busybox:1")}
	pod.Spec.Volumes[len(pod.Spec.Volumes)-1].Image.PullPolicy = corev1.PullNever
	s = newShim(t, pod, rt, &notes{})
	if err := s.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, _ := ReadState(s.cfg.StateDir, "shop", "web")
	if w := st.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ErrImageNeverPull" || !strings.Contains(w.Message, `image volume "tools"`) {
		t.Errorf("an absent image volume under Never: %+v", st.Status.ContainerStatuses[0].State)
	}
}

// recordingCRI is the fake runtime, keeping the configs of the containers
// created (cri-api's fake keeps no mounts).
type recordingCRI struct {
	*fakeCRI
	created []*runtimeapi.ContainerConfig
}

func (r *recordingCRI) CreateContainer(ctx context.Context, sandbox string, c *runtimeapi.ContainerConfig, sb *runtimeapi.PodSandboxConfig) (string, error) {
	r.created = append(r.created, c)
	return r.fakeCRI.CreateContainer(ctx, sandbox, c, sb)
}

// A pod stopped while its runtime cannot be reached gives up its teardown
// at once, leaving the sandbox to podunit sync's collector: its stop must
// not hold systemd's job queue (and the runtime's own start behind it) for
// its grace period.
func TestTeardownLeavesTheSandboxWhenTheRuntimeIsDown(t *testing.T) {
	rt := &unreachable{fakeCRI: newFakeCRI("busybox:1")}
	n := &notes{}
	pod := testPod()
	grace := int64(600)
	pod.Spec.TerminationGracePeriodSeconds = &grace
	s := newShim(t, pod, rt, n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitUntil(t, "READY=1", func() bool { return strings.Contains(n.all(), "READY=1") })
	rt.down.Store(true)
	for _, call := range []string{"ListContainers", "StopContainer", "StopPodSandbox", "RemovePodSandbox"} {
		rt.FakeRuntimeService.InjectError(call, status.Error(codes.Unavailable, "connection error: connect: connection refused"))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stop waited for a runtime that cannot be reached")
	}
	if !strings.Contains(n.all(), "podunit sync removes the sandbox once it is back") {
		t.Errorf("the unit's status does not say where the sandbox went:\n%s", n.all())
	}
	if len(rt.Sandboxes) != 1 {
		t.Errorf("sandboxes: %d, want the one left to the collector", len(rt.Sandboxes))
	}
}

// A stop the runtime reports failed for a container that did stop
// (containerd 1.x: "failed to kill container …: ttrpc: closed" when the
// task exits meanwhile) is a stop: the pod's teardown goes on.
func TestStopContainerThatStoppedAnyway(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	n := &notes{}
	s := newShim(t, testPod(), rt, n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitUntil(t, "READY=1", func() bool { return strings.Contains(n.all(), "READY=1") })
	rt.FakeRuntimeService.InjectError("StopContainer", status.Error(codes.Unknown, `failed to kill container "c1": ttrpc: closed: unknown`))
	rt.FakeRuntimeService.Lock()
	for _, c := range rt.Containers {
		c.State = runtimeapi.ContainerState_CONTAINER_EXITED // it exited meanwhile
	}
	rt.FakeRuntimeService.Unlock()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the teardown failed: %v", err)
	}
	if len(rt.Sandboxes) != 0 {
		t.Errorf("sandboxes left: %d", len(rt.Sandboxes))
	}
}

// A pod stopped before its sandbox was made (its RunPodSandbox failed or
// was cut short by the stop) leaves no log directory behind: podshim made
// it before the sandbox, as the kubelet does (the load test's churn found
// them piling up).
func TestTeardownWithoutSandboxRemovesTheLogDirectory(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	s := newShim(t, testPod(), rt, &notes{})
	rt.FakeRuntimeService.InjectError("RunPodSandbox", errors.New("context canceled"))
	if err := s.start(context.Background()); err == nil {
		t.Fatal("start did not fail")
	}
	dir := filepath.Join(s.cfg.LogRoot, "shop_web_uid-1")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the log directory was not made before the sandbox: %v", err)
	}
	if err := s.teardown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("log directory left: %v", err)
	}
}
