//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

// A readiness probe holds the unit in "activating" (no READY=1) until it
// passes, with the wait in STATUS=; an httpGet probe is made from the host to
// the pod IP (busybox has no HTTP client to fake it with).
func TestReadinessGatesUnitActive(t *testing.T) {
	const name = "e2e-ready"
	writeManifest(t, "e2e-ready.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-ready
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c"]
    args:
    - |
      mkdir -p /www && echo home > /www/index.html
      httpd -f -p 80 -h /www & trap 'kill $!; exit 0' TERM
      sleep 4; echo ok > /www/ready.html; wait
    ports:
    - {name: http, containerPort: 80}
    readinessProbe:
      httpGet: {path: /ready.html, port: http}
      periodSeconds: 1
`)
	unit := units.ServiceName("default", name)
	waitFor(t, "the unit waiting for readiness", func() (bool, error) {
		p, err := systemd.GetAllPropertiesContext(t.Context(), unit)
		if err != nil {
			return false, err
		}
		return p["ActiveState"] == "activating" && strings.Contains(p["StatusText"].(string), "0/1 ready (waiting for readiness probes)"), nil
	})
	st := podState(t, "default", name)
	if st.Status.ContainerStatuses[0].Ready || conditionStatus(st, corev1.PodReady) != corev1.ConditionFalse {
		t.Errorf("ready before the probe passed: %+v", st.Status)
	}
	waitActive(t, "default", name)
	st = podState(t, "default", name)
	if !st.Status.ContainerStatuses[0].Ready || conditionStatus(st, corev1.PodReady) != corev1.ConditionTrue {
		t.Errorf("not ready after the probe passed: %+v", st.Status)
	}
	if s := unitProps(t, unit)["StatusText"]; s != "Running: 1/1 ready, pod IP "+st.Status.PodIP {
		t.Errorf("unit status %q", s)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-ready.yaml"))
	waitGone(t, unit)
}

// A failing liveness probe kills the container; restartPolicy brings it
// back in the same sandbox.
func TestLivenessRestartsContainer(t *testing.T) {
	const name = "e2e-live"
	start := time.Now()
	writeManifest(t, "e2e-live.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-live
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "touch /tmp/alive; sleep 2; rm /tmp/alive; trap 'exit 0' TERM; while true; do sleep 1; done"]
    livenessProbe:
      exec: {command: ["test", "-e", "/tmp/alive"]}
      periodSeconds: 1
      failureThreshold: 2
`)
	unit := waitActive(t, "default", name)
	first := podState(t, "default", name)
	waitFor(t, "a restart after the liveness probe failed", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
		return err == nil && st.Status.ContainerStatuses[0].RestartCount >= 1, err
	})
	second := podState(t, "default", name)
	if second.SandboxID != first.SandboxID {
		t.Error("the sandbox changed")
	}
	// The failures are counted in /metrics.
	failures := regexp.MustCompile(`(?m)^podunit_probe_failures_total\{container="app",namespace="default",pod="e2e-live",probe="liveness"\} ([0-9]+)$`)
	waitFor(t, "the liveness failures in /metrics", func() (bool, error) {
		_, metrics := unixGet(t, "/metrics")
		m := failures.FindStringSubmatch(metrics)
		if m == nil {
			return false, nil
		}
		n, err := strconv.Atoi(m[1])
		return n >= 2, err
	})
	j := journal(t, unit, start)
	if !strings.Contains(j, "Liveness probe failed") || !strings.Contains(j, "container failed a probe and will be killed") {
		t.Errorf("the journal does not tell about the probe:\n%s", j)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-live.yaml"))
	waitGone(t, unit)
}

func conditionStatus(st *podshim.State, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range st.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// An image that cannot be pulled leaves its container waiting with
// ErrImagePull/ImagePullBackOff, shown in the unit's status, while the rest
// of the pod runs; podshim keeps running (no restart churn).
func TestImagePullBackOff(t *testing.T) {
	const name = "e2e-pull"
	writeManifest(t, "e2e-pull.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-pull
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: ok
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
  - name: missing
    image: registry.invalid/podunit/missing:1
`)
	unit := units.ServiceName("default", name)
	waitFor(t, "the pull error in the pod's state", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
		if err != nil {
			return false, err
		}
		w := st.Status.ContainerStatuses[1].State.Waiting
		return w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") &&
			st.Status.ContainerStatuses[0].State.Running != nil, nil
	})
	p := unitProps(t, unit)
	if p["ActiveState"] != "activating" || !strings.Contains(p["StatusText"].(string), "container missing, image registry.invalid/podunit/missing:1") {
		t.Errorf("unit %s: %v", p["ActiveState"], p["StatusText"])
	}
	if n := p["NRestarts"].(uint32); n != 0 {
		t.Errorf("podshim was restarted %d times over a failed pull", n)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-pull.yaml"))
	waitGone(t, unit)
}

// imagePullPolicy Never runs a present image and never pulls a missing one:
// that container waits with ErrImageNeverPull while the others run, and
// starts once the image is imported.
func TestImagePullPolicyNever(t *testing.T) {
	const name = "e2e-never"
	writeManifest(t, "e2e-never.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-never
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: present
    image: localhost/podunit/busybox:1.35
    imagePullPolicy: Never
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
  - name: absent
    image: localhost/podunit/absent:1
    imagePullPolicy: Never
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`)
	unit := units.ServiceName("default", name)
	waitFor(t, "absent waiting with ErrImageNeverPull, present running", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
		if err != nil {
			return false, err
		}
		w := st.Status.ContainerStatuses[1].State.Waiting
		return st.Status.ContainerStatuses[0].State.Running != nil && w != nil && w.Reason == "ErrImageNeverPull", nil
	})
	// How each runtime logs a pull: containerd 'PullImage "NAME"', CRI-O
	// 'Pulling image: NAME'.
	for _, pulled := range []string{`PullImage "localhost/podunit/absent:1"`, "Pulling image: localhost/podunit/absent:1"} {
		if j := journal(t, runtimeUnit(), time.Now().Add(-time.Minute)); strings.Contains(j, pulled) {
			t.Error("an image with imagePullPolicy Never was pulled")
		}
	}
	// The image arrives (imported, as on a box without a registry): the
	// waiting container starts with it, retried without a restart by hand.
	tagImage(t, "localhost/podunit/busybox:1.35", "localhost/podunit/absent:1")
	waitFor(t, "absent running once its image is there", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
		if err != nil {
			return false, err
		}
		return st.Status.ContainerStatuses[1].State.Running != nil, nil
	})
	os.Remove(filepath.Join(manifestDir, "e2e-never.yaml"))
	waitGone(t, unit)
}

// A podshim that hangs (SIGSTOP) stops pinging the watchdog; systemd kills
// and restarts it (WatchdogSec=3m), and the new podshim adopts the pod.
// Slow (over 3 minutes): only with PODUNIT_E2E_SLOW=1 (make test-e2e-slow).
func TestHungPodshimIsRestartedByWatchdog(t *testing.T) {
	if os.Getenv("PODUNIT_E2E_SLOW") == "" {
		t.Skip("slow: make test-e2e-slow")
	}
	const name = "e2e-hung"
	writeManifest(t, "e2e-hung.yaml", webPod(name, "hung", 0))
	unit := waitActive(t, "default", name)
	before := runningContainer(t, "default", name, "web")
	pid := unitProps(t, unit)["MainPID"].(uint32)
	if err := syscall.Kill(int(pid), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		p := unitProps(t, unit)
		if p["MainPID"].(uint32) != pid && p["ActiveState"] == "active" {
			break
		}
		time.Sleep(2 * time.Second)
	}
	p := unitProps(t, unit)
	if p["MainPID"].(uint32) == pid || p["NRestarts"].(uint32) == 0 {
		t.Fatalf("the hung podshim was not restarted: MainPID %v NRestarts %v", p["MainPID"], p["NRestarts"])
	}
	if after := runningContainer(t, "default", name, "web"); after != before {
		t.Errorf("the new podshim did not adopt the container: %s → %s", before, after)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-hung.yaml"))
	waitGone(t, unit)
}
