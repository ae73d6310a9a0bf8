package podshim

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// overlapCRI is the fake runtime, with RunPodSandbox waiting a while for
// an ImageStatus to begin, and every call counted.
type overlapCRI struct {
	*fakeCRI
	wait          time.Duration
	mu            sync.Mutex
	calls         map[string]int
	statusBegan   chan struct{}
	sawImageAsked bool // RunPodSandbox saw an ImageStatus begin
}

func (r *overlapCRI) count(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[name]++
}

func (r *overlapCRI) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	r.count("RunPodSandbox")
	select {
	case <-r.statusBegan:
		r.sawImageAsked = true
	case <-time.After(r.wait):
	}
	return r.fakeCRI.RunPodSandbox(ctx, config, handler)
}

func (r *overlapCRI) ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	r.mu.Lock()
	r.calls["ImageStatus"]++
	if r.calls["ImageStatus"] == 1 {
		close(r.statusBegan)
	}
	r.mu.Unlock()
	return r.fakeCRI.ImageStatus(ctx, image, verbose)
}

func (r *overlapCRI) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	r.count("ListContainers")
	return r.fakeCRI.ListContainers(ctx, filter)
}

// A new pod's images are asked for while its sandbox is made, once per
// image, and a sandbox just made is not asked for its containers; Serial
// (make bench's "before") makes the calls one after the other as before.
func TestStartOverlapsImageStatusWithTheSandbox(t *testing.T) {
	for _, tc := range []struct {
		serial       bool
		wait         time.Duration
		overlapped   bool
		listedBefore int // ListContainers calls before the pod runs
	}{
		{serial: false, wait: 10 * time.Second, overlapped: true, listedBefore: 0},
		{serial: true, wait: 50 * time.Millisecond, overlapped: false, listedBefore: 1},
	} {
		rt := &overlapCRI{fakeCRI: newFakeCRI("busybox:1", "nginx:1"), wait: tc.wait, calls: map[string]int{}, statusBegan: make(chan struct{})}
		pod := testPod()
		side := pod.Spec.Containers[0]
		side.Name, side.Image = "side", "nginx:1"
		again := pod.Spec.Containers[0]
		again.Name = "again"
		pod.Spec.Containers = append(pod.Spec.Containers, side, again)
		s := newShim(t, pod, rt, &notes{})
		s.cfg.Serial = tc.serial
		if err := s.start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(rt.Containers) != 3 {
			t.Fatalf("serial=%v: %d containers, want 3", tc.serial, len(rt.Containers))
		}
		wantStatus := 2 // busybox:1 and nginx:1, each asked once
		if tc.serial {
			wantStatus = 3 // one a container, as before
		}
		if rt.sawImageAsked != tc.overlapped || rt.calls["ImageStatus"] != wantStatus || rt.calls["ListContainers"] != tc.listedBefore {
			t.Errorf("serial=%v: image status during the sandbox %v, ImageStatus %d times, ListContainers %d times; want %v, %d, %d",
				tc.serial, rt.sawImageAsked, rt.calls["ImageStatus"], rt.calls["ListContainers"], tc.overlapped, wantStatus, tc.listedBefore)
		}
	}
}

// An image that a container's policy pulls every time is not asked for
// ahead: its status would not spare the pull.
func TestPrefetchLeavesPullAlwaysImages(t *testing.T) {
	pod := testPod()
	pod.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
	if calls := prefetchImages(context.Background(), newFakeCRI("busybox:1"), pod, nil); len(calls) != 0 {
		t.Errorf("prefetched %d images of a PullAlways pod", len(calls))
	}
}

// The start's CRI calls are logged with READY=1, each as its offset from
// podshim's main and its duration, in the order they began; calls after
// READY=1 are not recorded.
func TestStartTimingsLogged(t *testing.T) {
	var buf bytes.Buffer
	trace := &CallTrace{Main: time.Now(), MainMonotonic: 12345}
	rt := newFakeCRI("busybox:1")
	s := New(testPod(), Config{StateDir: t.TempDir(), PodRoot: t.TempDir(), VolumeRoot: t.TempDir(), LogRoot: t.TempDir(), Trace: trace},
		Traced(rt, trace), (&notes{}).notify, slog.New(slog.NewTextHandler(&buf, nil)))
	trace.Record("Version", time.Now())
	if err := s.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.rt.ListContainers(context.Background(), nil); err != nil { // after READY=1
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, `msg="start timings"`) {
			line = l
		}
	}
	var names []string
	for _, m := range regexp.MustCompile(`(\w+)=(\d+\.\d\d)\+(\d+\.\d\d)`).FindAllStringSubmatch(line, -1) {
		names = append(names, m[1])
	}
	// The image status is asked alongside the sandbox's calls: where it
	// lands among them is the scheduler's.
	got := strings.Join(names, " ")
	if want := "Version ListPodSandbox RunPodSandbox PodSandboxStatus CreateContainer StartContainer"; strings.ReplaceAll(strings.ReplaceAll(got, " ImageStatus", ""), " ContainerStatus", "") != want ||
		strings.Count(got, "ImageStatus") != 1 {
		t.Errorf("calls %q, want %q with one ImageStatus among them", got, want)
	}
	if !strings.Contains(line, "mainMonotonicUs=12345") || !strings.Contains(line, "readyAt=") {
		t.Errorf("start timings: %q", line)
	}
	if strings.Count(line, "ListContainers=") != 0 {
		t.Errorf("a call after READY=1 was recorded: %q", line)
	}
}

// The record holds the start's calls only: none after it ended, and at
// most maxTracedCalls, so that a pod that never gets ready (its READY=1
// logs the record) does not grow it with every keepalive.
func TestCallTraceIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name        string
		calls       int
		endAfter    int // end the record after this many calls; -1: never
		wantRecords int
	}{
		{name: "a start", calls: 10, endAfter: -1, wantRecords: 10},
		{name: "calls after the start ended", calls: 10, endAfter: 4, wantRecords: 4},
		{name: "a start with very many calls", calls: 500, endAfter: -1, wantRecords: maxTracedCalls},
	} {
		trace := &CallTrace{Main: time.Now()}
		for i := range tc.calls {
			if i == tc.endAfter {
				trace.end()
			}
			trace.Record("ListContainers", time.Now())
		}
		if got := strings.Count(fmt.Sprint(trace.attrs(time.Now())...), "ListContainers="); got != tc.wantRecords {
			t.Errorf("%s: %d calls recorded, want %d", tc.name, got, tc.wantRecords)
		}
	}
}
