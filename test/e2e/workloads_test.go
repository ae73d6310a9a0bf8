//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/podunit/podunit/units"
)

func deployment(replicas int, greeting string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: e2e-deploy}
spec:
  replicas: %d
  selector: {matchLabels: {app: e2e-deploy}}
  template:
    metadata: {labels: {app: e2e-deploy}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: localhost/podunit/busybox:1.35
        command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
        env: [{name: GREETING, value: %q}]
`, replicas, greeting)
}

// A Deployment runs its replicas as pods <name>-<i>; scaling adds and
// removes them; a template change replaces them one at a time, each new
// one ready before the next old one stops.
func TestDeploymentReplicas(t *testing.T) {
	writeManifest(t, "e2e-deploy.yaml", deployment(2, "one"))
	r0, r1 := waitActive(t, "default", "e2e-deploy-0"), waitActive(t, "default", "e2e-deploy-1")
	writeManifest(t, "e2e-deploy.yaml", deployment(3, "one"))
	r2 := waitActive(t, "default", "e2e-deploy-2")
	first := unitProps(t, r0)["InvocationID"]

	writeManifest(t, "e2e-deploy.yaml", deployment(3, "two"))
	waitFor(t, "every replica replaced", func() (bool, error) {
		for _, pod := range []string{"e2e-deploy-0", "e2e-deploy-1", "e2e-deploy-2"} {
			out, ok := tryExec("default", pod, "web", "sh", "-c", "echo $GREETING")
			if !ok || out != "two" {
				return false, nil
			}
		}
		return true, nil
	})
	if fmt.Sprint(unitProps(t, r0)["InvocationID"]) == fmt.Sprint(first) {
		t.Error("replica 0 was not replaced")
	}
	// One at a time: each replica started after the previous one was ready.
	var last uint64
	for _, u := range []string{r0, r1, r2} {
		p := unitProps(t, u)
		start, ready := p["ExecMainStartTimestamp"].(uint64), p["ActiveEnterTimestamp"].(uint64)
		if start < last {
			t.Errorf("%s started before the previous replica was ready", u)
		}
		last = ready
	}

	writeManifest(t, "e2e-deploy.yaml", deployment(1, "two"))
	waitGone(t, r2)
	waitGone(t, r1)
	if activeState(r0) != "active" {
		t.Errorf("scaling down stopped replica 0 (%s)", activeState(r0))
	}
	os.Remove(filepath.Join(manifestDir, "e2e-deploy.yaml"))
	waitGone(t, r0)
}

// A Job's pod runs to completion, retried up to backoffLimit; a completed
// Job stays completed when its unit is gone (as after a reboot).
func TestJobCompletion(t *testing.T) {
	writeManifest(t, "e2e-job.yaml", `apiVersion: batch/v1
kind: Job
metadata: {name: e2e-job}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      volumes: [{name: state, emptyDir: {}}]
      containers:
      - name: once
        image: localhost/podunit/busybox:1.35
        volumeMounts: [{name: state, mountPath: /state}]
        # Fails the first time, succeeds the second.
        command: ["sh", "-c", "if [ -f /state/tried ]; then echo done; exit 0; fi; touch /state/tried; exit 1"]
---
apiVersion: batch/v1
kind: Job
metadata: {name: e2e-job-fails}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: always
        image: localhost/podunit/busybox:1.35
        command: ["sh", "-c", "exit 3"]
`)
	ok, bad := units.ServiceName("default", "e2e-job"), units.ServiceName("default", "e2e-job-fails")
	waitFor(t, "the Job completed and the other failed", func() (bool, error) {
		p, q := unitProps(t, ok), unitProps(t, bad)
		return p["ActiveState"] == "active" && p["SubState"] == "exited" && q["ActiveState"] == "failed", nil
	})
	if st := podState(t, "default", "e2e-job"); st.Status.Phase != "Succeeded" || st.Status.ContainerStatuses[0].RestartCount != 1 {
		t.Errorf("e2e-job: phase %s, restarts %d; want Succeeded after 1 retry", st.Status.Phase, st.Status.ContainerStatuses[0].RestartCount)
	}
	if st := podState(t, "default", "e2e-job-fails"); st.Status.Phase != "Failed" || st.Status.ContainerStatuses[0].RestartCount != 1 {
		t.Errorf("e2e-job-fails: phase %s, restarts %d; want Failed after backoffLimit 1", st.Status.Phase, st.Status.ContainerStatuses[0].RestartCount)
	}
	runSync(t) // records them
	systemctl(t, "stop", ok)
	systemctl(t, "reset-failed", bad)
	waitGone(t, ok)
	runSync(t)
	for _, u := range []string{ok, bad} {
		if s := activeState(u); s == "active" || s == "activating" {
			t.Errorf("%s ran again after its unit was gone (%s)", u, s)
		}
	}
	os.Remove(filepath.Join(manifestDir, "e2e-job.yaml"))
}

// User story: "I roll a Deployment to a version that crashes. The first
// replica to get it comes back to the old version, the others are never
// touched, and they stay that way until I change the manifest."
func TestDeploymentRolloutStopsAtTheFirstFailure(t *testing.T) {
	manifest := func(command string) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: e2e-roll}
spec:
  replicas: 3
  minReadySeconds: 3
  progressDeadlineSeconds: 20
  selector: {matchLabels: {app: e2e-roll}}
  template:
    metadata: {labels: {app: e2e-roll}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: localhost/podunit/busybox:1.35
        command: ["sh", "-c", %q]
`, command)
	}
	writeManifest(t, "e2e-roll.yaml", manifest("trap 'exit 0' TERM; sleep 3600 & wait"))
	var unitsOf []string
	invocations := map[string]string{}
	for i := range 3 {
		u := waitActive(t, "default", fmt.Sprintf("e2e-roll-%d", i))
		unitsOf = append(unitsOf, u)
	}
	generation := map[string]string{}
	for _, u := range unitsOf {
		invocations[u] = fmt.Sprint(unitProps(t, u)["InvocationID"])
		generation[u] = unitGeneration(t, u)
	}
	writeFile(t, "e2e-roll.yaml", manifest("echo broken; exit 1"))
	waitFor(t, "every replica shown RolledBack", func() (bool, error) {
		for i := range 3 {
			if statusWord(t, fmt.Sprintf("e2e-roll-%d", i)) != "RolledBack" {
				return false, nil
			}
		}
		return true, nil
	})
	touched := 0
	for _, u := range unitsOf {
		waitFor(t, u+" on its old generation", func() (bool, error) {
			return activeState(u) == "active" && unitGeneration(t, u) == generation[u], nil
		})
		if fmt.Sprint(unitProps(t, u)["InvocationID"]) != invocations[u] {
			touched++
		}
	}
	if touched != 1 {
		t.Errorf("%d replicas were replaced and rolled back, want 1: the rollout stops at the first failure", touched)
	}
	// Syncs leave them there.
	for range 2 {
		exec.Command("systemctl", "start", "podunit-sync.service").Run()
	}
	for _, u := range unitsOf {
		if g := unitGeneration(t, u); g != generation[u] {
			t.Errorf("after more syncs %s runs generation %s, want %s", u, g, generation[u])
		}
	}
}
