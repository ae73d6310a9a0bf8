//go:build e2e

package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

// holdPod serves version at /v with busybox httpd as PID 1, which ignores
// SIGTERM (as many images' PID 1 does): every stop takes the whole grace
// period. Its readiness probe asks /v.
func holdPod(name, version string, grace int, annotations ...string) string {
	meta := "{name: " + name + "}"
	if len(annotations) > 0 {
		meta = fmt.Sprintf("{name: %s, annotations: {%s}}", name, strings.Join(annotations, ", "))
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: %s
spec:
  terminationGracePeriodSeconds: %d
  containers:
  - name: web
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "mkdir -p /www && echo %s >/www/v && exec httpd -f -p 80 -h /www"]
    readinessProbe:
      httpGet: {path: /v, port: 80}
      periodSeconds: 1
`, meta, grace, version)
}

// serves is what pod namespace/name answers at /v on its IP ("" when it
// does not answer).
func serves(t *testing.T, name string) string {
	t.Helper()
	st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
	if err != nil || st.Status.PodIP == "" {
		return ""
	}
	code, body, err := get("http://" + st.Status.PodIP + "/v")
	if err != nil || code != 200 {
		return ""
	}
	return strings.TrimSpace(body)
}

// listed watches `podunit get pods` until stop is called, and returns how
// often the pod was missing from it.
func listed(t *testing.T, pod string) (stop func() (looks, missing int)) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	var looks, missing int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(300 * time.Millisecond):
			}
			out, err := exec.Command(podunitBin, "get", "pods").Output()
			if err != nil {
				continue
			}
			looks++
			found := false
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) > 0 && f[0] == pod {
					found = true
				}
			}
			if !found {
				missing++
			}
		}
	}()
	return func() (int, int) {
		close(done)
		wg.Wait()
		return looks, missing
	}
}

// User story (#23): "I save a pod's file, and save it again a few seconds
// later, while the first edit is still replacing the pod (its old
// version takes its grace period to stop). The pod ends on my second
// edit as soon as the old version is down; it never runs the first edit,
// it is listed all along, and nothing fails on the way." Before, the
// hand-off started the first edit on a spec file the second sync had
// removed: podshim failed in a loop, the pod was not listed, and the
// second edit started only after the rollout deadline, about two minutes
// later.
func TestEditDuringReplacementEndsOnTheLatest(t *testing.T) {
	const grace = 10
	writeManifest(t, "e2e-hold.yaml", holdPod("e2e-hold", "v1", grace))
	unit := waitActive(t, "default", "e2e-hold")
	waitFor(t, "v1 serving", func() (bool, error) { return serves(t, "e2e-hold") == "v1", nil })
	v1 := unitGeneration(t, unit)
	stop := listed(t, "e2e-hold")

	begin := time.Now()
	writeFile(t, "e2e-hold.yaml", holdPod("e2e-hold", "v2", grace))
	waitFor(t, "v1 stopping for v2", func() (bool, error) { return activeState(unit) == "deactivating", nil })
	time.Sleep(3 * time.Second)
	writeFile(t, "e2e-hold.yaml", holdPod("e2e-hold", "v3", grace))
	third := time.Now()
	var generations []string
	waitForWithin(t, grace*time.Second+60*time.Second, "v3 serving", func() (bool, error) {
		if g := unitGeneration(t, unit); g != "" && !slices.Contains(generations, g) {
			generations = append(generations, g)
		}
		return serves(t, "e2e-hold") == "v3", nil
	})
	took := time.Since(third)
	looks, missing := stop()
	t.Logf("v3 served %.1f s after it was saved (the old generation's grace period: %d s); generations run: %v", took.Seconds(), grace, generations)

	// v3 is held to its readiness for min-ready-seconds, then the
	// hand-off ends.
	waitFor(t, "the hand-off's end", func() (bool, error) {
		return activeState(units.HandoffName(unit)) != "activating", nil
	})
	v3 := unitGeneration(t, unit)
	if len(generations) > 2 || generations[0] != v1 || generations[len(generations)-1] != v3 {
		t.Errorf("the pod ran generations %v: want v1 (%s), then v3 (%s) only", generations, v1, v3)
	}
	if missing > 0 {
		t.Errorf("podunit get pods did not list the pod %d times of %d", missing, looks)
	}
	if n := unitProps(t, unit)["NRestarts"]; n != uint32(0) {
		t.Errorf("podshim restarted %v times", n)
	}
	pods := journal(t, unit, begin)
	if strings.Contains(pods, "no such file or directory") {
		t.Errorf("a podshim started on a spec file that was gone:\n%s", pods)
	}
	handoff := journal(t, units.HandoffName(unit), begin)
	if !strings.Contains(handoff, "superseded") {
		t.Errorf("the hand-off does not say that v2 was superseded:\n%s", handoff)
	}
	if rec, err := os.ReadFile("/var/lib/podunit/rollouts/default_e2e-hold.json"); err == nil {
		t.Errorf("a rollout record is left after the replacement:\n%s", rec)
	}
}

// User story: "I edit a pod, and remove its file while the old version
// stops. The pod stops, and nothing starts it again."
func TestRemoveDuringReplacementStopsThePod(t *testing.T) {
	const grace = 5
	writeManifest(t, "e2e-gone.yaml", holdPod("e2e-gone", "v1", grace))
	unit := waitActive(t, "default", "e2e-gone")
	writeFile(t, "e2e-gone.yaml", holdPod("e2e-gone", "v2", grace))
	waitFor(t, "v1 stopping for v2", func() (bool, error) { return activeState(unit) == "deactivating", nil })
	os.Remove(filepath.Join(manifestDir, "e2e-gone.yaml"))
	waitGone(t, unit)
	waitFor(t, "the hand-off ended", func() (bool, error) {
		return activeState(units.HandoffName(unit)) != "activating", nil
	})
	exec.Command("systemctl", "start", "podunit-sync.service").Run()
	time.Sleep(3 * time.Second)
	if s := activeState(unit); s != "inactive" && s != "" {
		t.Fatalf("the removed pod's unit is %s", s)
	}
	left, _ := filepath.Glob("/run/podunit/specs/default_e2e-gone-*")
	if len(left) > 0 {
		t.Errorf("spec files left: %v", left)
	}
	if _, err := os.Stat("/var/lib/podunit/rollouts/default_e2e-gone.json"); err == nil {
		t.Errorf("a rollout record is left")
	}
}

// The interleaving test of the engine (units/engine), in the test bed:
// random edits (good, crash-looping, never ready, invalid), removals and
// re-adds, a hand-off or podshim killed with SIGKILL, the runtime
// restarted, played against real systemd, containerd (or CRI-O) and
// podshim, then the invariants checked. (A power cut mid-replacement is
// the reboot tests': make test-reboot.) The seed
// is printed; PODUNIT_E2E_INTERLEAVE_SEED repeats it and
// PODUNIT_E2E_INTERLEAVE_SEQUENCES sets the number of sequences (make
// test-resilience runs more).
func TestInterleavedEditsInTheTestBed(t *testing.T) {
	// Beside TestCronJobRunsOnSchedule, which waits for the clock: its
	// pod and hand-off are its own.
	t.Parallel()
	seed, _ := strconv.ParseUint(os.Getenv("PODUNIT_E2E_INTERLEAVE_SEED"), 10, 64)
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	sequences := 3
	if n, err := strconv.Atoi(os.Getenv("PODUNIT_E2E_INTERLEAVE_SEQUENCES")); err == nil {
		sequences = n
	}
	t.Logf("seed %d (repeat with PODUNIT_E2E_INTERLEAVE_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range sequences {
		t.Run(fmt.Sprintf("sequence-%d", i), func(t *testing.T) { interleaveInTestBed(t, rng) })
		if t.Failed() {
			t.Fatalf("sequence %d failed: seed %d", i, seed)
		}
	}
}

func interleaveInTestBed(t *testing.T, rng *rand.Rand) {
	const name, file = "e2e-mix", "e2e-mix.yaml"
	unit := units.ServiceName("default", name)
	n := 0
	var latest, latestKind string // the version the file serves now, and its kind
	annotations := []string{"podunit.io/rollout-deadline: 15s", "podunit.io/min-ready-seconds: \"1\""}
	write := func(kind string) {
		n++
		v := fmt.Sprintf("v%d-%s", n, kind)
		var content string
		switch kind {
		case "good":
			content = holdPod(name, v, 1+rng.IntN(4), annotations...)
		case "crash":
			content = strings.Replace(holdPod(name, v, 1, annotations...), "exec httpd", "exit 3; exec httpd", 1)
		case "never":
			content = strings.Replace(holdPod(name, v, 1, annotations...), "path: /v", "path: /nothing", 1)
		case "invalid":
			content = strings.Replace(holdPod(name, v, 1, annotations...), "periodSeconds", "periodSecond", 1)
		}
		writeFile(t, file, content)
		latestKind = kind
		if kind != "invalid" {
			latest = v
		}
		t.Logf("%s: %s", time.Now().Format("15:04:05.0"), v)
	}
	t.Cleanup(func() {
		os.Remove(filepath.Join(manifestDir, file))
		waitGone(t, unit)
	})
	write("good")
	waitFor(t, "the first version serving", func() (bool, error) { return serves(t, name) == latest, nil })
	present := true
	for range 4 + rng.IntN(3) {
		switch r := rng.IntN(10); {
		case r < 5:
			write([]string{"good", "good", "crash", "never", "invalid"}[rng.IntN(5)])
		case r < 6:
			if present {
				os.Remove(filepath.Join(manifestDir, file))
				present, latest, latestKind = false, "", "gone"
				t.Logf("%s: removed", time.Now().Format("15:04:05.0"))
			} else {
				write("good")
				present = true
			}
		case r < 7:
			exec.Command("systemctl", "kill", "-s", "KILL", units.HandoffName(unit)).Run()
			t.Logf("%s: hand-off killed", time.Now().Format("15:04:05.0"))
		case r < 8 && rng.IntN(3) == 0:
			// The runtime restarted under the pod (whichever runs here).
			rt := "containerd.service"
			if exec.Command("systemctl", "is-active", "--quiet", "crio.service").Run() == nil {
				rt = "crio.service"
			}
			exec.Command("systemctl", "restart", rt).Run()
			t.Logf("%s: %s restarted", time.Now().Format("15:04:05.0"), rt)
		case r < 8:
			exec.Command("systemctl", "kill", "--kill-whom=main", "-s", "KILL", unit).Run()
			t.Logf("%s: podshim killed", time.Now().Format("15:04:05.0"))
		default:
			write("good")
			present = true
		}
		time.Sleep(time.Duration(rng.IntN(4000)) * time.Millisecond)
	}
	if !present || latestKind == "invalid" || latestKind == "crash" || latestKind == "never" {
		// Every sequence ends on a good version: it must win.
		write("good")
	}
	waitForWithin(t, 3*time.Minute, "the latest version ("+latest+") serving", func() (bool, error) {
		return serves(t, name) == latest && activeState(unit) == "active" &&
			activeState(units.HandoffName(unit)) != "activating", nil
	})
	// Settled: the latest generation, and, once the sync that the
	// hand-off queued ran, nothing left over.
	gen := unitGeneration(t, unit)
	waitFor(t, "nothing left of the generations before", func() (bool, error) {
		specs, _ := filepath.Glob("/run/podunit/specs/default_" + name + "-*.json")
		for _, s := range specs {
			if !strings.Contains(s, gen) {
				return false, fmt.Errorf("spec file left beside the running generation %s: %s", gen, s)
			}
		}
		if rec, err := os.ReadFile("/var/lib/podunit/rollouts/default_" + name + ".json"); err == nil {
			return false, fmt.Errorf("a rollout record is left:\n%s", rec)
		}
		return true, nil
	})
	if pods := journal(t, unit, time.Now().Add(-5*time.Minute)); strings.Contains(pods, "no such file or directory") {
		t.Errorf("a podshim started on a spec file that was gone:\n%s", pods)
	}
}
