//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/units"
)

// An edit that makes a manifest invalid keeps the pod running on its last
// good spec, with the error in the sync's journal; an editor's backup file
// next to it is not run; removing the manifest stops the pod.
func TestInvalidEditKeepsPodAndBackupsAreIgnored(t *testing.T) {
	const name = "e2e-keep"
	start := time.Now()
	good := webPod(name, "kept", 18085)
	writeManifest(t, "e2e-keep.yaml", good)
	unit := waitActive(t, "default", name)
	before := unitProps(t, unit)

	// A typo, then the editor's backup of the old file (another pod name, so
	// running it would show).
	writeManifest(t, "e2e-keep.yaml", strings.Replace(good, "containerPort:", "containerPrt:", 1))
	backup := strings.Replace(good, "name: "+name, "name: e2e-backup", 1)
	writeManifest(t, "e2e-keep.yaml~", backup)
	writeManifest(t, ".e2e-keep.yaml.swp", backup)
	runSync(t)

	j := journal(t, "podunit-sync.service", start)
	for _, want := range []string{
		"e2e-keep.yaml:21: spec.containers[0].ports[0].containerPrt: unknown field",
		"pod default/e2e-keep keeps running on its last good spec",
	} {
		if !strings.Contains(j, want) {
			t.Errorf("the sync's journal lacks %q:\n%s", want, j)
		}
	}
	after := unitProps(t, unit)
	if after["ActiveState"] != "active" || fmt.Sprint(after["InvocationID"]) != fmt.Sprint(before["InvocationID"]) {
		t.Errorf("the pod was disturbed by an invalid edit: %v → %v", before["InvocationID"], after["InvocationID"])
	}
	if code, body, err := get("http://" + hostPortAddr() + ":18085/"); code != 200 || strings.TrimSpace(body) != "kept" {
		t.Errorf("the kept pod does not answer: %d %q %v", code, body, err)
	}
	if s := activeState(units.ServiceName("default", "e2e-backup")); s != "" && s != "inactive" {
		t.Errorf("a backup file runs as a pod (%s)", s)
	}

	os.Remove(filepath.Join(manifestDir, "e2e-keep.yaml"))
	waitGone(t, unit)
}

// vim's save sequence (a test file, the original renamed to a backup, the
// new file written, the backup removed) is one change: the pod is replaced
// exactly once and never stopped as if its manifest were gone. The pickup
// latency, from the rename of a new manifest to its unit, is reported.
func TestEditorSaveSequenceIsOneChange(t *testing.T) {
	const name = "e2e-vim"
	path := filepath.Join(manifestDir, "e2e-vim.yaml")
	t.Cleanup(func() { os.Remove(path) })

	begin := time.Now()
	writeManifest(t, "e2e-vim.yaml", webPod(name, "one", 0))
	unit := units.ServiceName("default", name)
	waitFor(t, unit+" created", func() (bool, error) { s := activeState(unit); return s == "activating" || s == "active", nil })
	t.Logf("pickup: %s from the manifest's rename to its unit", time.Since(begin).Round(time.Millisecond))
	waitActive(t, "default", name)
	first := unitProps(t, unit)["InvocationID"]
	// Counts of the sync's reports about the pod so far (journalctl's
	// --since has a resolution of seconds: count, then compare).
	count := func(what string) int { return strings.Count(journal(t, "podunit-sync.service", begin), what+" "+unit) }
	started, stopped := count("started"), count("stopping")

	steps := []func() error{
		func() error { return os.WriteFile(filepath.Join(manifestDir, "4913"), nil, 0o644) },
		func() error { return os.Remove(filepath.Join(manifestDir, "4913")) },
		func() error { return os.Rename(path, path+"~") },
		func() error { return os.WriteFile(path, []byte(webPod(name, "two", 0)), 0o644) },
		func() error { return os.Remove(path + "~") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		// vim's pace when each write is fsync'ed on a busy disk; a sync
		// reading the directory between the rename and the write would
		// see the manifest gone.
		time.Sleep(80 * time.Millisecond)
	}
	waitFor(t, "the edited pod running", func() (bool, error) {
		p, err := systemd.GetAllPropertiesContext(t.Context(), unit)
		return err == nil && p["ActiveState"] == "active" && fmt.Sprint(p["InvocationID"]) != fmt.Sprint(first), nil
	})
	time.Sleep(2 * time.Second) // let any late sync finish
	if n := count("replacing"); n != 1 {
		t.Errorf("%s replaced %d times, want once:\n%s", unit, n, journal(t, "podunit-sync.service", begin))
	}
	if count("started") != started || count("stopping") != stopped {
		t.Errorf("the save sequence stopped or restarted the pod as if its manifest were gone:\n%s", journal(t, "podunit-sync.service", begin))
	}
	os.Remove(path)
	waitGone(t, unit)
}

// podunit.io/after: a pod starts only once the pods it names are ready,
// and they can still be replaced while it runs.
func TestPodOrderingAnnotation(t *testing.T) {
	db := `apiVersion: v1
kind: Pod
metadata:
  name: e2e-db
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: db
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3; touch /tmp/ready; sleep 3600 & wait"]
    readinessProbe:
      exec: {command: ["test", "-f", "/tmp/ready"]}
      periodSeconds: 1
`
	web := strings.Replace(webPod("e2e-after", "after", 0), "  labels:", "  annotations: {podunit.io/after: e2e-db}\n  labels:", 1)
	writeManifest(t, "e2e-after.yaml", web) // first in name order: its unit is created first
	writeManifest(t, "e2e-db.yaml", db)
	webUnit, dbUnit := waitActive(t, "default", "e2e-after"), waitActive(t, "default", "e2e-db")
	dbReady := unitProps(t, dbUnit)["ActiveEnterTimestamp"].(uint64)
	webStart := unitProps(t, webUnit)["ExecMainStartTimestamp"].(uint64)
	if webStart < dbReady {
		t.Errorf("e2e-after's podshim started %d µs before e2e-db was ready", dbReady-webStart)
	}
	// e2e-db can be replaced while e2e-after runs: no ordering dependency
	// between their units keeps e2e-db's old generation loaded.
	first := fmt.Sprint(unitProps(t, dbUnit)["InvocationID"])
	writeManifest(t, "e2e-db.yaml", strings.Replace(db, "name: db\n", "name: db\n    env: [{name: G, value: two}]\n", 1))
	waitFor(t, "e2e-db replaced while e2e-after runs", func() (bool, error) {
		p, err := systemd.GetAllPropertiesContext(t.Context(), dbUnit)
		return err == nil && p["ActiveState"] == "active" && fmt.Sprint(p["InvocationID"]) != first, nil
	})
	os.Remove(filepath.Join(manifestDir, "e2e-after.yaml"))
	os.Remove(filepath.Join(manifestDir, "e2e-db.yaml"))
	waitGone(t, webUnit)
	waitGone(t, dbUnit)
}

// The manifest directory disappearing stops its pods; when it is back, so
// are they.
func TestManifestDirectoryRemoved(t *testing.T) {
	const name = "e2e-dir"
	writeManifest(t, "e2e-dir.yaml", webPod(name, "dir", 0))
	unit := waitActive(t, "default", name)
	away := manifestDir + ".away"
	if err := os.Rename(manifestDir, away); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := os.Rename(away, manifestDir); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restore)
	waitGone(t, unit)
	restore()
	waitActive(t, "default", name)
	os.Remove(filepath.Join(manifestDir, "e2e-dir.yaml"))
	waitGone(t, unit)
}

// A standalone kubelet's configuration works unchanged: podunit runs the
// static pods of its staticPodPath.
func TestKubeletConfigMigration(t *testing.T) {
	const name, config = "e2e-kubelet", "/etc/podunit/config.yaml"
	dir := "/etc/kubernetes/manifests"
	freshDir(t, "/etc/kubernetes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/etc/kubernetes/kubelet.yaml", []byte(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: systemd
readOnlyPort: 10255
staticPodPath: /etc/kubernetes/manifests
`), 0o644); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.WriteFile(config, old, 0o644)
		runSync(t)
	})
	if err := os.WriteFile(config, append(append([]byte{}, old...), "\nkubeletConfig: /etc/kubernetes/kubelet.yaml\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	// A configuration change is not a manifest change: sync, until a sync
	// that began after the change has run (systemctl start joins a sync
	// already running, which read the old configuration) and podunit.path
	// watches the kubelet's directory.
	waitFor(t, "podunit.path watching "+dir, func() (bool, error) {
		runSync(t)
		b, err := os.ReadFile("/run/systemd/system/podunit.path.d/50-manifest-dir.conf")
		return err == nil && strings.Contains(string(b), "PathChanged="+dir), nil
	})
	// From now on podunit.path watches the kubelet's directory too: a pod
	// written there starts, and goes when its file does. The periodic
	// relist is off meanwhile, so only podunit.path can have noticed.
	systemctl(t, "stop", "podunit-sync.timer")
	t.Cleanup(func() { systemctl(t, "start", "podunit-sync.timer") })
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(webPod(name, "from the kubelet's directory", 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	unit := waitActive(t, "default", name)
	if src := unitProps(t, unit)["SourcePath"]; src != filepath.Join(dir, "web.yaml") {
		t.Errorf("SourcePath %v", src)
	}
	if b, err := os.ReadFile("/run/systemd/system/podunit.path.d/50-manifest-dir.conf"); err != nil || !strings.Contains(string(b), "PathChanged=/etc/kubernetes/manifests") {
		t.Errorf("podunit.path drop-in: %q %v", b, err)
	}
	os.Remove(filepath.Join(dir, "web.yaml"))
	waitGone(t, unit)
}

// Two files defining the same pod: the first by name keeps it, the other is
// reported on every sync, and nothing flaps; when the first goes, the other
// takes over.
func TestDuplicateNames(t *testing.T) {
	const name = "e2e-dup"
	start := time.Now()
	writeManifest(t, "e2e-dup-a.yaml", webPod(name, "a", 0))
	unit := waitActive(t, "default", name)
	writeManifest(t, "e2e-dup-b.yaml", webPod(name, "b", 0))
	runSync(t)
	runSync(t)
	invocation := fmt.Sprint(unitProps(t, unit)["InvocationID"])
	j := journal(t, "podunit-sync.service", start)
	want := "e2e-dup-b.yaml: metadata.name: pod default/e2e-dup is already defined in /etc/podunit/manifests/e2e-dup-a.yaml"
	if n := strings.Count(j, want); n < 2 {
		t.Errorf("the conflict was reported %d times over two syncs:\n%s", n, j)
	}
	runSync(t)
	if got := fmt.Sprint(unitProps(t, unit)["InvocationID"]); got != invocation {
		t.Error("the pod flapped between the two definitions")
	}
	if out := mustExec(t, name, "web", "cat", "/www/index.html"); out != "a" {
		t.Errorf("serving %q, want the first file's", out)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-dup-a.yaml"))
	waitFor(t, "the second definition running", func() (bool, error) {
		out, ok := tryExec("default", name, "web", "cat", "/www/index.html")
		return ok && out == "b", nil
	})
	os.Remove(filepath.Join(manifestDir, "e2e-dup-b.yaml"))
	waitGone(t, unit)
}

// A manifest that is a symlink: a change to its target is noticed at once
// (podunit.path watches the target's directory; the relist is off here).
func TestSymlinkTargetChange(t *testing.T) {
	const name = "e2e-link"
	target := "/srv/e2e-pods/web.yaml"
	freshDir(t, filepath.Dir(target))
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte(webPod(name, "one", 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	systemctl(t, "stop", "podunit-sync.timer")
	t.Cleanup(func() { systemctl(t, "start", "podunit-sync.timer") })
	link := filepath.Join(manifestDir, "e2e-link.yaml")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })
	unit := waitActive(t, "default", name)
	first := fmt.Sprint(unitProps(t, unit)["InvocationID"])
	if err := os.WriteFile(target+".tmp", []byte(webPod(name, "two", 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(target+".tmp", target); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pod replaced after its symlink's target changed", func() (bool, error) {
		p, err := systemd.GetAllPropertiesContext(t.Context(), unit)
		return err == nil && p["ActiveState"] == "active" && fmt.Sprint(p["InvocationID"]) != first, nil
	})
	os.Remove(link)
	waitGone(t, unit)
}
