//go:build e2e

// Package e2e holds podunit's end-to-end tests. They run as root inside the
// project's test bed (test/testbed), where podunit is installed and
// podunit.path is enabled, against the real systemd manager, journald,
// containerd (or CRI-O: `make test-e2e RUNTIME=crio`), runc and CNI plugins
// there: `make test-e2e`.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

const (
	// podunitBin is the CLI as `make install` put it in the test bed (not
	// on every PATH: CI runs with a minimal one).
	podunitBin  = "/usr/local/bin/podunit"
	manifestDir = "/etc/podunit/manifests"
	specDir     = "/run/podunit/specs"
	// waitTimeout bounds every wait; generous, since a stop waits for a
	// grace period and a podshim restart for RestartSec.
	waitTimeout = 90 * time.Second
)

var (
	systemd *dbus.Conn
	cri     *criclient.Client
	// runtimeName is the test bed's container runtime, "containerd" or "crio"
	// (testbed.sh keeps it in the test bed's directory).
	runtimeName = testbedRuntime()
)

const crioEndpoint = "unix:///run/crio/crio.sock"

func testbedRuntime() string {
	b, err := os.ReadFile("/run/podunit-testbed/runtime")
	if err != nil {
		return "containerd"
	}
	return strings.TrimSpace(string(b))
}

// criEndpoint is the runtime's CRI socket.
func criEndpoint() string {
	if onCRIO() {
		return crioEndpoint
	}
	return criclient.DefaultEndpoint
}

// onCRIO reports whether the test bed runs CRI-O.
func onCRIO() bool { return runtimeName == "crio" }

// runtimeUnit is the runtime's service in the test bed.
func runtimeUnit() string {
	if onCRIO() {
		return "crio.service"
	}
	return "containerd.service"
}

// containerIDPrefix is the runtime's scheme in a container status's ID, as
// the kubelet writes it (the runtime's name from CRI Version).
func containerIDPrefix() string {
	if onCRIO() {
		return "cri-o://"
	}
	return "containerd://"
}

// hostPortAddr is an address of this machine where a pod's hostPort
// answers. containerd publishes hostPorts with the CNI portmap plugin,
// which reaches them from 127.0.0.1 too; CRI-O publishes them with its own
// nftables rules (table crio-hostports; it never hands port mappings to
// CNI), which DNAT traffic to the machine's addresses but not from
// loopback: there the machine's address on the pod network, the bridge's
// (packaging/cni/10-podunit.conflist), is one a client on the machine uses.
func hostPortAddr() string {
	if onCRIO() {
		return "10.88.0.1"
	}
	return "127.0.0.1"
}

// crioStore is CRI-O's image store in the test bed (test/testbed/crio.conf),
// in skopeo's containers-storage syntax.
const crioStore = "containers-storage:[overlay@/var/lib/containers/storage+/run/containers/storage]"

// tagImage gives the runtime's image named from the name to as well, as an
// import of the same image under another name would, and removes that name
// when the test ends.
func tagImage(t *testing.T, from, to string) {
	t.Helper()
	cmd := exec.Command("ctr", "-n", "k8s.io", "images", "tag", from, to)
	if onCRIO() {
		cmd = exec.Command("skopeo", "copy", "-q", crioStore+from, crioStore+to)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	t.Cleanup(func() {
		if onCRIO() {
			// CRI-O's RemoveImage of one of an image's names removes that
			// name; containerd's removes the image with all its names.
			cri.RemoveImage(context.Background(), &runtimeapi.ImageSpec{Image: to})
			return
		}
		exec.Command("ctr", "-n", "k8s.io", "images", "rm", to).Run()
	})
}

// skipOnCRIO skips a test about containerd itself, saying what differs.
func skipOnCRIO(t *testing.T, why string) {
	t.Helper()
	if onCRIO() {
		t.Skip("CRI-O: " + why)
	}
}

func TestMain(m *testing.M) {
	// /run/podunit-testbed exists only inside a test bed.
	if _, err := os.Stat("/run/podunit-testbed"); err != nil && os.Getenv("PODUNIT_E2E") == "" {
		fmt.Fprintln(os.Stderr, "e2e: run inside the test bed (make test-e2e), or set PODUNIT_E2E=1 on a machine you can spare")
		os.Exit(2)
	}
	ctx := context.Background()
	var err error
	if systemd, err = dbus.NewSystemConnectionContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: systemd:", err)
		os.Exit(1)
	}
	if cri, err = criclient.New(criEndpoint()); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: CRI:", err)
		os.Exit(1)
	}
	code := m.Run()
	systemd.Close()
	cri.Close()
	os.Exit(code)
}

// writeManifest puts a manifest into the manifest directory the way a careful
// tool does (write a hidden temporary file, rename it), and removes it and
// waits for its pod to go when the test ends.
func writeManifest(t *testing.T, file, content string) {
	t.Helper()
	writeFile(t, file, content)
	t.Cleanup(func() { os.Remove(filepath.Join(manifestDir, file)) })
}

// writeFile writes a manifest as a careful tool does: a hidden temporary
// file renamed into place.
func writeFile(t *testing.T, file, content string) {
	t.Helper()
	tmp := filepath.Join(manifestDir, "."+file+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(manifestDir, file)); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it returns true or the wait times out.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	waitForWithin(t, waitTimeout, what, cond)
}

// waitForWithin is waitFor with a bound of its own, for what takes longer
// than any wait should (a schedule's next minute).
func waitForWithin(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)\n%s", timeout, what, lastErr, diagnostics())
}

// diagnostics is what a failing wait prints: the pod units and the journal of
// the sync and the pods.
func diagnostics() string {
	out, _ := exec.Command("sh", "-c",
		"systemctl list-units --all --no-pager 'pod-*' 'cronjob-*' podunit-sync.service; "+
			"journalctl --no-pager -n 60 -u podunit-sync.service -u 'pod-*' -u 'cronjob-*'").CombinedOutput()
	return string(out)
}

func unitProps(t *testing.T, unit string) map[string]any {
	t.Helper()
	props, err := systemd.GetAllPropertiesContext(context.Background(), unit)
	if err != nil {
		t.Fatalf("properties of %s: %v", unit, err)
	}
	return props
}

func activeState(unit string) string {
	p, err := systemd.GetUnitPropertyContext(context.Background(), unit, "ActiveState")
	if err != nil {
		return ""
	}
	return strings.Trim(p.Value.String(), `"`)
}

// waitActive waits until the pod's unit is active: podshim sent READY=1.
func waitActive(t *testing.T, namespace, name string) string {
	t.Helper()
	unit := units.ServiceName(namespace, name)
	waitFor(t, unit+" active", func() (bool, error) { return activeState(unit) == "active", nil })
	return unit
}

// waitGone waits until the pod's unit no longer exists.
func waitGone(t *testing.T, unit string) {
	t.Helper()
	waitFor(t, unit+" gone", func() (bool, error) {
		list, err := systemd.ListUnitsByNamesContext(context.Background(), []string{unit})
		if err != nil {
			return false, err
		}
		return len(list) == 0 || list[0].LoadState == "not-found", nil
	})
}

func sandboxes(t *testing.T, namespace, name string) []*runtimeapi.PodSandbox {
	t.Helper()
	list, err := cri.ListPodSandbox(context.Background(), &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{
		podshim.LabelPodNamespace: namespace, podshim.LabelPodName: name,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func containers(t *testing.T, sandboxID string) []*runtimeapi.Container {
	t.Helper()
	list, err := cri.ListContainers(context.Background(), &runtimeapi.ContainerFilter{PodSandboxId: sandboxID})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func podState(t *testing.T, namespace, name string) *podshim.State {
	t.Helper()
	st, err := podshim.ReadState(podshim.DefaultStateDir, namespace, name)
	if err != nil {
		t.Fatalf("pod state: %v", err)
	}
	return st
}

// get fetches url and returns the status code and body.
func get(url string) (int, string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// journal returns the messages of a unit since the test started.
func journal(t *testing.T, unit string, since time.Time) string {
	t.Helper()
	out, err := exec.Command("journalctl", "--no-pager", "-o", "cat", "-u", unit,
		"--since", since.Add(-time.Second).Format("2006-01-02 15:04:05")).CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl: %v\n%s", err, out)
	}
	return string(out)
}

// webPod is a busybox httpd pod that serves greeting and stops on SIGTERM.
func webPod(name, greeting string, hostPort int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels:
    app: %s
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: web
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c"]
    args:
    - |
      mkdir -p /www && echo "$(GREETING)" > /www/index.html
      httpd -f -p 80 -h /www & trap 'kill $!; exit 0' TERM; wait
    env:
    - name: GREETING
      value: %q
    ports:
    - containerPort: 80
      hostPort: %d
`, name, name, greeting, hostPort)
}

// freshDir removes path now and when the test ends.
func freshDir(t *testing.T, path string) {
	t.Helper()
	os.RemoveAll(path)
	t.Cleanup(func() { os.RemoveAll(path) })
}

// systemctl runs systemctl with args and fails the test if it fails.
func systemctl(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("systemctl", args...).CombinedOutput(); err != nil {
		t.Fatalf("systemctl %v: %v\n%s", args, err, out)
	}
}

// syncWithNewConfig returns once a sync that read the configuration as it
// is now has run, so that the next sync (the one a manifest written next
// triggers) reads it too: `systemctl start` joins a sync already under way,
// which read the old configuration, so the second start is a sync of its
// own.
func syncWithNewConfig(t *testing.T) {
	t.Helper()
	for range 2 {
		// Exit status 3 (some manifest invalid) fails the start; the sync ran.
		exec.Command("systemctl", "start", "podunit-sync.service").Run()
	}
}

// podunitConfig is the test bed's configuration file.
const podunitConfig = "/etc/podunit/config.yaml"

// withConfig adds lines to config.yaml and has a sync read it. It returns
// restore, which puts the file back and has a sync read that; restore also
// runs when the test ends.
func withConfig(t *testing.T, lines string) (restore func()) {
	t.Helper()
	old, err := os.ReadFile(podunitConfig)
	if err != nil {
		t.Fatal(err)
	}
	restore = func() {
		os.WriteFile(podunitConfig, old, 0o644)
		syncWithNewConfig(t)
	}
	t.Cleanup(restore)
	if err := os.WriteFile(podunitConfig, append(append([]byte{}, old...), "\n"+lines+"\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	syncWithNewConfig(t)
	return restore
}

// waitStatusWord waits until `podunit get pods` shows pod with word in its
// row (its STATUS: NodeAffinity, HostAccessForbidden, …).
func waitStatusWord(t *testing.T, pod, word string) {
	t.Helper()
	waitFor(t, pod+" shown "+word, func() (bool, error) {
		out, _ := exec.Command(podunitBin, "get", "pods").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, pod+" ") && strings.Contains(line, word) {
				return true, nil
			}
		}
		return false, nil
	})
}
