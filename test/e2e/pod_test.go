//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
)

// The user story of the spine: a manifest dropped into the directory runs as
// a pod that answers on its IP and its hostPort; editing the file replaces
// the pod; deleting it stops the unit and removes the sandbox.
func TestCreateEditDelete(t *testing.T) {
	const name = "e2e-web"
	ctx := context.Background()

	writeManifest(t, "e2e-web.yaml", webPod(name, "first", 18080))
	unit := waitActive(t, "default", name)

	// The unit is in the pod's own slice, under podunit.slice, and so are the
	// pod's containers.
	props := unitProps(t, unit)
	if got, want := props["Slice"], `podunit-e2e\x2dweb.slice`; got != want {
		t.Errorf("Slice = %v, want %v", got, want)
	}
	st := podState(t, "default", name)
	if st.Status.PodIP == "" {
		t.Fatalf("no pod IP in state %+v", st)
	}
	ctr := st.Status.ContainerStatuses[0]
	id := strings.TrimPrefix(ctr.ContainerID, containerIDPrefix())
	sliceCgroup, err := systemd.GetUnitTypePropertyContext(ctx, `podunit-e2e\x2dweb.slice`, "Slice", "ControlGroup")
	if err != nil {
		t.Fatal(err)
	}
	cg := sliceCgroup.Value.Value().(string)
	if !strings.HasSuffix(cg, `/podunit.slice/podunit-e2e\x2dweb.slice`) {
		t.Errorf("pod slice cgroup %s is not under podunit.slice", cg)
	}
	// containerd names a container's scope cri-containerd-<id>.scope;
	// CRI-O crio-<id>.scope, and with conmon_cgroup "pod" its conmon's
	// crio-conmon-<id>.scope beside it, in the pod's slice too.
	scopes := []string{"cri-containerd-" + id + ".scope"}
	if onCRIO() {
		scopes = []string{"crio-" + id + ".scope", "crio-conmon-" + id + ".scope"}
	}
	for _, scope := range scopes {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/systemd", cg, scope)); err != nil {
			t.Errorf("container %s is not in the pod's slice: %v", id, err)
		}
	}

	// The sandbox carries the kubelet's CRI labels.
	sbs := sandboxes(t, "default", name)
	if len(sbs) != 1 {
		t.Fatalf("want 1 sandbox, got %d", len(sbs))
	}
	for k, want := range map[string]string{
		podshim.LabelPodName: name, podshim.LabelPodNamespace: "default", podshim.LabelPodUID: st.UID, "app": name,
	} {
		if got := sbs[0].Labels[k]; got != want {
			t.Errorf("sandbox label %s = %q, want %q", k, got, want)
		}
	}

	// It answers on the pod IP and on the hostPort; $(GREETING) was expanded.
	for _, url := range []string{"http://" + st.Status.PodIP + "/", "http://" + hostPortAddr() + ":18080/"} {
		waitFor(t, url+" answering", func() (bool, error) {
			code, body, err := get(url)
			return code == 200 && strings.TrimSpace(body) == "first", err
		})
	}

	// Edit: the pod is replaced; the old container and sandbox are gone.
	oldSandbox := sbs[0].Id
	writeManifest(t, "e2e-web.yaml", webPod(name, "second", 18080))
	waitFor(t, "the edited pod answering", func() (bool, error) {
		code, body, err := get("http://" + hostPortAddr() + ":18080/")
		return code == 200 && strings.TrimSpace(body) == "second", err
	})
	waitActive(t, "default", name)
	sbs = sandboxes(t, "default", name)
	if len(sbs) != 1 || sbs[0].Id == oldSandbox {
		t.Fatalf("after the edit: want 1 new sandbox, got %v (old %s)", sandboxIDs(sbs), oldSandbox)
	}
	if left := containers(t, oldSandbox); len(left) != 0 {
		t.Errorf("old containers still exist: %v", left)
	}
	newState := podState(t, "default", name)
	if newState.Status.ContainerStatuses[0].ContainerID == ctr.ContainerID {
		t.Errorf("container ID unchanged after an edit: %s", ctr.ContainerID)
	}

	// Delete: the unit goes, and so do its slice, the sandbox, the state
	// and spec files.
	if err := os.Remove(filepath.Join(manifestDir, "e2e-web.yaml")); err != nil {
		t.Fatal(err)
	}
	waitGone(t, unit)
	// (A slice needs no unit file: systemd loads any slice name it is asked
	// about, inactive.)
	waitFor(t, "the pod's slice stopped", func() (bool, error) {
		s := activeState(`podunit-e2e\x2dweb.slice`)
		return s == "inactive", fmt.Errorf("ActiveState %q", s)
	})
	if sbs := sandboxes(t, "default", name); len(sbs) != 0 {
		t.Errorf("sandboxes left after delete: %v", sandboxIDs(sbs))
	}
	if _, err := os.Stat(podshim.StatePath(podshim.DefaultStateDir, "default", name)); !os.IsNotExist(err) {
		t.Errorf("state file left after delete: %v", err)
	}
	waitFor(t, "spec files removed", func() (bool, error) {
		m, _ := filepath.Glob(filepath.Join(specDir, "default_"+name+"-*.json"))
		return len(m) == 0, fmt.Errorf("left: %v", m)
	})
}

// A broken file next to a good one: the good pod runs, and the sync's journal
// names the bad file, the line and the field.
func TestInvalidManifestNextToGood(t *testing.T) {
	start := time.Now()
	writeManifest(t, "e2e-bad.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-bad
spec:
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    imagePullPolcy: IfNotPresent
`)
	writeManifest(t, "e2e-good.yaml", webPod("e2e-good", "good", 18081))
	unit := waitActive(t, "default", "e2e-good")

	want := "/etc/podunit/manifests/e2e-bad.yaml:9: spec.containers[0].imagePullPolcy: unknown field"
	waitFor(t, "the error in the sync's journal", func() (bool, error) {
		return strings.Contains(journal(t, "podunit-sync.service", start), want), nil
	})
	if s := activeState(units.ServiceName("default", "e2e-bad")); s != "" && s != "inactive" {
		t.Errorf("a unit exists for the invalid manifest: %s", s)
	}
	if code, body, err := get("http://" + hostPortAddr() + ":18081/"); code != 200 || strings.TrimSpace(body) != "good" {
		t.Errorf("good pod: %d %q %v", code, body, err)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-good.yaml"))
	waitGone(t, unit)
}

// Restating a manifest with other formatting, comments and defaults spelled
// out changes nothing: the unit keeps running, with the same process.
func TestUnchangedManifestIsNotTouched(t *testing.T) {
	const name = "e2e-same"
	writeManifest(t, "e2e-same.yaml", webPod(name, "same", 18082))
	unit := waitActive(t, "default", name)
	before := unitProps(t, unit)

	restated := "# the same pod, restated\n" + strings.Replace(webPod(name, "same", 18082),
		"spec:\n", "spec:\n  restartPolicy: Always   # the default\n", 1)
	writeManifest(t, "e2e-same.yaml", restated)
	runSync(t)
	after := unitProps(t, unit)
	for _, p := range []string{"MainPID", "InvocationID", "ActiveEnterTimestamp"} {
		if fmt.Sprint(before[p]) != fmt.Sprint(after[p]) {
			t.Errorf("%s changed from %v to %v: an unchanged pod was touched", p, before[p], after[p])
		}
	}
	os.Remove(filepath.Join(manifestDir, "e2e-same.yaml"))
	waitGone(t, unit)
}

// When podshim is killed, systemd runs it again and it adopts the running
// pod: same sandbox, same container, no restart.
func TestPodshimKilledAdoptsPod(t *testing.T) {
	const name = "e2e-adopt"
	writeManifest(t, "e2e-adopt.yaml", webPod(name, "adopt", 18083))
	unit := waitActive(t, "default", name)
	before := podState(t, "default", name)
	pid := unitProps(t, unit)["MainPID"].(uint32)
	// podshim's heap without transparent huge pages (its unit's
	// Environment=): where the kernel hands them to every process, they
	// were most of podshim's memory (docs/benchmarks.md).
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err != nil || !strings.Contains(string(env), "GODEBUG=disablethp=1\x00") {
		t.Errorf("podshim's environment lacks GODEBUG=disablethp=1: %q %v", env, err)
	}

	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new podshim", func() (bool, error) {
		p := unitProps(t, unit)
		return p["MainPID"].(uint32) != pid && p["ActiveState"] == "active", nil
	})
	after := podState(t, "default", name)
	if after.SandboxID != before.SandboxID ||
		after.Status.ContainerStatuses[0].ContainerID != before.Status.ContainerStatuses[0].ContainerID {
		t.Errorf("pod not adopted: before %+v, after %+v", before, after)
	}
	if n := after.Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("restartCount = %d, want 0", n)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-adopt.yaml"))
	waitGone(t, unit)
}

// A podshim that keeps failing is run again later each time: 2 s, 4 s,
// 8 s, 15 s, 30 s, then every minute (podspec.DefaultRestartBackoff), and
// from the first step again after a start the user asked for. systemd 254+
// paces it with RestartSteps=; this test bed's systemd 252 has RestartSec=
// alone and podshim waits the rest (the VM story checks systemd 257). The
// pod's container is not touched by any of it.
func TestPodshimRestartBackoff(t *testing.T) {
	const name = "e2e-backoff"
	writeManifest(t, name+".yaml", sleeper(name, ""))
	unit := waitActive(t, "default", name)
	t.Cleanup(func() {
		os.Remove(filepath.Join(manifestDir, name+".yaml"))
		waitGone(t, unit)
	})
	before := podState(t, "default", name)

	// killed kills the pod's podshim and returns how long until the unit
	// was active again (a new podshim adopted the pod and said READY=1),
	// with systemd's restart count.
	killed := func() (time.Duration, uint32) {
		t.Helper()
		pid := unitProps(t, unit)["MainPID"].(uint32)
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		waitForWithin(t, 3*time.Minute, "a new podshim, active", func() (bool, error) {
			p = unitProps(t, unit)
			return p["MainPID"].(uint32) != pid && p["ActiveState"] == "active", nil
		})
		active := time.Duration(p["ActiveEnterTimestampMonotonic"].(uint64)) * time.Microsecond
		return active - time.Duration(ts.Nano()), p["NRestarts"].(uint32)
	}

	backoff := podspec.DefaultRestartBackoff
	var gaps []time.Duration
	for n := 1; n <= backoff.Steps; n++ {
		gap, restarts := killed()
		t.Logf("podshim killed, failure %d in a row: active again after %s (systemd's delay %s)", n, gap.Round(time.Millisecond), backoff.Delay(n).Round(time.Millisecond))
		if restarts != uint32(n) {
			t.Errorf("NRestarts = %d after %d failures in a row", restarts, n)
		}
		if gap < backoff.Delay(n) {
			t.Errorf("failure %d: podshim ran again after %s, before its back-off of %s", n, gap.Round(time.Millisecond), backoff.Delay(n))
		}
		if n > 1 && gap <= gaps[len(gaps)-1] {
			t.Errorf("failure %d: the back-off did not grow: %s after %s", n, gap, gaps[len(gaps)-1])
		}
		gaps = append(gaps, gap)
	}

	// The kills did not touch the pod: adopted each time.
	after := podState(t, "default", name)
	if after.SandboxID != before.SandboxID ||
		after.Status.ContainerStatuses[0].ContainerID != before.Status.ContainerStatuses[0].ContainerID ||
		after.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("the pod was not adopted through the back-off: before %+v, after %+v", before, after)
	}
	// Where podshim paces itself (systemd before 254), it says so.
	if strings.Contains(fmt.Sprint(unitProps(t, unit)["ExecStart"]), "--restart-backoff") &&
		!strings.Contains(journal(t, unit, time.Now().Add(-5*time.Minute)), "restart back-off") {
		t.Errorf("podshim waited out the back-off without a word in the journal")
	}

	// A restart the user asks for starts the count again.
	systemctl(t, "restart", unit)
	waitActive(t, "default", name)
	gap, restarts := killed()
	t.Logf("after systemctl restart, podshim killed: active again after %s", gap.Round(time.Millisecond))
	if restarts != 1 || gap >= backoff.Delay(3) {
		t.Errorf("after systemctl restart the back-off did not start again: NRestarts %d, active again after %s (the last was %s)",
			restarts, gap.Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond))
	}
}

// A container that exits is started again inside the same sandbox: the pod
// IP is kept, the restart count goes up, and a crash loop backs off as the
// kubelet does (shown in the unit's status) without disturbing the pod's
// other container.
func TestCrashLoopRestartsInSandbox(t *testing.T) {
	const name = "e2e-crash"
	start := time.Now()
	writeManifest(t, "e2e-crash.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-crash
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: steady
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
  - name: crash
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "sleep 1; exit 7"]
`)
	unit := units.ServiceName("default", name)
	waitFor(t, "the crashing container in back-off", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
		if err != nil {
			return false, err
		}
		w := st.Status.ContainerStatuses[1].State.Waiting
		return w != nil && w.Reason == "CrashLoopBackOff", nil
	})
	first := podState(t, "default", name)
	crash := first.Status.ContainerStatuses[1]
	if crash.RestartCount < 1 || crash.LastTerminationState.Terminated == nil ||
		crash.LastTerminationState.Terminated.ExitCode != 7 || crash.LastTerminationState.Terminated.Reason != "Error" {
		t.Errorf("crashing container status: %+v", crash)
	}
	if !strings.Contains(crash.State.Waiting.Message, "back-off 10s restarting failed container=crash pod=e2e-crash_default(") {
		t.Errorf("waiting message %q", crash.State.Waiting.Message)
	}
	status := unitProps(t, unit)["StatusText"].(string)
	if !strings.HasPrefix(status, "CrashLoopBackOff: back-off ") || !strings.Contains(status, "container=crash") {
		t.Errorf("unit status %q does not show the back-off", status)
	}

	waitFor(t, "a restart after the back-off", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
		return err == nil && st.Status.ContainerStatuses[1].RestartCount > crash.RestartCount, err
	})
	second := podState(t, "default", name)
	if second.SandboxID != first.SandboxID || second.Status.PodIP != first.Status.PodIP {
		t.Errorf("sandbox or IP changed: %s %s → %s %s", first.SandboxID, first.Status.PodIP, second.SandboxID, second.Status.PodIP)
	}
	steady0, steady1 := first.Status.ContainerStatuses[0], second.Status.ContainerStatuses[0]
	if steady1.ContainerID != steady0.ContainerID || steady1.RestartCount != 0 || steady1.State.Running == nil {
		t.Errorf("the steady container was disturbed: %+v → %+v", steady0, steady1)
	}
	if j := journal(t, unit, start); !strings.Contains(j, "container exited; restarting it") || !strings.Contains(j, "exitCode=7") {
		t.Errorf("the journal does not say why the container restarted:\n%s", j)
	}

	// Deleted while a container is in back-off: no sandbox is left.
	os.Remove(filepath.Join(manifestDir, "e2e-crash.yaml"))
	waitGone(t, unit)
	waitFor(t, "no sandbox left", func() (bool, error) {
		return len(sandboxes(t, "default", name)) == 0, nil
	})
}

// restartPolicy Never and OnFailure: a pod whose containers finished stays
// finished — succeeded as "active (exited)", failed as "failed" — and a sync
// does not run it again.
func TestFinishedPods(t *testing.T) {
	job := func(name, policy, script string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  restartPolicy: %s
  containers:
  - name: job
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", %q]
`, name, policy, script)
	}
	writeManifest(t, "e2e-ok.yaml", job("e2e-ok", "OnFailure", "echo done"))
	writeManifest(t, "e2e-fail.yaml", job("e2e-fail", "Never", "exit 5"))
	okUnit, failUnit := units.ServiceName("default", "e2e-ok"), units.ServiceName("default", "e2e-fail")
	waitFor(t, "e2e-ok active (exited)", func() (bool, error) {
		p := unitProps(t, okUnit)
		return p["ActiveState"] == "active" && p["SubState"] == "exited", nil
	})
	waitFor(t, "e2e-fail failed", func() (bool, error) { return activeState(failUnit) == "failed", nil })

	ok := podState(t, "default", "e2e-ok")
	if ok.Status.Phase != "Succeeded" || ok.Status.ContainerStatuses[0].RestartCount != 0 ||
		ok.Status.ContainerStatuses[0].State.Terminated.Reason != "Completed" {
		t.Errorf("e2e-ok: %+v (want Succeeded, no restart: OnFailure does not restart a container that exited 0)", ok.Status)
	}
	fail := podState(t, "default", "e2e-fail")
	if fail.Status.Phase != "Failed" || fail.Status.ContainerStatuses[0].State.Terminated.ExitCode != 5 {
		t.Errorf("e2e-fail: %+v", fail.Status)
	}
	if s := unitProps(t, failUnit)["StatusText"]; !strings.Contains(fmt.Sprint(s), "Failed: container job exited with code 5") {
		t.Errorf("failed unit status %q", s)
	}

	before := unitProps(t, failUnit)["InvocationID"]
	runSync(t)
	if activeState(failUnit) != "failed" || fmt.Sprint(unitProps(t, failUnit)["InvocationID"]) != fmt.Sprint(before) {
		t.Error("a sync ran the failed pod again")
	}
	if activeState(okUnit) != "active" {
		t.Error("a sync touched the succeeded pod")
	}

	// Removing the manifests removes the finished pods and their sandboxes.
	os.Remove(filepath.Join(manifestDir, "e2e-ok.yaml"))
	os.Remove(filepath.Join(manifestDir, "e2e-fail.yaml"))
	waitGone(t, okUnit)
	waitGone(t, failUnit)
	waitFor(t, "no sandboxes left", func() (bool, error) {
		return len(sandboxes(t, "default", "e2e-ok"))+len(sandboxes(t, "default", "e2e-fail")) == 0, nil
	})
}

// `systemctl stop` tears the pod down: no sandbox is left.
func TestSystemctlStopRemovesSandbox(t *testing.T) {
	const name = "e2e-stop"
	writeManifest(t, "e2e-stop.yaml", webPod(name, "stop", 18084))
	unit := waitActive(t, "default", name)
	out, err := exec.Command("systemctl", "stop", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemctl stop: %v\n%s", err, out)
	}
	if sbs := sandboxes(t, "default", name); len(sbs) != 0 {
		t.Errorf("sandboxes left after systemctl stop: %v", sandboxIDs(sbs))
	}
	// The next sync starts it again: the manifest still asks for it.
	runSync(t)
	waitActive(t, "default", name)
	os.Remove(filepath.Join(manifestDir, "e2e-stop.yaml"))
	waitGone(t, unit)
}

// runSync runs the sync service and waits for it to finish, as the path unit
// would. A sync that reports a problem fails its run; the tests look at what
// it did rather than at its exit status.
func runSync(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("systemctl", "start", "podunit-sync.service").CombinedOutput(); err != nil {
		t.Logf("systemctl start podunit-sync: %v\n%s", err, out)
	}
}

func sandboxIDs(list []*runtimeapi.PodSandbox) []string {
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.Id + "/" + s.State.String()
	}
	return ids
}
