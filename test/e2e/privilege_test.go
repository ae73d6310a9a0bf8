//go:build e2e

package e2e

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// curlAs gets path from the status socket as user, through curl run with
// that user's identity and groups (runuser), as a shell user would.
func curlAs(user, path string) (string, error) {
	out, err := exec.Command("runuser", "-u", user, "--", "curl", "-sS", "--fail-with-body",
		"--max-time", "5", "--unix-socket", "/run/podunit/status.sock", "http://localhost"+path).CombinedOutput()
	return string(out), err
}

// addUser makes a system user for the test, in groups, and removes it
// when the test ends.
func addUser(t *testing.T, name string, groups ...string) {
	t.Helper()
	args := []string{"--system", "--no-create-home", "--shell", "/bin/sh"}
	if len(groups) > 0 {
		args = append(args, "--groups", strings.Join(groups, ","))
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
}

// The status socket answers root and members of the podunit group, and
// refuses every other local user: the socket's mode and group, as the
// package installs them, are what keeps pod details (names, images,
// addresses) from them. The TCP read-only port is off until configured,
// and then listens on loopback only.
func TestStatusSocketPrivilege(t *testing.T) {
	addUser(t, "e2e-outsider")
	addUser(t, "e2e-member", "podunit")

	if out, err := curlAs("e2e-member", "/healthz"); err != nil || strings.TrimSpace(out) != "ok" {
		t.Errorf("a member of the podunit group: %v: %s", err, out)
	}
	out, err := curlAs("e2e-outsider", "/healthz")
	if err == nil {
		t.Errorf("a user outside the podunit group was served: %s", out)
	} else if !strings.Contains(out, "Permission denied") && !strings.Contains(out, "Couldn't connect") {
		t.Errorf("a user outside the podunit group: want a refused connection, got %v: %s", err, out)
	}
	t.Logf("outside the podunit group: %s", strings.TrimSpace(out))

	// No TCP port unless configured.
	listening := func() string {
		out, err := exec.Command("ss", "-Hltn", "sport = :10255").Output()
		if err != nil {
			t.Fatalf("ss: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	if l := listening(); l != "" {
		t.Errorf("port 10255 listens without readOnlyPort in config.yaml: %s", l)
	}
	withConfig(t, "readOnlyPort: 10255")
	systemctl(t, "restart", "podunit-status.service")
	t.Cleanup(func() { exec.Command("systemctl", "restart", "podunit-status.service").Run() })
	waitFor(t, "the read-only port", func() (bool, error) { return listening() != "", nil })
	for _, line := range strings.Split(listening(), "\n") {
		if f := strings.Fields(line); len(f) < 4 || !strings.HasPrefix(f[3], "127.0.0.1:") {
			t.Errorf("the read-only port listens beyond loopback: %s", line)
		}
	}
	if code, body, err := get("http://127.0.0.1:10255/healthz"); err != nil || code != 200 {
		t.Errorf("GET http://127.0.0.1:10255/healthz: %d %v %s", code, err, body)
	}
}

// `podunit serve` killed with SIGKILL: the pods do not notice, and the next
// request to the socket is answered by a new serve, with nobody's help.
func TestServeKilled(t *testing.T) {
	const name = "e2e-servekill"
	writeManifest(t, name+".yaml", webPod(name, "serve killed", 0))
	unit := waitActive(t, "default", name)
	podshimPID := unitProps(t, unit)["MainPID"].(uint32)
	if code, _ := statusAPI(t, "/pods"); code != 200 {
		t.Fatalf("GET /pods before the kill: %d", code)
	}
	pid := unitProps(t, "podunit-status.service")["MainPID"].(uint32)
	if pid == 0 {
		t.Fatal("podunit-status.service has no main process")
	}
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var body string
	waitFor(t, "GET /pods answered by a new serve", func() (bool, error) {
		code, b := statusAPI(t, "/pods")
		body = b
		p := unitProps(t, "podunit-status.service")
		return code == 200 && p["MainPID"].(uint32) != pid && p["ActiveState"] == "active", nil
	})
	t.Logf("served again %s after the kill", time.Since(killed).Round(time.Millisecond))
	if !strings.Contains(body, `"name":"`+name+`"`) {
		t.Errorf("the new serve does not list %s: %.300s", name, body)
	}
	if p := unitProps(t, unit); p["MainPID"].(uint32) != podshimPID || p["ActiveState"] != "active" {
		t.Errorf("the pod noticed the kill: %s is %v with podshim %v (was %d)", unit, p["ActiveState"], p["MainPID"], podshimPID)
	}
}
