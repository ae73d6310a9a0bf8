//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/units"
)

// slowDeployment's replicas ignore SIGTERM (sleep as PID 1), so each stop
// takes the whole grace period.
func slowDeployment(name, greeting string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s}
spec:
  replicas: %d
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      terminationGracePeriodSeconds: 30
      containers:
      - name: sleep
        image: localhost/podunit/busybox:1.35
        command: ["sleep", "3600"]
        env: [{name: GREETING, value: %q}]
`, name, replicas, name, name, greeting)
}

// A sync never waits on a pod: while a Deployment's three replicas take
// their 30 s grace period to stop, and while a slow pod's edit waits for its
// old generation to stop, a new manifest's pod starts at once. The latency
// is reported, not asserted; what is asserted is that the new pod was
// ready while the others were still stopping, and that the edited pod never
// had two generations at once.
func TestSyncNeverWaitsOnAPod(t *testing.T) {
	writeManifest(t, "e2e-slow.yaml", slowDeployment("e2e-slow", "one", 3))
	writeManifest(t, "e2e-edit.yaml", slowDeployment("e2e-edit", "one", 1))
	for _, n := range []string{"e2e-slow-0", "e2e-slow-1", "e2e-slow-2", "e2e-edit-0"} {
		waitActive(t, "default", n)
	}

	// The Deployment goes; a second later a new manifest comes.
	os.Remove(filepath.Join(manifestDir, "e2e-slow.yaml"))
	time.Sleep(time.Second)
	begin := time.Now()
	writeManifest(t, "e2e-quick.yaml", webPod("e2e-quick", "quick", 0))
	waitActive(t, "default", "e2e-quick")
	t.Logf("a new pod while three replicas stop: ready %s after its manifest was written", time.Since(begin).Round(time.Millisecond))
	stopping := 0
	for _, n := range []string{"e2e-slow-0", "e2e-slow-1", "e2e-slow-2"} {
		if st := activeState(units.ServiceName("default", n)); st == "deactivating" {
			stopping++
		}
	}
	if stopping == 0 {
		t.Errorf("the replicas had all stopped before the new pod was ready: the test proves nothing (grace period too short?)")
	}

	// An edit of a slow pod: its old generation stops for 30 s; meanwhile a
	// new manifest's pod starts at once, and the edited pod never has two
	// sandboxes ready at once.
	editBegin := time.Now()
	writeManifest(t, "e2e-edit.yaml", slowDeployment("e2e-edit", "two", 1))
	time.Sleep(500 * time.Millisecond)
	begin = time.Now()
	writeManifest(t, "e2e-quick2.yaml", webPod("e2e-quick2", "quick", 0))
	waitActive(t, "default", "e2e-quick2")
	t.Logf("a new pod while another is replaced: ready %s after its manifest was written", time.Since(begin).Round(time.Millisecond))
	if st := activeState(units.ServiceName("default", "e2e-edit-0")); st != "deactivating" {
		t.Errorf("the edited pod's old generation is %q, not still stopping: the test proves nothing", st)
	}
	waitFor(t, "the edited pod's new generation", func() (bool, error) {
		ready := 0
		for _, sb := range sandboxes(t, "default", "e2e-edit-0") {
			if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				ready++
			}
		}
		if ready > 1 {
			t.Fatalf("two generations of e2e-edit-0 at once: %d ready sandboxes", ready)
		}
		out, ok := tryExec("default", "e2e-edit-0", "sleep", "sh", "-c", "echo $GREETING")
		return ok && out == "two", nil
	})
	t.Logf("the edited pod (30 s grace period): its new generation ran %s after the edit", time.Since(editBegin).Round(time.Millisecond))
}
