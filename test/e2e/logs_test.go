//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/podunit/podunit/units"
)

// journalEntries returns the journal entries of unit with the given field
// matches, as JSON objects.
func journalEntries(t *testing.T, unit string, matches ...string) []map[string]any {
	t.Helper()
	args := append([]string{"--no-pager", "-o", "json", "-u", unit}, matches...)
	out, err := exec.Command("journalctl", args...).Output()
	if err != nil {
		t.Fatalf("journalctl %v: %v", args, err)
	}
	var entries []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journal entry %q: %v", line, err)
		}
		entries = append(entries, e)
	}
	return entries
}

func countMessage(entries []map[string]any, msg string) int {
	n := 0
	for _, e := range entries {
		if e["MESSAGE"] == msg {
			n++
		}
	}
	return n
}

// Every line a container writes reaches the journal under the pod's unit,
// with the pod's and container's fields; the runtime's own log file stays in
// the kubelet's layout; a podshim restart neither loses nor repeats lines.
func TestContainerLogsInJournal(t *testing.T) {
	const name = "e2e-logs"
	writeManifest(t, "e2e-logs.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-logs
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: talker
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c"]
    args:
    - |
      echo hello stdout
      echo oops stderr >&2
      trap 'echo bye; exit 0' TERM
      i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 1; done
  - name: quiet
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`)
	unit := waitActive(t, "default", name)
	st := podState(t, "default", name)

	waitFor(t, "stdout and stderr in the journal", func() (bool, error) {
		e := journalEntries(t, unit, "CONTAINER_NAME=talker")
		return countMessage(e, "hello stdout") == 1 && countMessage(e, "oops stderr") == 1, nil
	})
	for _, e := range journalEntries(t, unit, "CONTAINER_NAME=talker") {
		if e["MESSAGE"] != "hello stdout" && e["MESSAGE"] != "oops stderr" {
			continue
		}
		wantStream, wantPrio := "stdout", "6"
		if e["MESSAGE"] == "oops stderr" {
			wantStream, wantPrio = "stderr", "3"
		}
		for field, want := range map[string]string{
			"_SYSTEMD_UNIT": unit, "SYSLOG_IDENTIFIER": "talker", "POD_NAME": name, "POD_NAMESPACE": "default",
			"POD_UID": st.UID, "STREAM": wantStream, "PRIORITY": wantPrio, "CONTAINER_RESTART_COUNT": "0",
		} {
			if e[field] != want {
				t.Errorf("%q: %s = %v, want %s", e["MESSAGE"], field, e[field], want)
			}
		}
	}
	if n := len(journalEntries(t, unit, "CONTAINER_NAME=quiet")); n != 0 {
		t.Errorf("the quiet container has %d journal lines", n)
	}

	// The runtime's log file, in the kubelet's layout.
	logFile := filepath.Join("/var/log/pods", "default_"+name+"_"+st.UID, "talker", "0.log")
	if b, err := os.ReadFile(logFile); err != nil || !strings.Contains(string(b), " stdout F hello stdout\n") {
		t.Errorf("runtime log %s: %v\n%s", logFile, err, b)
	}

	// A podshim restart: every tick reaches the journal exactly once.
	pid := unitProps(t, unit)["MainPID"].(uint32)
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new podshim", func() (bool, error) {
		p := unitProps(t, unit)
		return p["MainPID"].(uint32) != pid && p["ActiveState"] == "active", nil
	})
	waitFor(t, "ticks after the restart", func() (bool, error) {
		return countMessage(journalEntries(t, unit, "CONTAINER_NAME=talker"), "tick 12") == 1, nil
	})
	e := journalEntries(t, unit, "CONTAINER_NAME=talker")
	for _, msg := range []string{"hello stdout", "tick 1", "tick 5", "tick 11"} {
		if n := countMessage(e, msg); n != 1 {
			t.Errorf("%q is in the journal %d times, want once", msg, n)
		}
	}

	// What a container says while it stops is kept too.
	os.Remove(filepath.Join(manifestDir, "e2e-logs.yaml"))
	waitGone(t, units.ServiceName("default", name))
	if n := countMessage(journalEntries(t, unit, "CONTAINER_NAME=talker"), "bye"); n != 1 {
		t.Errorf("the container's last words are in the journal %d times", n)
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(logFile))); !os.IsNotExist(err) {
		t.Errorf("the pod's log directory is left after delete: %v", err)
	}
}

// containerLogMaxSize and containerLogMaxFiles in config.yaml bound a
// chatty container's log files on disk, while every line still reaches the
// journal.
func TestLogRotationFromConfig(t *testing.T) {
	const name, config = "e2e-rotate", "/etc/podunit/config.yaml"
	old, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(config, old, 0o644) })
	text := regexp.MustCompile(`(?m)^#?\s*containerLog(MaxSize|MaxFiles):.*$`).ReplaceAllString(string(old), "")
	text += "\ncontainerLogMaxSize: 16Ki\ncontainerLogMaxFiles: 2\n"
	if err := os.WriteFile(config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	syncWithNewConfig(t)
	writeManifest(t, "e2e-rotate.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-rotate
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: chatty
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo \"chatty line $i ................................................\"; i=$((i+1)); [ $((i % 100)) -ne 0 ] || usleep 20000; done; trap 'exit 0' TERM; sleep 3600 & wait"]
`)
	unit := waitActive(t, "default", name)
	if args := unitProps(t, unit)["ExecStart"]; !strings.Contains(fmt.Sprint(args), "--log-max-size 16384 --log-max-files 2") {
		t.Errorf("podshim not given the configured rotation: %v", args)
	}
	st := podState(t, "default", name)
	// The lines of this container, not of an earlier test's pod of the
	// same name (go test -count).
	id := strings.TrimPrefix(st.Status.ContainerStatuses[0].ContainerID, containerIDPrefix())
	waitFor(t, "all 3000 lines in the journal, once each", func() (bool, error) {
		out, err := exec.Command("journalctl", "--no-pager", "-o", "cat", "-u", unit, "CONTAINER_ID="+id).Output()
		if err != nil {
			return false, err
		}
		return chattyLines(string(out))
	})
	dir := filepath.Join("/var/log/pods", fmt.Sprintf("default_%s_%s", name, st.UID), "chatty")
	// Bursts of 100 lines (10 KB within a millisecond) 20 ms apart: the
	// log is rotated while the container writes, and a burst may overshoot
	// before the rotation, as with the kubelet; the file count is the
	// bound, and the current file starts again small.
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 2 {
		t.Errorf("log files %v: want the current one and one rotated (containerLogMaxFiles 2)", files)
	}
	if fi, err := os.Stat(filepath.Join(dir, "0.log")); err != nil || fi.Size() > 16<<10 {
		t.Errorf("current log file after rotation: %v, %v", fi, err)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-rotate.yaml"))
	waitGone(t, unit)
}

// chattyLines reports whether the journal text holds each of the chatty
// container's 3000 lines exactly once, and if not, which are missing or
// doubled.
func chattyLines(journal string) (bool, error) {
	seen := make([]int, 3000)
	var mangled []string
	for _, l := range strings.Split(strings.TrimSuffix(journal, "\n"), "\n") {
		var i int
		if _, err := fmt.Sscanf(l, "chatty line %d", &i); err == nil && i >= 0 && i < len(seen) &&
			l == fmt.Sprintf("chatty line %d ................................................", i) {
			seen[i]++
		} else if l != "" {
			mangled = append(mangled, l)
		}
	}
	if len(mangled) > 0 {
		return false, fmt.Errorf("lines not as the container wrote them: %q", mangled[:min(len(mangled), 10)])
	}
	var missing, doubled []int
	for i, n := range seen {
		switch {
		case n == 0:
			missing = append(missing, i)
		case n > 1:
			doubled = append(doubled, i)
		}
	}
	if len(missing) == 0 && len(doubled) == 0 {
		return true, nil
	}
	return false, fmt.Errorf("%d lines missing (first %v), %d doubled (first %v)",
		len(missing), missing[:min(len(missing), 10)], len(doubled), doubled[:min(len(doubled), 10)])
}
