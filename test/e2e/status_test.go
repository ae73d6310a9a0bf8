//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// unixGet fetches path from the status socket.
func unixGet(t *testing.T, path string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", "/run/podunit/status.sock")
		},
	}}
	resp, err := c.Get("http://localhost" + path)
	if err != nil {
		t.Fatalf("GET %s on the status socket: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The status socket answers /pods as the kubelet's read-only API does (it
// decodes into a v1 PodList), with the pods' IPs and an invalid manifest's
// condition; readOnlyPort serves the same over TCP, with /healthz?verbose.
func TestStatusAPI(t *testing.T) {
	const name, config = "e2e-status", "/etc/podunit/config.yaml"
	writeManifest(t, "e2e-status.yaml", webPod(name, "status", 0))
	waitActive(t, "default", name)
	ip := podState(t, "default", name).Status.PodIP

	code, body := unixGet(t, "/pods")
	var list corev1.PodList
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || list.Kind != "PodList" {
		t.Fatalf("/pods: %d %v\n%s", code, err, body)
	}
	var found *corev1.Pod
	for i := range list.Items {
		if list.Items[i].Name == name {
			found = &list.Items[i]
		}
	}
	if found == nil || found.Status.PodIP != ip || found.Status.Phase != corev1.PodRunning || len(found.Status.ContainerStatuses) != 1 ||
		!strings.HasPrefix(found.Status.ContainerStatuses[0].ContainerID, containerIDPrefix()) {
		t.Fatalf("pod %s in /pods: %+v", name, found)
	}

	// The status survives restarts of the status service, of podshim and of
	// the runtime: the same pod, IP and container.
	cid := found.Status.ContainerStatuses[0].ContainerID
	unit := "pod-" + name + ".service"
	systemctl(t, "restart", "podunit-status.service")
	systemctl(t, "kill", "--signal=SIGKILL", "--kill-who=main", unit)
	systemctl(t, "restart", runtimeUnit())
	waitFor(t, "the pod again in /pods after the restarts", func() (bool, error) {
		_, body := unixGet(t, "/pods/default/"+name)
		var p corev1.Pod
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			return false, err
		}
		return p.Status.Phase == corev1.PodRunning && activeState(unit) == "active" && len(p.Status.ContainerStatuses) == 1 &&
			p.Status.ContainerStatuses[0].ContainerID == cid && p.Status.ContainerStatuses[0].Ready && p.Status.PodIP == ip, nil
	})

	// An invalid edit: still running, on its last good spec, and the API says so.
	writeManifest(t, "e2e-status.yaml", strings.Replace(webPod(name, "status", 0), "containerPort:", "containerPrt:", 1))
	runSync(t)
	if _, body := unixGet(t, "/pods/default/"+name); !strings.Contains(body, `"type":"podunit.io/ManifestValid","status":"False","lastProbeTime":null,"lastTransitionTime":null,"reason":"InvalidManifest"`) {
		t.Errorf("no InvalidManifest condition:\n%s", body)
	}

	old, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.WriteFile(config, old, 0o644)
		systemctl(t, "restart", "podunit-status.service")
	})
	os.WriteFile(config, append(append([]byte{}, old...), "\nreadOnlyPort: 10255\n"...), 0o644)
	systemctl(t, "restart", "podunit-status.service")
	waitFor(t, "readOnlyPort 10255 answering", func() (bool, error) {
		code, body, err := get("http://localhost:10255/healthz?verbose")
		return err == nil && code == 200 && body == "[+]ping ok\n[+]runtime ok\n[+]syncloop ok\nhealthz check passed\n", err
	})
	if code, body, err := get("http://localhost:10255/pods"); err != nil || code != 200 || !strings.Contains(body, `"podIP":"`+ip+`"`) {
		t.Errorf("http://localhost:10255/pods: %d %v", code, err)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-status.yaml"))
}

// podunit get pods, logs and restart against real pods.
func TestCLI(t *testing.T) {
	const name = "e2e-cli"
	writeManifest(t, "e2e-cli.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-cli
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: talker
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "echo hello from the cli test; trap 'exit 0' TERM; sleep 3600 & wait"]
  - name: quiet
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`)
	unit := waitActive(t, "default", name)
	podunit := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(podunitBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("podunit %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	ip := podState(t, "default", name).Status.PodIP
	if out := podunit("get", "pods", "-o", "wide"); !regexp.MustCompile(`(?m)^e2e-cli\s+2/2\s+Running\s+0\s+\S+\s+` + regexp.QuoteMeta(ip) + `\s+pod-e2e-cli.service\s`).MatchString(out) {
		t.Errorf("get pods -o wide:\n%s", out)
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(podunit("get", "pods", name, "-o", "json")), &list); err != nil || len(list.Items) != 1 {
		t.Errorf("get pods -o json: %v %v", err, list.Items)
	}
	waitFor(t, "the talker's line in podunit logs", func() (bool, error) {
		out, err := exec.Command(podunitBin, "logs", name, "-c", "talker").CombinedOutput()
		return strings.TrimSpace(string(out)) == "hello from the cli test", err
	})
	before := fmt.Sprint(unitProps(t, unit)["InvocationID"])
	if out := podunit("restart", name); !strings.Contains(out, "pod/e2e-cli restarted") {
		t.Errorf("restart: %s", out)
	}
	if after := fmt.Sprint(unitProps(t, unit)["InvocationID"]); after == before || activeState(unit) != "active" {
		t.Errorf("restart did not restart the pod: %s → %s, %s", before, after, activeState(unit))
	}
	os.Remove(filepath.Join(manifestDir, "e2e-cli.yaml"))
	waitGone(t, unit)
}
