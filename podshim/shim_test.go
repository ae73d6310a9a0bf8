package podshim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

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

func newShim(t *testing.T, pod *corev1.Pod, rt Runtime, n *notes) *Shim {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return New(pod, Config{CgroupParent: "podunit-shop_web.slice", StateDir: t.TempDir(), PollInterval: 10 * time.Millisecond}, rt, n.notify, log)
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
		if c.Labels[LabelContainerName] != "app" || c.Annotations[annotationRestartCount] != "0" || c.Annotations[annotationGracePeriod] != "7" {
			t.Errorf("container labels %v annotations %v", c.Labels, c.Annotations)
		}
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container state %s", c.State)
		}
	}
	if !strings.Contains(n.all(), "READY=1") || !strings.Contains(n.all(), "STATUS=Running: 1/1 containers running, pod IP 192.168.192.168") {
		t.Errorf("notifications:\n%s", n.all())
	}
	st, err := ReadState(s.cfg.StateDir, "shop", "web")
	if err != nil || st.PodIP != "192.168.192.168" || st.Containers[0].State != "CONTAINER_RUNNING" {
		t.Errorf("state %+v, %v", st, err)
	}
}

func TestSandboxAndContainerConfig(t *testing.T) {
	s := newShim(t, testPod(), newFakeCRI(), &notes{})
	sb := s.sandboxConfig(2)
	if sb.Metadata.Attempt != 2 || sb.Linux.CgroupParent != "podunit-shop_web.slice" ||
		sb.LogDirectory != "/var/log/pods/shop_web_uid-1" {
		t.Errorf("sandbox config %+v", sb)
	}
	if len(sb.PortMappings) != 1 || sb.PortMappings[0].HostPort != 8080 || sb.PortMappings[0].ContainerPort != 80 {
		t.Errorf("port mappings %v", sb.PortMappings)
	}
	c := s.containerConfig(&s.pod.Spec.Containers[0], "sha256:abc", 3)
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

// A container that exited is recreated as the next attempt in the same
// sandbox; an earlier generation's sandbox (another UID) is removed.
func TestStartRestartsExitedContainerInSandbox(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	first := newShim(t, testPod(), rt, &notes{})
	if err := first.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range rt.Containers {
		c.State = runtimeapi.ContainerState_CONTAINER_EXITED
		c.ExitCode = 7
	}
	// watch notices the exit.
	err := first.watch(context.Background())
	if !errors.Is(err, ErrContainerExited) || !strings.Contains(err.Error(), "exited with code 7") {
		t.Fatalf("watch: %v", err)
	}

	second := newShim(t, testPod(), rt, &notes{})
	if err := second.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if second.sandboxID != first.sandboxID {
		t.Error("sandbox not kept")
	}
	if len(rt.Containers) != 1 {
		t.Fatalf("want the exited container replaced, have %d containers", len(rt.Containers))
	}
	for _, c := range rt.Containers {
		if c.Metadata.Attempt != 1 || c.State != runtimeapi.ContainerState_CONTAINER_RUNNING || c.Annotations[annotationRestartCount] != "1" {
			t.Errorf("restarted container: attempt %d state %s", c.Metadata.Attempt, c.State)
		}
	}

	// The next generation of the pod (new UID) replaces the sandbox.
	pod := testPod()
	pod.UID = types.UID("uid-2")
	third := newShim(t, pod, rt, &notes{})
	if err := third.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rt.Sandboxes) != 1 || rt.Sandboxes[third.sandboxID] == nil || third.sandboxID == first.sandboxID {
		t.Errorf("old generation's sandbox not replaced: %v", rt.Sandboxes)
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

func TestImagePullPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy  corev1.PullPolicy
		present bool
		pulls   bool
		err     string
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
		err := s.start(context.Background())
		pulled := false
		for _, c := range rt.FakeImageService.Called {
			pulled = pulled || c == "PullImage"
		}
		if pulled != tc.pulls || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s, present=%v: pulled=%v err=%v", tc.policy, tc.present, pulled, err)
		}
	}
}
