//go:build e2e

package e2e

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

// smallDisk puts podunit's state (/var/lib/podunit) and the pods' logs
// (/var/log/pods) on one small filesystem of their own, as a box with a
// small data partition has them, with what they held copied over; it is
// taken away, and the old directories are back, when the test ends. It
// returns the mount point.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	disk := "/run/e2e-disk"
	if err := os.MkdirAll(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("mount", "-t", "tmpfs", "-o", "size="+size+",mode=755", "e2e-disk", disk)
	t.Cleanup(func() { exec.Command("umount", "-l", disk).Run() })
	for _, d := range []string{"/var/lib/podunit", podshim.DefaultLogRoot} {
		copy := filepath.Join(disk, filepath.Base(d))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		run("cp", "-a", d+"/.", copy+"/")
		run("mount", "--bind", copy, d)
		t.Cleanup(func() { exec.Command("umount", "-l", d).Run() })
	}
	return disk
}

// fill writes a file until the filesystem has no space left, and returns a
// func that removes it.
func fill(t *testing.T, dir string) func() {
	t.Helper()
	path := filepath.Join(dir, "e2e-filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 64<<10)
	for {
		if _, err = f.Write(block); err != nil {
			break
		}
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling %s: %v", dir, err)
	}
	return func() { os.Remove(path) }
}

// Disk full where podunit keeps its state and the pods' logs: the pod
// running keeps running (its container too, not even blocked on its
// output), a new pod says clearly why it cannot start, no state file is
// corrupt (every write is atomic), and once there is space again the new
// pod starts without a hand.
func TestDiskFull(t *testing.T) {
	waitFor(t, "no pod of another test running", func() (bool, error) {
		list, err := systemd.ListUnitsByPatternsContext(t.Context(), []string{"active", "activating", "deactivating"}, []string{"pod-*"})
		return err == nil && len(list) == 0, err
	})
	disk := smallDisk(t, "16m")

	// A chatty pod that counts in its own filesystem.
	writeManifest(t, "e2e-disk-a.yaml", `apiVersion: v1
kind: Pod
metadata: {name: e2e-disk-a}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo line $i; echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done"]
`)
	unitA := waitActive(t, "default", "e2e-disk-a")
	pidA := unitProps(t, unitA)["MainPID"].(uint32)
	containerA := runningContainer(t, "default", "e2e-disk-a", "c")
	count := func() int {
		out := mustExec(t, "e2e-disk-a", "c", "cat", "/tmp/count")
		n, _ := strconv.Atoi(strings.TrimSpace(out))
		return n
	}

	free := fill(t, disk)
	defer free()
	full := time.Now()
	c0 := count()

	const b = "e2e-disk-b"
	writeManifest(t, b+".yaml", webPod(b, "after the disk", 0))
	unitB := units.ServiceName("default", b)
	waitFor(t, "the new pod to say the disk is full", func() (bool, error) {
		return strings.Contains(journal(t, unitB, full), "no space left on device"), nil
	})
	if out, _ := podunitOut("describe", "pod", b); !strings.Contains(out, "no space left on device") {
		t.Errorf("podunit describe pod %s does not say why it does not start:\n%s", b, out)
	} else {
		t.Logf("disk full, describe says: %s", lineWith(out, "no space left on device"))
	}

	time.Sleep(2 * time.Second)
	if c1 := count(); c1 <= c0 {
		t.Errorf("the running container stopped counting while the disk was full (%d, then %d)", c0, c1)
	}
	if p := unitProps(t, unitA); p["ActiveState"] != "active" || p["MainPID"].(uint32) != pidA {
		t.Errorf("the running pod was disturbed: %v, podshim %v (was %d)", p["ActiveState"], p["MainPID"], pidA)
	}
	if id := runningContainer(t, "default", "e2e-disk-a", "c"); id != containerA {
		t.Errorf("the running pod's container was replaced: %s, was %s", id, containerA)
	}
	if out, code := podunitOut("get", "pods"); code != 0 || !strings.Contains(out, "e2e-disk-a") {
		t.Errorf("podunit get pods with the disk full: exit %d\n%s", code, out)
	}
	checkStateFiles(t)

	free()
	freed := time.Now()
	waitActive(t, "default", b)
	t.Logf("the new pod ready %s after space came back", time.Since(freed).Round(time.Millisecond))
	if p := unitProps(t, unitA); p["MainPID"].(uint32) != pidA {
		t.Errorf("the running pod was restarted after all")
	}
	checkStateFiles(t)

	os.Remove(filepath.Join(manifestDir, "e2e-disk-a.yaml"))
	os.Remove(filepath.Join(manifestDir, b+".yaml"))
	waitGone(t, unitA)
	waitGone(t, unitB)
}

// atomicTemp is the name of a temporary file an atomic write leaves when it
// fails and does not clean up (atomicfile: .<name>.<random digits>).
var atomicTemp = regexp.MustCompile(`^\..+\.[0-9]+$`)

// checkStateFiles parses every JSON file podunit keeps: none may be cut
// short or empty, and no failed write may leave its temporary file.
func checkStateFiles(t *testing.T) {
	t.Helper()
	for _, root := range []string{"/var/lib/podunit", "/run/podunit"} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && atomicTemp.MatchString(d.Name()) {
				t.Errorf("%s: a temporary file a failed write left", path)
			}
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			if !json.Valid(b) {
				t.Errorf("%s is not valid JSON (%d bytes): a write was not atomic", path, len(b))
			}
			return nil
		})
	}
}
