//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

// converged reports how the pods named prefix-* differ from the manifests
// of that prefix (prefix-NN.yaml or .yml holding pod prefix-NN), "" when
// they do not: every manifest's pod has its unit active and exactly one
// ready sandbox; no other pod of the prefix has a unit, an active slice, a
// sandbox, a spec file, a state file or a log directory, nor an earlier
// generation of the pod a log directory; no podunit unit failed.
func converged(t *testing.T, prefix string) string {
	t.Helper()
	want := map[string]bool{}
	for _, ext := range []string{".yaml", ".yml"} {
		files, _ := filepath.Glob(filepath.Join(manifestDir, prefix+"-*"+ext))
		for _, f := range files {
			want[strings.TrimSuffix(filepath.Base(f), ext)] = true
		}
	}
	var problems []string
	ctx := context.Background()
	list, err := systemd.ListUnitsByPatternsContext(ctx, nil, []string{"pod-" + prefix + "-*", "podunit-" + prefix + "*", "podunit-*"})
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]string{}
	for _, u := range list {
		if u.LoadState == "not-found" {
			continue
		}
		loaded[u.Name] = u.ActiveState
		if u.ActiveState == "failed" && strings.HasPrefix(u.Name, "podunit") {
			problems = append(problems, u.Name+" failed")
		}
		// A replacement under way (pulling, or holding a new generation
		// to its readiness) is not converged yet.
		if (strings.HasPrefix(u.Name, "podunit-handoff-"+prefix) || strings.HasPrefix(u.Name, "podunit-rollout-")) && (u.ActiveState == "activating" || u.ActiveState == "active" || u.JobType != "") {
			problems = append(problems, u.Name+" under way")
		}
	}
	for name := range want {
		if s := loaded[units.ServiceName("default", name)]; s != "active" {
			problems = append(problems, fmt.Sprintf("%s: unit %q", name, s))
		}
		ready := 0
		for _, sb := range sandboxes(t, "default", name) {
			if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				ready++
			}
		}
		if ready != 1 {
			problems = append(problems, fmt.Sprintf("%s: %d ready sandboxes", name, ready))
		}
	}
	slicePrefix := strings.TrimSuffix(units.SliceName("default", prefix+"-"), ".slice")
	wantSlices := map[string]bool{}
	for name := range want {
		wantSlices[units.SliceName("default", name)] = true
	}
	for u, state := range loaded {
		if name, ok := strings.CutPrefix(strings.TrimSuffix(u, ".service"), "pod-"); ok && strings.HasPrefix(name, prefix+"-") && !want[name] {
			problems = append(problems, "unit of a removed pod: "+u)
		}
		if strings.HasPrefix(u, slicePrefix) && strings.HasSuffix(u, ".slice") && !wantSlices[u] && state == "active" {
			problems = append(problems, "slice of a removed pod: "+u)
		}
	}
	all, err := cri.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{podshim.LabelManaged: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, sb := range all {
		if name := sb.Metadata.Name; strings.HasPrefix(name, prefix+"-") && !want[name] {
			problems = append(problems, "sandbox of a removed pod: "+name)
		}
	}
	for _, glob := range []string{filepath.Join(specDir, "default_"+prefix+"-*"), filepath.Join(podshim.DefaultStateDir, "default_"+prefix+"-*")} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			base := strings.TrimPrefix(filepath.Base(p), "default_")
			name := base[:strings.IndexAny(base+".", ".")]
			if i := strings.LastIndex(name, "-"); strings.HasPrefix(glob, specDir) && i > 0 {
				name = name[:i] // the config hash
			}
			if !want[name] {
				problems = append(problems, "file of a removed pod: "+p)
			}
		}
	}
	// Log directories: <namespace>_<name>_<uid>, only the current
	// generation's of each pod.
	logDirs, _ := filepath.Glob(filepath.Join(podshim.DefaultLogRoot, "default_"+prefix+"-*_*"))
	for _, d := range logDirs {
		base := strings.TrimPrefix(filepath.Base(d), "default_")
		i := strings.LastIndex(base, "_")
		name, uid := base[:i], base[i+1:]
		if !want[name] {
			problems = append(problems, "log directory of a removed pod: "+d)
		} else if st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name); err == nil && st.UID != uid {
			problems = append(problems, "log directory of a replaced pod: "+d)
		}
	}
	slices.Sort(problems)
	return strings.Join(problems, "; ")
}

// A sync killed with SIGKILL in the middle of reconciling twenty new
// manifests leaves nothing the next sync cannot converge from: it starts
// exactly the pods of the manifests, and once ten are removed, exactly
// those ten remain, with no unit, sandbox or file of the others left.
func TestSyncKilledMidwayConverges(t *testing.T) {
	const prefix = "e2e-kill"
	// No periodic sync meanwhile: the killed one and the next are the
	// test's.
	systemctl(t, "stop", "podunit.path", "podunit-sync.timer")
	t.Cleanup(func() {
		for i := range 20 {
			os.Remove(filepath.Join(manifestDir, fmt.Sprintf("%s-%02d.yaml", prefix, i)))
		}
		systemctl(t, "start", "podunit.path", "podunit-sync.timer")
		runSync(t)
	})
	for i := range 20 {
		name := fmt.Sprintf("%s-%02d", prefix, i)
		if err := os.WriteFile(filepath.Join(manifestDir, name+".yaml"), []byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`, name)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	systemctl(t, "start", "--no-block", "podunit-sync.service")
	waitFor(t, "the sync to have started a first pod", func() (bool, error) {
		s := activeState(units.ServiceName("default", prefix+"-00"))
		return s == "active" || s == "activating", nil
	})
	systemctl(t, "kill", "--signal=KILL", "podunit-sync.service")
	started := 0
	for i := range 20 {
		if s := activeState(units.ServiceName("default", fmt.Sprintf("%s-%02d", prefix, i))); s != "" && s != "inactive" {
			started++
		}
	}
	t.Logf("the sync was killed after starting %d of 20 pods", started)

	start := time.Now()
	runSync(t)
	waitFor(t, "all twenty pods as their manifests say", func() (bool, error) { return converged(t, prefix) == "", nil })
	t.Logf("converged %s after the next sync began", time.Since(start).Round(time.Millisecond))

	for i := 0; i < 20; i += 2 {
		os.Remove(filepath.Join(manifestDir, fmt.Sprintf("%s-%02d.yaml", prefix, i)))
	}
	runSync(t)
	waitFor(t, "exactly the ten remaining pods, nothing of the others", func() (bool, error) {
		if p := converged(t, prefix); p != "" {
			runSync(t) // the next sync collects what the stopped pods left
			return false, fmt.Errorf("%s", p)
		}
		return true, nil
	})
}

// statusAPI gets path from the status socket.
func statusAPI(t *testing.T, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", "/run/podunit/status.sock")
	}}}
	resp, err := c.Get("http://localhost" + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// containerd (on CRI-O: crio.service) stopped for 30 s: the running pod
// keeps running (the same container, serving; CRI-O's conmon lives in the
// pod's slice, so stopping crio.service leaves it), healthz says the runtime
// is down, a pod written and a pod edited meanwhile start once the runtime
// is back, and nothing needs a hand.
func TestContainerdOutage(t *testing.T) {
	// An exec liveness probe needs the runtime: while it is down, the
	// probe's result is thrown away (as the kubelet does), not failed.
	writeManifest(t, "e2e-outage.yaml", webPod("e2e-outage", "still here", 0)+`    livenessProbe:
      exec: {command: ["true"]}
      periodSeconds: 1
      failureThreshold: 1
`)
	writeManifest(t, "e2e-outage-edit.yaml", webPod("e2e-outage-edit", "before the outage", 0))
	unit := waitActive(t, "default", "e2e-outage")
	waitActive(t, "default", "e2e-outage-edit")
	before := runningContainer(t, "default", "e2e-outage", "web")
	ip := getPod(t, "default", "e2e-outage").Status.PodIP
	podshimPID := unitProps(t, unit)["MainPID"].(uint32)

	systemctl(t, "stop", runtimeUnit())
	t.Cleanup(func() { exec.Command("systemctl", "start", runtimeUnit()).Run() })
	down := time.Now()
	waitFor(t, "healthz to report the runtime down", func() (bool, error) {
		code, body := statusAPI(t, "/healthz?verbose")
		return code == http.StatusInternalServerError && strings.Contains(body, "[-]runtime"), nil
	})
	if code, body, err := get("http://" + ip + "/"); err != nil || code != 200 || !strings.Contains(body, "still here") {
		t.Errorf("the pod stopped serving while %s was down: %d %q %v", runtimeName, code, body, err)
	}
	waitFor(t, "the running pod's unit to say the runtime is unavailable", func() (bool, error) {
		text, _ := unitProps(t, unit)["StatusText"].(string)
		return strings.HasPrefix(text, "Runtime unavailable since"), nil
	})
	writeManifest(t, "e2e-outage-new.yaml", webPod("e2e-outage-new", "new", 0))
	writeManifest(t, "e2e-outage-edit.yaml", webPod("e2e-outage-edit", "edited during the outage", 0))
	time.Sleep(30*time.Second - time.Since(down)) // the outage, with a new pod and an edit waiting
	systemctl(t, "start", runtimeUnit())
	t.Logf("%s was down for %s", runtimeName, time.Since(down).Round(time.Second))

	up := time.Now()
	waitActive(t, "default", "e2e-outage-new")
	t.Logf("the pod written during the outage was ready %s after %s came back", time.Since(up).Round(time.Millisecond), runtimeName)
	waitFor(t, "the pod edited during the outage to run its edit", func() (bool, error) {
		// Between the old generation's stop and the new one's start the
		// pod is not there to get.
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", "e2e-outage-edit")
		if err != nil || st.Status.PodIP == "" || activeState(units.ServiceName("default", "e2e-outage-edit")) != "active" {
			return false, err
		}
		_, body, err := get("http://" + st.Status.PodIP + "/")
		return err == nil && strings.Contains(body, "edited during the outage"), err
	})
	t.Logf("the pod edited during the outage ran its edit %s after %s came back", time.Since(up).Round(time.Millisecond), runtimeName)
	if n := len(sandboxes(t, "default", "e2e-outage-edit")); n != 1 {
		t.Errorf("the edited pod has %d sandboxes, want 1 (the old one removed)", n)
	}
	waitFor(t, "healthz ok again", func() (bool, error) {
		code, _ := statusAPI(t, "/healthz")
		return code == http.StatusOK, nil
	})
	// Its podshim waited the outage out: the same process, never
	// restarted, the same container on its first attempt.
	waitFor(t, "the running pod's unit to say it runs again", func() (bool, error) {
		text, _ := unitProps(t, unit)["StatusText"].(string)
		return strings.HasPrefix(text, "Running"), nil
	})
	if p := unitProps(t, unit); p["ActiveState"] != "active" || p["MainPID"].(uint32) != podshimPID || p["NRestarts"].(uint32) != 0 {
		t.Errorf("the running pod's podshim did not ride the outage out: %v, pid %v (was %d), %v restarts",
			p["ActiveState"], p["MainPID"], podshimPID, p["NRestarts"])
	}
	if after := runningContainer(t, "default", "e2e-outage", "web"); after != before {
		t.Errorf("the running pod's container was replaced: %s → %s", before, after)
	}
	if cs := getPod(t, "default", "e2e-outage").Status.ContainerStatuses[0]; cs.RestartCount != 0 {
		t.Errorf("the running pod's container restarted %d times (liveness during the outage?)", cs.RestartCount)
	}
}

// journald restarted while a pod logs: podshim keeps forwarding (its
// datagrams go to the socket systemd holds across the restart), so lines
// written after the restart are in the pod's journal; the lines missing
// across the restart are reported.
func TestJournaldRestartWhileLogging(t *testing.T) {
	writeManifest(t, "e2e-chatty.yaml", `apiVersion: v1
kind: Pod
metadata: {name: e2e-chatty}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo line $i; sleep 0.05; done"]
`)
	unit := waitActive(t, "default", "e2e-chatty")
	start := time.Now()
	waitFor(t, "lines in the journal", func() (bool, error) {
		return strings.Contains(journal(t, unit, start), "line 20"), nil
	})
	systemctl(t, "restart", "systemd-journald.service")
	restarted := time.Now()
	time.Sleep(2 * time.Second) // the pod keeps writing
	j := journal(t, unit, restarted.Add(500*time.Millisecond))
	lines := 0
	for _, l := range strings.Split(j, "\n") {
		if strings.HasPrefix(l, "line ") {
			lines++
		}
	}
	if lines == 0 {
		t.Fatalf("no line of the pod in the journal after journald's restart:\n%s", j)
	}
	t.Logf("%d lines in the journal from 0.5 s after journald's restart to now", lines)
	// Lines lost across the restart, reported (journald may drop some
	// itself while it restarts; the CRI log file keeps them all).
	seen, highest := map[int]bool{}, 0
	for _, l := range strings.Split(journal(t, unit, start), "\n") {
		var n int
		if _, err := fmt.Sscanf(l, "line %d", &n); err == nil {
			seen[n] = true
			highest = max(highest, n)
		}
	}
	t.Logf("lines 1…%d: %d in the journal, %d missing", highest, len(seen), highest-len(seen))
	if p := unitProps(t, unit); p["NRestarts"].(uint32) != 0 {
		t.Errorf("podshim restarted %d times", p["NRestarts"])
	}
}
