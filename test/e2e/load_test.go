//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/test/crifloor"
	"github.com/podunit/podunit/test/procstat"
	"github.com/podunit/podunit/units"
)

// The load suite (make test-load; make test runs it with small numbers):
// many pods at once against the raw CRI floor, churn, and idle CPU. It
// reports figures and checks the system ends exactly as its manifests say;
// it asserts no time.

const loadImage = "localhost/podunit/busybox:1.35"

// loadEnv is the number an environment variable gives, or def.
func loadEnv(t *testing.T, name string, def int) int {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number", name, v)
		}
		return n
	}
	return def
}

func skipUnlessLoad(t *testing.T) {
	if os.Getenv("PODUNIT_E2E_LOAD") == "" {
		t.Skip("the load suite: make test-load")
	}
}

func sleeper(name, note string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, annotations: {note: %q}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]
`, name, note, loadImage)
}

// activeUnits counts the active pod units named pod-prefix-*.
func activeUnits(t *testing.T, prefix string) int {
	t.Helper()
	list, err := systemd.ListUnitsByPatternsContext(context.Background(), []string{"active"}, []string{"pod-" + prefix + "-*"})
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// removeAll removes the prefix's manifests and waits until nothing of their
// pods is left.
func removeAll(t *testing.T, prefix string) {
	t.Helper()
	for _, ext := range []string{".yaml", ".yml"} {
		files, _ := filepath.Glob(filepath.Join(manifestDir, prefix+"-*"+ext))
		for _, f := range files {
			os.Remove(f)
		}
	}
	waitForWithin(t, 5*time.Minute, "every "+prefix+" pod gone", func() (bool, error) {
		if p := converged(t, prefix); p != "" {
			runSync(t)
			return false, fmt.Errorf("%s", p)
		}
		return true, nil
	})
}

// floorAll starts n pods with raw CRI calls, all at once, and returns how
// long until every one ran; they are removed off the clock.
func floorAll(t *testing.T, n int) time.Duration {
	t.Helper()
	ctx := context.Background()
	rt, err := criclient.New(criEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	specs := make([]*generator.Pod, n)
	for i := range n {
		name := fmt.Sprintf("floor-%03d", i)
		pods, err := generator.Decode(name+".yaml", []byte(sleeper(name, "")))
		if err != nil {
			t.Fatal(err)
		}
		specs[i] = pods[0]
	}
	started := make([]*crifloor.Pod, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	begin := make(chan struct{})
	for i, p := range specs {
		sb, c, err := crifloor.Configs(p.Spec, loadImage)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-begin
			started[i], errs[i] = crifloor.Start(ctx, rt, p.Spec, sb, c, loadImage)
		}()
	}
	start := time.Now()
	close(begin)
	wg.Wait()
	took := time.Since(start)
	for i, p := range started {
		if p != nil {
			p.Remove(ctx, rt)
		}
		if errs[i] != nil {
			t.Fatalf("floor pod %d: %v", i, errs[i])
		}
	}
	exec.Command("systemctl", "stop", crifloor.CgroupParent).Run()
	return took
}

// privateDirty is a process's Private_Dirty in KiB.
func privateDirty(t *testing.T, pid int) int {
	t.Helper()
	m, err := procstat.ReadPrivate(pid)
	if err != nil {
		t.Fatal(err)
	}
	return m.Dirty
}

// mainPIDs are the main processes of the prefix's pod units (podshims).
func mainPIDs(t *testing.T, prefix string) []int {
	t.Helper()
	list, err := systemd.ListUnitsByPatternsContext(context.Background(), []string{"active"}, []string{"pod-" + prefix + "-*"})
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, u := range list {
		if pid := unitProps(t, u.Name)["MainPID"].(uint32); pid != 0 {
			pids = append(pids, int(pid))
		}
	}
	return pids
}

// 100 pods from 100 files dropped at once: all ready, against the same
// pods started with raw CRI calls, all at once, before and after (the
// floor's mean); then podunit's memory next to the runtime's own shims.
func TestLoadManyPods(t *testing.T) {
	skipUnlessLoad(t)
	const prefix = "e2e-load"
	n := loadEnv(t, "LOAD_PODS", 100)
	t.Cleanup(func() { removeAll(t, prefix) })

	floor1 := floorAll(t, n)
	start := time.Now()
	for i := range n {
		name := fmt.Sprintf("%s-%03d", prefix, i)
		writeFile(t, name+".yaml", sleeper(name, ""))
	}
	waitForWithin(t, 15*time.Minute, fmt.Sprintf("%d pods active", n), func() (bool, error) {
		return activeUnits(t, prefix) == n, nil
	})
	took := time.Since(start)
	if p := converged(t, prefix); p != "" {
		t.Errorf("not as the manifests say: %s", p)
	}

	// Memory, with every pod running: podshims, serve (once it has
	// answered), one sync over all the manifests (its peak), the runtime.
	statusAPI(t, "/pods")
	var shims int
	pids := mainPIDs(t, prefix)
	for _, pid := range pids {
		shims += privateDirty(t, pid)
	}
	serve := privateDirty(t, int(unitProps(t, "podunit-status.service")["MainPID"].(uint32)))
	cmd := exec.Command(podunitBin, "sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("podunit sync: %v\n%s", err, out)
	}
	syncPeak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	// The runtime's per-container monitor (containerd's shims, CRI-O's
	// conmons) and the runtime itself.
	shimName, daemon := "containerd-shim", "containerd"
	if onCRIO() {
		shimName, daemon = "conmon", "crio"
	}
	var runtimeShims int
	runtimeShimPIDs := procstat.Named(shimName)
	for _, pid := range runtimeShimPIDs {
		runtimeShims += privateDirty(t, pid)
	}
	containerd := 0
	for _, pid := range procstat.Named(daemon) {
		containerd += privateDirty(t, pid)
	}

	removeAll(t, prefix)
	floor2 := floorAll(t, n)
	floor := (floor1 + floor2) / 2
	t.Logf("%d pods: all ready %s after the files were written; raw CRI, all at once: %s and %s (mean %s); ratio %.2f",
		n, took.Round(time.Millisecond), floor1.Round(time.Millisecond), floor2.Round(time.Millisecond), floor.Round(time.Millisecond),
		float64(took)/float64(floor))
	t.Logf("Private_Dirty: %d podshims %d KiB (%d KiB each), podunit serve %d KiB; podunit sync peak RSS %d KiB; "+
		"the runtime's %d %ss %d KiB (%d KiB each), %s %d KiB",
		len(pids), shims, shims/max(len(pids), 1), serve, syncPeak,
		len(runtimeShimPIDs), shimName, runtimeShims, runtimeShims/max(len(runtimeShimPIDs), 1), daemon, containerd)
}

// churnSlot is one manifest of the churn.
type churnSlot struct {
	exists, valid bool
	ext           string
	gen           int
}

// Churn: edits, deletes, re-adds, invalid edits and renames across many
// manifests, then quiet. The system must end exactly as the last valid
// manifests say, with nothing of any earlier pod left.
func TestLoadChurn(t *testing.T) {
	skipUnlessLoad(t)
	const prefix = "e2e-churn"
	slotsN := loadEnv(t, "CHURN_MANIFESTS", 50)
	edits := loadEnv(t, "CHURN_EDITS", 500)
	period := time.Duration(loadEnv(t, "CHURN_SECONDS", 300)) * time.Second
	seed := uint64(loadEnv(t, "CHURN_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("seed %d (CHURN_SEED=%d repeats this run's edits)", seed, seed)
	rnd := rand.New(rand.NewPCG(seed, seed))
	t.Cleanup(func() { removeAll(t, prefix) })

	slots := make([]churnSlot, slotsN)
	name := func(i int) string { return fmt.Sprintf("%s-%02d", prefix, i) }
	path := func(i int) string { return filepath.Join(manifestDir, name(i)+slots[i].ext) }
	write := func(i int, valid bool) {
		s := &slots[i]
		s.gen++
		content := sleeper(name(i), fmt.Sprintf("generation %d", s.gen))
		if !valid {
			// A typo: the pod keeps running as it was (keep-last-good).
			content = strings.Replace(content, "containers:", "contaners:", 1)
		}
		writeFile(t, name(i)+s.ext, content)
		s.exists, s.valid = true, valid
	}
	for i := range slots {
		slots[i].ext = ".yaml"
		write(i, true)
	}
	counts := map[string]int{}
	start := time.Now()
	for e := range edits {
		i := rnd.IntN(slotsN)
		s := &slots[i]
		op := "add"
		if s.exists {
			switch r := rnd.IntN(100); {
			case r < 50:
				op = "edit"
			case r < 65:
				op = "delete"
			case r < 85:
				op = "invalid"
			default:
				op = "rename"
			}
		}
		switch op {
		case "add", "edit":
			write(i, true)
		case "invalid":
			write(i, false)
		case "delete":
			if err := os.Remove(path(i)); err != nil {
				t.Fatal(err)
			}
			s.exists = false
		case "rename":
			old := path(i)
			s.ext = map[string]string{".yaml": ".yml", ".yml": ".yaml"}[s.ext]
			if err := os.Rename(old, path(i)); err != nil {
				t.Fatal(err)
			}
		}
		counts[op]++
		// Spread over the period, as they come.
		if next := start.Add(period * time.Duration(e+1) / time.Duration(edits)); time.Until(next) > 0 {
			time.Sleep(time.Until(next))
		}
	}
	// The final state: a manifest that was never valid has no pod to keep,
	// so each invalid one is mended last.
	for i, s := range slots {
		if s.exists && !s.valid {
			write(i, true)
			counts["mended"]++
		}
	}
	quiet := time.Now()
	t.Logf("%d changes over %s across %d manifests: %v", edits, time.Since(start).Round(time.Second), slotsN, counts)
	// Serving: exactly the final manifests' pods, each running its last
	// valid edit, ready; then converged: every replacement done too (a
	// replacement holds its new generation to its readiness for
	// podunit.io/min-ready-seconds before it is done).
	onLastEdit := func() (bool, error) {
		for i, s := range slots {
			if !s.exists {
				continue
			}
			want := fmt.Sprintf("generation %d", s.gen)
			if got, err := tryPodAnnotation(name(i), "note"); err != nil || got != want {
				return false, fmt.Errorf("%s runs %q (%v), its manifest says %q", name(i), got, err, want)
			}
			if activeState(units.ServiceName("default", name(i))) != "active" {
				return false, fmt.Errorf("%s is not ready", name(i))
			}
		}
		return true, nil
	}
	waitForWithin(t, 5*time.Minute, "each final manifest's pod on its last edit, ready", onLastEdit)
	serving := time.Since(quiet)
	waitForWithin(t, 5*time.Minute, "exactly the final manifests' pods, each on its last edit, every replacement done", func() (bool, error) {
		if p := converged(t, prefix); p != "" {
			return false, fmt.Errorf("%s", p)
		}
		return onLastEdit()
	})
	t.Logf("every pod on its last edit and ready %s after the last change; converged (every replacement done: a replaced pod is held ready for 10 s; and every earlier generation's pod and log directories collected, which the sync does a minute after they were last written, podDirMinAge) %s after it",
		serving.Round(time.Millisecond), time.Since(quiet).Round(time.Millisecond))
	if time.Since(quiet) > serving+15*time.Second {
		// What the hand-offs did after every pod served its last edit.
		out, _ := exec.Command("journalctl", "--no-pager", "-o", "short-precise", "-u", "podunit-handoff-*", "-u", "podunit-rollout-*",
			"--since", quiet.Add(serving).Format("2006-01-02 15:04:05")).CombinedOutput()
		t.Logf("the hand-offs after that:\n%s", out)
	}
	// Nothing of an earlier generation left on disk: each pod directory
	// belongs to a pod that runs.
	current := map[string]bool{}
	for _, f := range []string{podshim.DefaultStateDir} {
		entries, _ := os.ReadDir(f)
		for _, e := range entries {
			if ns, pod, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".json"), "_"); ok {
				if st, err := podshim.ReadState(podshim.DefaultStateDir, ns, pod); err == nil {
					current[st.UID] = true
				}
			}
		}
	}
	waitForWithin(t, 3*time.Minute, "no pod directory of a gone pod", func() (bool, error) {
		entries, _ := os.ReadDir(podshim.DefaultPodRoot)
		var left []string
		for _, e := range entries {
			if !current[e.Name()] {
				left = append(left, e.Name())
			}
		}
		if len(left) > 0 {
			runSync(t) // collected a minute after their pod went
			return false, fmt.Errorf("%v", left)
		}
		return true, nil
	})
}

// tryPodAnnotation is an annotation of the pod as the status API shows it,
// or why it cannot be read now (the pod between two generations).
func tryPodAnnotation(name, key string) (string, error) {
	out, err := exec.Command(podunitBin, "get", "pods", name, "-o", "json").Output()
	if err != nil {
		return "", err
	}
	var list corev1.PodList
	if err := json.Unmarshal(out, &list); err != nil || len(list.Items) != 1 {
		return "", fmt.Errorf("get -o json: %v, %d pods", err, len(list.Items))
	}
	return list.Items[0].Annotations[key], nil
}

// podAnnotation is an annotation of the pod as the status API shows it.
func podAnnotation(t *testing.T, name, key string) string {
	t.Helper()
	return getPod(t, "default", name).Annotations[key]
}

// 50 idle pods for a while: the CPU time all of podunit uses, podshims,
// serve and the periodic syncs (which systemd runs and reaps: their time
// is in its children's), as a share of one core.
func TestLoadIdle(t *testing.T) {
	skipUnlessLoad(t)
	const prefix = "e2e-idle"
	n := loadEnv(t, "IDLE_PODS", 50)
	idle := time.Duration(loadEnv(t, "IDLE_SECONDS", 300)) * time.Second
	t.Cleanup(func() { removeAll(t, prefix) })
	for i := range n {
		name := fmt.Sprintf("%s-%02d", prefix, i)
		writeFile(t, name+".yaml", sleeper(name, ""))
	}
	waitForWithin(t, 10*time.Minute, fmt.Sprintf("%d pods active", n), func() (bool, error) {
		return activeUnits(t, prefix) == n, nil
	})
	time.Sleep(5 * time.Second) // the start's syncs and probes settle
	statusAPI(t, "/pods")
	serve := int(unitProps(t, "podunit-status.service")["MainPID"].(uint32))
	// The Services' daemons, which every node runs whether or not it has
	// Services: their rules and names wait for changes, idle.
	var daemons []int
	for _, unit := range []string{"podunit-proxy.service", "podunit-dns.service"} {
		if pid := int(unitProps(t, unit)["MainPID"].(uint32)); pid != 0 {
			daemons = append(daemons, pid)
		} else {
			t.Errorf("%s is not running: the idle figure would leave it out", unit)
		}
	}
	shims := mainPIDs(t, prefix)
	ticks := func() (shim, srv, svc, reaped, manager int64) {
		for _, pid := range shims {
			shim += procTicks(t, pid, false)
		}
		for _, pid := range daemons {
			svc += procTicks(t, pid, false)
		}
		return shim, procTicks(t, serve, false), svc, procTicks(t, 1, true), procTicks(t, 1, false)
	}
	s0, v0, d0, r0, m0 := ticks()
	time.Sleep(idle)
	s1, v1, d1, r1, m1 := ticks()
	pct := func(d int64) float64 { return float64(d) * 10 / float64(idle.Milliseconds()) * 100 }
	t.Logf("%d idle pods for %s: podunit %.3f %% of one core (podshims %.3f %%, serve %.3f %%, proxy and resolver %.3f %%, syncs %.3f %%); systemd itself %.3f %%",
		n, idle, pct(s1-s0+v1-v0+d1-d0+r1-r0), pct(s1-s0), pct(v1-v0), pct(d1-d0), pct(r1-r0), pct(m1-m0))
}

// procTicks is pid's CPU time, or that of its reaped children, in ticks.
func procTicks(t *testing.T, pid int, children bool) int64 {
	t.Helper()
	n, err := procstat.Ticks(pid, children)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
