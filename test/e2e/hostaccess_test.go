//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// restrictHostAccess: all refuses a pod that reaches the host (here
// hostNetwork and a hostPath) and lets a pod that does not run; without it,
// the same pod runs, as the kubelet runs static pods.
func TestRestrictHostAccess(t *testing.T) {
	const config = "/etc/podunit/config.yaml"
	old, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.WriteFile(config, old, 0o644)
		exec.Command("systemctl", "start", "podunit-sync.service").Run()
	})
	if err := os.WriteFile(config, append(append([]byte{}, old...), "\nrestrictHostAccess: all\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	syncWithNewConfig(t)
	writeManifest(t, "e2e-host.yaml", `apiVersion: v1
kind: Pod
metadata: {name: e2e-host}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  volumes: [{name: v, hostPath: {path: /var/log}}]
  containers:
  - name: c
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    volumeMounts: [{name: v, mountPath: /host-log, readOnly: true}]
`)
	writeManifest(t, "e2e-nohost.yaml", webPod("e2e-nohost", "contained", 0))
	waitActive(t, "default", "e2e-nohost")
	waitFor(t, "the pod that reaches the host refused", func() (bool, error) {
		out, _ := exec.Command(podunitBin, "get", "pods").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "e2e-host ") && strings.Contains(line, "HostAccessForbidden") {
				return true, nil
			}
		}
		return false, nil
	})
	if st := activeState("pod-e2e-host.service"); st == "active" || st == "activating" {
		t.Fatalf("a refused pod was started (%s)", st)
	}
	pod := getPod(t, "default", "e2e-host")
	if !strings.Contains(pod.Status.Message, "spec.hostNetwork, spec.volumes[0].hostPath (/var/log)") {
		t.Errorf("status message %q", pod.Status.Message)
	}
	// Allowed again: the pod starts.
	if err := os.WriteFile(config, old, 0o644); err != nil {
		t.Fatal(err)
	}
	syncWithNewConfig(t)
	waitActive(t, "default", "e2e-host")
}
