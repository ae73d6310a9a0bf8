package podshim

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// hostPort splits a listener's address for probes aimed at 127.0.0.1.
func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

func TestProbeHandlers(t *testing.T) {
	s := newShim(t, testPod(), newFakeCRI(), &notes{})
	spec := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 1}}}
	ctx := context.Background()

	codes := map[string]int{"/ok": 200, "/redirect": 302, "/broken": 500}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Probe") != "yes" || !strings.HasPrefix(r.UserAgent(), "kube-probe/") {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(codes[r.URL.Path])
	}))
	defer srv.Close()
	host, port := hostPort(t, srv.Listener.Addr().String())
	spec.Ports[0].ContainerPort = int32(port)
	httpProbe := func(path string, p intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Host: host, Path: path, Port: p, HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}},
		}}}
	}
	for path, wantOK := range map[string]bool{"/ok": true, "/redirect": true, "/broken": false} {
		err := s.probeOnce(ctx, spec, "id", httpProbe(path, intstr.FromString("web")))
		if (err == nil) != wantOK {
			t.Errorf("httpGet %s: %v", path, err)
		}
	}
	if err := s.probeOnce(ctx, spec, "id", httpProbe("/ok", intstr.FromString("nope"))); err == nil {
		t.Error("httpGet to an unknown named port succeeded")
	}

	tcp := &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Host: host, Port: intstr.FromInt(port)}}}
	if err := s.probeOnce(ctx, spec, "id", tcp); err != nil {
		t.Errorf("tcpSocket to a listener: %v", err)
	}
	srv.Close()
	if err := s.probeOnce(ctx, spec, "id", tcp); err == nil {
		t.Error("tcpSocket to a closed port succeeded")
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	go g.Serve(l)
	defer g.Stop()
	_, gport := hostPort(t, l.Addr().String())
	s.podIPs = []string{"127.0.0.1"}
	grpcProbe := &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(gport)}}}
	if err := s.probeOnce(ctx, spec, "id", grpcProbe); err != nil {
		t.Errorf("grpc probe of a SERVING server: %v", err)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if err := s.probeOnce(ctx, spec, "id", grpcProbe); err == nil {
		t.Error("grpc probe of a NOT_SERVING server succeeded")
	}

	exec := &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
	if err := s.probeOnce(ctx, spec, "id", exec); err != nil {
		t.Errorf("exec probe: %v", err)
	}
	s.rt.(*fakeCRI).FakeRuntimeService.InjectError("ExecSync", errors.New("exit 1"))
	if err := s.probeOnce(ctx, spec, "id", exec); err == nil {
		t.Error("a failing exec probe succeeded")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Readiness gates READY=1; a failing liveness probe kills the container and
// the restart policy brings it back.
func TestReadinessAndLiveness(t *testing.T) {
	rt := newFakeCRI("busybox:1")
	pod := testPod()
	execProbe := func(threshold int32) *corev1.Probe {
		return &corev1.Probe{TimeoutSeconds: 1, PeriodSeconds: 1, SuccessThreshold: 1, FailureThreshold: threshold,
			ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}}}
	}
	pod.Spec.Containers[0].ReadinessProbe = execProbe(1)
	n := &notes{}
	s := newShim(t, pod, rt, n)
	ctx := context.Background()
	rt.FakeRuntimeService.InjectError("ExecSync", errors.New("not yet"))
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(n.all(), "READY=1") {
		t.Fatal("READY=1 before the readiness probe passed")
	}
	waitUntil(t, "readiness", func() bool {
		_, ready, _ := s.containers[0].probes.result()
		return ready
	})
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(n.all(), "READY=1") {
		t.Fatalf("no READY=1 once ready:\n%s", n.all())
	}
	s.containers[0].stopProbes()

	// Liveness: three failures kill the container.
	rt2 := newFakeCRI("busybox:1")
	pod2 := testPod()
	pod2.Spec.Containers[0].LivenessProbe = execProbe(3)
	s2 := newShim(t, pod2, rt2, &notes{})
	for range 3 {
		rt2.FakeRuntimeService.InjectError("ExecSync", errors.New("dead"))
	}
	if err := s2.start(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "liveness failure", func() bool {
		_, _, failed := s2.containers[0].probes.result()
		return failed != ""
	})
	if err := s2.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range rt2.Containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Error("container still running after failing its liveness probe")
		}
	}
}

// unreachable is a runtime whose socket refuses connections: calls wait
// for it and fail with DeadlineExceeded, and its connection says so.
type unreachable struct {
	*fakeCRI
	down atomic.Bool
}

func (u *unreachable) Reachable() bool { return !u.down.Load() }

// A probe the runtime cannot run while it is down is thrown away, as the
// kubelet does: a containerd restart fails no liveness probe and kills no
// container. A probe that timed out on a runtime that answers fails.
func TestProbeNotFailedByRuntimeOutage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		down    bool
		failing bool
	}{
		{"refused", status.Error(codes.Unavailable, "connection refused"), false, false},
		{"waited for", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), true, false},
		{"starting", status.Error(codes.Unknown, "server is not initialized yet"), false, false},
		{"timed out", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &unreachable{fakeCRI: newFakeCRI("busybox:1")}
			pod := testPod()
			pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{TimeoutSeconds: 1, PeriodSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1,
				ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}}}
			s := newShim(t, pod, rt, &notes{})
			if err := s.start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer s.containers[0].stopProbes()
			rt.down.Store(tc.down)
			rt.FakeRuntimeService.InjectError("ExecSync", tc.err)
			calls := func() int {
				rt.FakeRuntimeService.Lock()
				defer rt.FakeRuntimeService.Unlock()
				return strings.Count(strings.Join(rt.FakeRuntimeService.Called, " "), "ExecSync")
			}
			// The probe that gets the error is the first or the second
			// (the first may have run already); the third starts once
			// the second's result was taken.
			waitUntil(t, "a probe after the error", func() bool { return calls() >= 3 })
			if _, _, failed := s.containers[0].probes.result(); (failed != "") != tc.failing {
				t.Errorf("liveness failure %q, want failing %v", failed, tc.failing)
			}
		})
	}
}
