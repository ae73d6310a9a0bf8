package podshim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// crioLike is the fake runtime with what CRI-O 1.34 does that containerd
// does not, where a pod's stop depends on it:
//   - a CreateContainer whose caller went away is finished anyway, but the
//     container is kept out of ListContainers (for a retry to claim);
//   - StopPodSandbox sends the sandbox's containers that are not stopped
//     their stop signal and kills them once the call's deadline is near
//     (10 s without a deadline). A container that was created but never
//     started ignores the signal (its OCI runtime's process waits as PID 1
//     of its namespace, without a handler), so the call takes that long.
type crioLike struct {
	*fakeCRI
	createTime time.Duration // how long a create takes

	mu       sync.Mutex
	slow     bool          // creates take createTime
	creating chan struct{} // closed when a slow create began
	hidden   int           // created after their caller went away: unlisted, not stopped
	stops    []string      // "StopContainer ID TIMEOUT", "StopPodSandbox ID"
}

func newCRIOLike() *crioLike {
	return &crioLike{fakeCRI: newFakeCRI("busybox:1"), createTime: 300 * time.Millisecond, creating: make(chan struct{})}
}

func (r *crioLike) CreateContainer(ctx context.Context, sandbox string, c *runtimeapi.ContainerConfig, sb *runtimeapi.PodSandboxConfig) (string, error) {
	r.mu.Lock()
	slow := r.slow
	if slow {
		r.slow = false
		close(r.creating)
	}
	r.mu.Unlock()
	if slow {
		select {
		case <-time.After(r.createTime):
		case <-ctx.Done():
			r.mu.Lock()
			r.hidden++
			r.mu.Unlock()
			return "", status.FromContextError(ctx.Err()).Err()
		}
	}
	return r.fakeCRI.CreateContainer(ctx, sandbox, c, sb)
}

func (r *crioLike) StopContainer(ctx context.Context, id string, timeout int64) error {
	r.mu.Lock()
	r.stops = append(r.stops, fmt.Sprintf("StopContainer %s %d", id, timeout))
	r.mu.Unlock()
	return r.fakeCRI.StopContainer(ctx, id, timeout)
}

func (r *crioLike) StopPodSandbox(ctx context.Context, id string) error {
	r.mu.Lock()
	r.stops = append(r.stops, "StopPodSandbox "+id)
	waiting := r.hidden > 0
	r.mu.Unlock()
	r.FakeRuntimeService.Lock()
	for _, c := range r.Containers {
		waiting = waiting || (c.SandboxID == id && c.State == runtimeapi.ContainerState_CONTAINER_CREATED)
	}
	r.FakeRuntimeService.Unlock()
	if waiting {
		// CRI-O's stop loop, then its SIGKILL.
		if _, ok := ctx.Deadline(); ok {
			<-ctx.Done()
		} else {
			time.Sleep(10 * time.Second)
		}
		r.mu.Lock()
		r.hidden = 0
		r.mu.Unlock()
		r.FakeRuntimeService.Lock()
		for _, c := range r.Containers {
			if c.SandboxID == id && c.State == runtimeapi.ContainerState_CONTAINER_CREATED {
				c.State = runtimeapi.ContainerState_CONTAINER_EXITED
			}
		}
		r.FakeRuntimeService.Unlock()
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return r.fakeCRI.StopPodSandbox(ctx, id)
}

func (r *crioLike) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.stops...)
}

// runUntilReady runs s with rt until the pod is ready; stop stops it and
// returns Run's error, or fails the test when the stop takes longer than
// within.
func runUntilReady(t *testing.T, s *Shim, n *notes) (stop func(within time.Duration) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitUntil(t, "READY=1", func() bool { return strings.Contains(n.all(), "READY=1") })
	return func(within time.Duration) error {
		t.Helper()
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(within):
			t.Fatalf("the stop took more than %s (the pod's grace period is %ds)", time.Since(start).Round(time.Millisecond), s.grace())
			return nil
		}
	}
}

// A stop that comes while a crash-looping container is being created again
// lets the create finish, does not start the container, kills it at once
// (it never ran) and stops the sandbox: the stop takes well under the
// grace period on CRI-O too, which would keep a container whose create was
// cut short out of its list and wait for it in StopPodSandbox to the end
// of that call's deadline (the VM story: systemd killed podshim).
func TestStopDuringContainerRestart(t *testing.T) {
	rt := newCRIOLike()
	n := &notes{}
	s := newShim(t, testPod(), rt, n)
	stop := runUntilReady(t, s, n)

	rt.mu.Lock()
	rt.slow = true
	rt.mu.Unlock()
	rt.FakeRuntimeService.Lock()
	exit(rt.fakeCRI, 1, time.Now()) // the first restart is at once
	rt.FakeRuntimeService.Unlock()
	<-rt.creating
	if err := stop(3 * time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}

	if len(rt.Sandboxes) != 0 {
		t.Errorf("sandboxes left: %d", len(rt.Sandboxes))
	}
	var restarted string
	for id, c := range rt.Containers {
		if c.Metadata.Attempt == 1 {
			restarted = id
		}
	}
	if restarted == "" {
		t.Fatalf("the create the stop came during was cut short: %d containers", len(rt.Containers))
	}
	// Killed at once, before the sandbox's stop; nothing else stopped (the
	// first instance had exited).
	want := []string{"StopContainer " + restarted + " 0", "StopPodSandbox " + s.sandboxID}
	if got := rt.calls(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st := rt.Containers[restarted].State; st != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("the restarted container is %s, want exited", st)
	}
}

// A container podshim cannot stop itself (one CRI-O keeps out of its list:
// a create cut short, by a podshim killed meanwhile or one that took longer
// than creationWait) costs the stop SandboxStopWait, not the client's
// deadline: the first StopPodSandbox is given that long, and the one the
// deadline cut short is made again.
func TestStopBoundsWhatTheRuntimeStopsItself(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hidden int
		stops  int // StopPodSandbox calls
	}{
		{"nothing left to the runtime", 0, 1},
		{"an unlisted container", 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newCRIOLike()
			n := &notes{}
			s := newShim(t, testPod(), rt, n)
			s.cfg.SandboxStopWait = 300 * time.Millisecond
			stop := runUntilReady(t, s, n)
			sandbox := s.sandboxID
			rt.mu.Lock()
			rt.hidden = tc.hidden
			rt.mu.Unlock()
			if err := stop(2 * time.Second); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(rt.Sandboxes) != 0 {
				t.Errorf("sandboxes left: %d", len(rt.Sandboxes))
			}
			var sandboxStops []string
			for _, c := range rt.calls() {
				if strings.HasPrefix(c, "StopPodSandbox") {
					sandboxStops = append(sandboxStops, c)
				}
			}
			if len(sandboxStops) != tc.stops || sandboxStops[0] != "StopPodSandbox "+sandbox {
				t.Errorf("sandbox stops: %q, want %d", sandboxStops, tc.stops)
			}
		})
	}
}

// outlast's context is done d after its parent is, not at once; cancel
// ends it sooner.
func TestOutlast(t *testing.T) {
	t.Run("outlasts the stop by d", func(t *testing.T) {
		parent, stop := context.WithCancel(context.Background())
		out, cancel := outlast(parent, 200*time.Millisecond)
		defer cancel()
		stop()
		start := time.Now()
		select {
		case <-out.Done():
			t.Fatalf("done %s after the stop, want 200ms", time.Since(start))
		case <-time.After(150 * time.Millisecond):
		}
		select {
		case <-out.Done():
		case <-time.After(2 * time.Second):
			t.Fatal("not done 2 s after the stop")
		}
	})
	t.Run("a parent's deadline is moved by d", func(t *testing.T) {
		deadline := time.Now().Add(time.Hour)
		parent, stop := context.WithDeadline(context.Background(), deadline)
		defer stop()
		out, cancel := outlast(parent, time.Minute)
		defer cancel()
		if got, _ := out.Deadline(); !got.Equal(deadline.Add(time.Minute)) {
			t.Fatalf("deadline %s, want the parent's plus 1m (%s)", got, deadline.Add(time.Minute))
		}
	})
	t.Run("cancelled by its caller", func(t *testing.T) {
		out, cancel := outlast(context.Background(), time.Hour)
		cancel()
		if out.Err() == nil {
			t.Fatal("not done after its cancel")
		}
	})
}
