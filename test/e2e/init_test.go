//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/units"
)

// Init containers run in order before the app container, a sidecar keeps
// running beside it, and the app sees what the init containers left in the
// shared network namespace (the sidecar's server on localhost).
func TestInitContainersAndSidecar(t *testing.T) {
	const name = "e2e-init"
	start := time.Now()
	writeManifest(t, "e2e-init.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-init
spec:
  terminationGracePeriodSeconds: 2
  initContainers:
  - name: first
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "echo first init done"]
  - name: sidecar
    image: localhost/podunit/busybox:1.35
    restartPolicy: Always
    command: ["sh", "-c", "mkdir -p /w && echo from-sidecar > /w/index.html && httpd -f -p 8081 -h /w & trap 'kill $!; exit 0' TERM; wait"]
  - name: second
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "until wget -q -O- http://127.0.0.1:8081/; do sleep 0.2; done; echo second init done"]
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "wget -q -O- http://127.0.0.1:8081/; trap 'exit 0' TERM; while true; do sleep 1; done"]
`)
	unit := waitActive(t, "default", name)
	st := podState(t, "default", name)
	if len(st.Status.InitContainerStatuses) != 3 {
		t.Fatalf("init statuses: %+v", st.Status.InitContainerStatuses)
	}
	for i, want := range []string{"first", "sidecar", "second"} {
		cs := st.Status.InitContainerStatuses[i]
		if cs.Name != want {
			t.Errorf("init container %d is %s, want %s", i, cs.Name, want)
		}
	}
	first, sidecar, second := st.Status.InitContainerStatuses[0], st.Status.InitContainerStatuses[1], st.Status.InitContainerStatuses[2]
	if first.State.Terminated == nil || first.State.Terminated.ExitCode != 0 || second.State.Terminated == nil {
		t.Errorf("init containers did not complete: %+v %+v", first.State, second.State)
	}
	if sidecar.State.Running == nil {
		t.Errorf("sidecar not running: %+v", sidecar.State)
	}
	if conditionStatus(st, "Initialized") != "True" || st.Status.Phase != "Running" {
		t.Errorf("phase %s, Initialized %s", st.Status.Phase, conditionStatus(st, "Initialized"))
	}
	// Order: first finished before the sidecar started; second after it.
	if !first.State.Terminated.FinishedAt.Time.Before(sidecar.State.Running.StartedAt.Time.Add(time.Second)) ||
		second.State.Terminated.StartedAt.Time.Before(sidecar.State.Running.StartedAt.Time) {
		t.Errorf("init containers out of order: %+v", st.Status.InitContainerStatuses)
	}
	waitFor(t, "the app to reach the sidecar", func() (bool, error) {
		return countMessage(journalEntries(t, unit, "CONTAINER_NAME=app"), "from-sidecar") == 1, nil
	})
	if !strings.Contains(journal(t, unit, start), "second init done") {
		t.Error("the second init container's output is not in the journal")
	}
	os.Remove(filepath.Join(manifestDir, "e2e-init.yaml"))
	waitGone(t, units.ServiceName("default", name))
}

// postStart runs after the container starts (the container sees what it
// did); preStop runs before SIGTERM when the pod stops.
func TestLifecycleHooks(t *testing.T) {
	const name = "e2e-hooks"
	start := time.Now()
	writeManifest(t, "e2e-hooks.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-hooks
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "until [ -e /tmp/started ]; do sleep 0.2; done; cat /tmp/started; trap 'echo got SIGTERM; exit 0' TERM; while true; do sleep 1; done"]
    lifecycle:
      postStart:
        exec: {command: ["sh", "-c", "echo poststart-ran > /tmp/started"]}
      preStop:
        exec: {command: ["sh", "-c", "echo prestop-ran > /proc/1/fd/1"]}
`)
	unit := waitActive(t, "default", name)
	waitFor(t, "the postStart hook's mark", func() (bool, error) {
		return countMessage(journalEntries(t, unit, "CONTAINER_NAME=app"), "poststart-ran") == 1, nil
	})
	os.Remove(filepath.Join(manifestDir, "e2e-hooks.yaml"))
	waitGone(t, units.ServiceName("default", name))
	var order []string
	for _, e := range journalEntries(t, unit, "CONTAINER_NAME=app") {
		if m := e["MESSAGE"]; m == "prestop-ran" || m == "got SIGTERM" {
			order = append(order, m.(string))
		}
	}
	if strings.Join(order, ",") != "prestop-ran,got SIGTERM" {
		t.Errorf("preStop and SIGTERM seen in the order %v", order)
	}
	if !strings.Contains(journal(t, unit, start), "running preStop hook") {
		t.Error("podshim did not log the preStop hook")
	}
}
