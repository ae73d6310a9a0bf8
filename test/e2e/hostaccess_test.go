//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// restrictHostAccess: all refuses a pod that reaches the host (here
// hostNetwork and a hostPath) and lets a pod that does not run; without it,
// the same pod runs, as the kubelet runs static pods.
func TestRestrictHostAccess(t *testing.T) {
	restore := withConfig(t, "restrictHostAccess: all")
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
	waitStatusWord(t, "e2e-host", "HostAccessForbidden")
	if st := activeState("pod-e2e-host.service"); st == "active" || st == "activating" {
		t.Fatalf("a refused pod was started (%s)", st)
	}
	pod := getPod(t, "default", "e2e-host")
	if !strings.Contains(pod.Status.Message, "spec.hostNetwork, spec.volumes[0].hostPath (/var/log)") {
		t.Errorf("status message %q", pod.Status.Message)
	}
	// Allowed again: the pod starts.
	restore()
	waitActive(t, "default", "e2e-host")
}
