//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/units"
)

// unitGeneration is the config hash of the generation the pod's unit runs.
func unitGeneration(t *testing.T, unit string) string {
	t.Helper()
	p, err := systemd.GetUnitPropertyContext(context.Background(), unit, "Description")
	if err != nil {
		return ""
	}
	_, _, hash, _ := units.ParseDescription(strings.Trim(p.Value.String(), `"`))
	return hash
}

// statusWord is the pod's STATUS in podunit get pods.
func statusWord(t *testing.T, pod string) string {
	t.Helper()
	out, _ := exec.Command(podunitBin, "get", "pods").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == pod {
			return f[2]
		}
	}
	return ""
}

func registryPod(name, image, command string, annotations ...string) string {
	meta := "{name: " + name + "}"
	if len(annotations) > 0 {
		meta = fmt.Sprintf("{name: %s, annotations: {%s}}", name, strings.Join(annotations, ", "))
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: %s
spec:
  terminationGracePeriodSeconds: 1
  imagePullSecrets: [{name: e2e-regcred}]
  containers:
  - name: app
    image: %s
    command: ["sh", "-c", %q]
`, meta, image, command)
}

const serveForever = "trap 'exit 0' TERM; sleep 3600 & wait"

// User story: "I edit a pod to a new image tag that my registry does not
// have (a typo, a push that failed). The pod I had keeps running; podunit
// says why the new one did not start, and starts it by itself once the
// image is there." The kubelet stops the old pod first and leaves the box
// with nothing running.
func TestEditToUnpullableImageKeepsTheOldPod(t *testing.T) {
	r := startRegistry(t)
	secret := `apiVersion: v1
kind: Secret
metadata: {name: e2e-regcred}
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: ` + dockerConfigJSON(r.addr, registryUser, registryPassword) + "\n---\n"
	writeManifest(t, "e2e-upd.yaml", secret+registryPod("e2e-upd", r.addr+"/private/busybox:1", serveForever))
	unit := waitActive(t, "default", "e2e-upd")
	before, old := runningContainer(t, "default", "e2e-upd", "app"), unitGeneration(t, unit)

	begin := time.Now()
	writeFile(t, "e2e-upd.yaml", secret+registryPod("e2e-upd", r.addr+"/private/busybox:2", serveForever))
	waitStatusWord(t, "e2e-upd", "ImagePullBackOff")
	if c, _ := runningContainerID("default", "e2e-upd", "app"); c != before || activeState(unit) != "active" || unitGeneration(t, unit) != old {
		t.Fatalf("the running pod was touched while the new image could not be pulled: container %s (was %s), unit %s, generation %s (was %s)",
			c, before, activeState(unit), unitGeneration(t, unit), old)
	}
	out, _ := exec.Command(podunitBin, "describe", "pod", "e2e-upd").CombinedOutput()
	if !strings.Contains(string(out), "ImagePullBackOff") || !strings.Contains(string(out), "busybox:2") {
		t.Errorf("describe does not say why the new generation waits:\n%s", out)
	}
	if _, metrics := unixGet(t, "/metrics"); metricValue(metrics, "podunit_image_pulls_failed_total") < 1 {
		t.Errorf("/metrics has no failed-pull counter")
	}

	// The image is pushed: the next try replaces the pod, with no edit.
	certs := filepath.Join(r.dir, "certs")
	if out, err := exec.Command("skopeo", "copy", "--dest-cert-dir", certs, "--dest-creds", registryUser+":"+registryPassword,
		"oci-archive:"+filepath.Join(os.Getenv("PODUNIT_TESTBED_DIR"), "images", "busybox.tar"), "docker://"+r.addr+"/private/busybox:2").CombinedOutput(); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	waitFor(t, "the new generation running", func() (bool, error) {
		return unitGeneration(t, unit) != old && activeState(unit) == "active", nil
	})
	waitFor(t, "the pod shown Running", func() (bool, error) { return statusWord(t, "e2e-upd") == "Running", nil })
	handoff := journal(t, units.HandoffName(unit), begin)
	t.Logf("the hand-off:\n%s", handoff)
	if !strings.Contains(handoff, "busybox:2") {
		t.Errorf("the hand-off's journal does not name the image it could not pull")
	}
}

// User story: "I edit a pod to a version that crashes at start. Within the
// deadline I gave, podunit puts back the version that worked, tells me so,
// and leaves my manifest as I wrote it; it does not try the broken one
// again until I change the file."
func TestEditToCrashLoopRollsBack(t *testing.T) {
	pod := func(command string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: e2e-rollback
  annotations: {podunit.io/rollout-deadline: 10s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", %q]
`, command)
	}
	writeManifest(t, "e2e-rollback.yaml", pod("echo v1; "+serveForever))
	unit := waitActive(t, "default", "e2e-rollback")
	good := unitGeneration(t, unit)
	_, metrics := unixGet(t, "/metrics")
	rolledBackBefore := metricValue(metrics, `podunit_rollouts_total{result="rolled_back"}`)

	begin := time.Now()
	writeFile(t, "e2e-rollback.yaml", pod("echo v2 is broken; exit 1"))
	waitStatusWord(t, "e2e-rollback", "RolledBack")
	took := time.Since(begin)
	waitFor(t, "the good generation ready again", func() (bool, error) {
		return unitGeneration(t, unit) == good && activeState(unit) == "active", nil
	})
	t.Logf("rolled back %.1f s after the edit (deadline 10 s)", took.Seconds())
	out, _ := exec.Command(podunitBin, "describe", "pod", "e2e-rollback").CombinedOutput()
	if !strings.Contains(string(out), "RolledBack") || !strings.Contains(string(out), "CrashLoopBackOff") {
		t.Errorf("describe does not say why the pod was rolled back:\n%s", out)
	}
	_, metrics = unixGet(t, "/metrics")
	if v := metricValue(metrics, `podunit_rollouts_total{result="rolled_back"}`); v != rolledBackBefore+1 {
		t.Errorf("rolled-back rollouts: %v, want %v", v, rolledBackBefore+1)
	}
	waitFor(t, "the sync's journal saying the pod was rolled back", func() (bool, error) {
		return strings.Contains(journal(t, "podunit-sync.service", begin), "was rolled back"), nil
	})

	// No flapping: syncs leave it on the good generation.
	for range 2 {
		exec.Command("systemctl", "start", "podunit-sync.service").Run()
	}
	time.Sleep(2 * time.Second)
	if g := unitGeneration(t, unit); g != good || statusWord(t, "e2e-rollback") != "RolledBack" {
		t.Fatalf("after more syncs the pod runs generation %s (good %s), shown %s", g, good, statusWord(t, "e2e-rollback"))
	}

	// A new edit is tried, and replaces it.
	writeFile(t, "e2e-rollback.yaml", pod("echo v3; "+serveForever))
	waitFor(t, "the fixed generation running", func() (bool, error) {
		g := unitGeneration(t, unit)
		return g != good && g != "" && activeState(unit) == "active" && statusWord(t, "e2e-rollback") == "Running", nil
	})
}

// metricValue is a sample's value in a Prometheus text exposition; 0 when
// absent.
func metricValue(exposition, sample string) float64 {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}
