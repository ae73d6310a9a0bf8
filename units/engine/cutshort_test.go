package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
)

// Regression tests of replacements cut short, found by an adversarial
// review of their resumption against the simulated systemd.

// The power cut while a hand-off pulls an image that cannot be pulled (the
// old generation runs): after the boot the last ready generation runs
// again while the resumed hand-off pulls on; before, nothing ran.
func TestPowerCutWhilePullingRunsTheLastReady(t *testing.T) {
	sim, s, write := simulated(t)
	unit := units.ServiceName("default", "a")
	write(podA("good/img:v1", "0"))
	eventually(t, sim, "v1 ready", func() bool { st, _ := sim.unit(unit); return st.ActiveState == "active" })
	v1 := hashOf(mustUnit(sim, unit))
	write(podA("unpullable/img:v2", "0"))
	eventually(t, sim, "the pull failing", func() bool {
		rec, _ := s.Rollouts.Read("default", "a")
		return rec != nil && rec.Phase == PhaseImagePullBackOff
	})
	sim.powerCut()
	eventually(t, sim, "v1 running again while v2 is pulled", func() bool {
		st, ok := sim.unit(unit)
		rec, _ := s.Rollouts.Read("default", "a")
		return ok && hashOf(st) == v1 && st.ActiveState == "active" && rec != nil && rec.Phase == PhaseImagePullBackOff
	})
}

// A hand-off killed while it stops a generation superseded as it started
// (the unit still deactivating), the generation wanted now unpullable:
// the resumed hand-off finds the unit going down and runs the last ready
// generation again while it pulls; before, it took the stopping unit for
// one that keeps running, and nothing ran.
func TestKilledWhileStoppingSupersededRunsTheLastReady(t *testing.T) {
	sim, s, write := simulated(t)
	unit := units.ServiceName("default", "a")
	write(slowPodA("good/img:v1"))
	eventually(t, sim, "v1 ready", func() bool { st, _ := sim.unit(unit); return st.ActiveState == "active" })
	v1 := hashOf(mustUnit(sim, unit))
	write(slowPodA("never/img:v2"))
	eventually(t, sim, "v2 started", func() bool { return strings.Contains(sim.log.String(), "starts never/img:v2") })
	v2 := hashOf(mustUnit(sim, unit))
	write(slowPodA("unpullable/img:v3"))
	eventually(t, sim, "v2 stopping for v3", func() bool {
		st, _ := sim.unit(unit)
		return hashOf(st) == v2 && st.ActiveState == "deactivating"
	})
	sim.killHandoffs()
	eventually(t, sim, "v1 running again while v3 is pulled", func() bool {
		st, ok := sim.unit(unit)
		rec, _ := s.Rollouts.Read("default", "a")
		return ok && hashOf(st) == v1 && st.ActiveState == "active" && rec != nil && rec.Phase == PhaseImagePullBackOff
	})
}

// The file removed while the last ready generation runs again during a
// pull that began after the old generation was down: the hand-off ends
// (it dereferenced the pod its pull did not return, and crashed), the pod
// stops.
func TestRemovedWhilePullingAfterStop(t *testing.T) {
	sim, s, write := simulated(t)
	unit := units.ServiceName("default", "a")
	write(slowPodA("good/img:v1"))
	eventually(t, sim, "v1 ready", func() bool { st, _ := sim.unit(unit); return st.ActiveState == "active" })
	v1 := hashOf(mustUnit(sim, unit))
	write(slowPodA("good/img:v2"))
	eventually(t, sim, "v1 stopping", func() bool { st, _ := sim.unit(unit); return st.ActiveState == "deactivating" })
	write(slowPodA("unpullable/img:v3"))
	eventually(t, sim, "v1 back while v3 is pulled", func() bool {
		rec, _ := s.Rollouts.Read("default", "a")
		st, _ := sim.unit(unit)
		return rec != nil && rec.Phase == PhaseImagePullBackOff && st.ActiveState == "active" && hashOf(st) == v1
	})
	if err := os.Remove(filepath.Join(s.Sources[0].Dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	sim.requestSync()
	eventually(t, sim, "the pod gone, no hand-off left", func() bool {
		_, ok := sim.unit(unit)
		return !ok && len(sim.handoffs()) == 0
	})
}

// A replacement cut short, then the manifest edited to a pod that runs to
// completion (restartPolicy Never) before the sync: it is not gated (a
// fresh replacement would not be), so not rolled back to the generation
// before.
func TestResumedJobPodIsNotGated(t *testing.T) {
	sim, s, write := simulated(t)
	unit := units.ServiceName("default", "a")
	write(podA("good/img:v1", "0"))
	eventually(t, sim, "v1 ready", func() bool { st, _ := sim.unit(unit); return st.ActiveState == "active" })
	write(podA("never/img:v2", "0"))
	eventually(t, sim, "v2 started", func() bool { return strings.Contains(sim.log.String(), "starts never/img:v2") })
	sim.power.Lock() // no sync meanwhile
	sim.killHandoffs()
	for len(sim.handoffs()) > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	job := strings.Replace(podA("never/img:v3job", "0"), "spec:\n", "spec:\n  restartPolicy: Never\n", 1)
	if err := os.WriteFile(filepath.Join(s.Sources[0].Dir, "a.yaml"), []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	sim.power.Unlock()
	sim.requestSync()
	eventually(t, sim, "the Job pod started, nothing under way", func() bool {
		return strings.Contains(sim.log.String(), "starts never/img:v3job") && len(sim.handoffs()) == 0 && !sim.moving(nil)
	})
	if rec, _ := s.Rollouts.Read("default", "a"); rec != nil {
		t.Errorf("the Job pod (restartPolicy Never) was gated: record %+v\n%s", rec, sim.log)
	}
}

// A Deployment's rollout cut short by a power cut after its first replica
// went through the gate: after the boot every replica runs while the
// resumed rollout carries on (the ones it has not reached on their last
// ready generation), and it ends with no record left.
func TestResumedRolloutAfterPowerCutKeepsEveryReplicaUp(t *testing.T) {
	sim, s, _ := simulated(t)
	deploy := func(image string) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {podunit.io/rollout-deadline: "900ms", podunit.io/min-ready-seconds: "1", sim/stop-ms: "50"}
    spec:
      containers: [{name: c, image: "%s"}]
`, image)
	}
	write := func(content string) { saveManifest(t, sim, s, "web.yaml", content) }
	pods := func() map[string]string {
		sim.mu.Lock()
		defer sim.mu.Unlock()
		out := map[string]string{}
		for n, u := range sim.units {
			if strings.HasPrefix(n, "pod-") {
				out[n] = u.status.ActiveState
			}
		}
		return out
	}
	write(deploy("good/img:v1"))
	eventually(t, sim, "3 replicas active", func() bool {
		n := 0
		for _, st := range pods() {
			if st == "active" {
				n++
			}
		}
		return n == 3
	})
	write(deploy("good/img:v2"))
	eventually(t, sim, "a replica through the gate", func() bool {
		for _, r := range s.Rollouts.All() {
			if r.Phase == PhaseReady {
				return true
			}
		}
		return false
	})
	sim.powerCut()
	// The boot's sync starts every replica (on a loaded machine it may
	// take longer than the hand-offs take to begin): from then on at most
	// one may be down, the one the rollout is exchanging (a rollout goes
	// one replica at a time; the ones it has not reached run their last
	// ready generation).
	eventually(t, sim, "every replica started after the boot", func() bool { return len(pods()) == 3 })
	var down []string
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if u := pods(); len(sim.handoffs()) > 0 && len(u) < 2 {
			down = append(down, fmt.Sprint(u))
		}
	}
	if len(down) > 0 {
		t.Errorf("more than one replica was down while the resumed rollout ran (%d samples), e.g. %s\n%s", len(down), down[len(down)/2], sim.log)
	}
	eventually(t, sim, "the rollout done", func() bool { return len(s.Rollouts.All()) == 0 && len(pods()) == 3 && len(sim.handoffs()) == 0 })
}

// Removing pod web's record leaves pod web-1's saved spec: web-1's record
// needs it to roll back or to carry its replacement on.
func TestRemoveKeepsAnotherPodsSavedSpec(t *testing.T) {
	dir := t.TempDir()
	rs := Rollouts{Dir: filepath.Join(dir, "rollouts")}
	ucfg := generator.UnitConfig{SpecDir: filepath.Join(dir, "specs")}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
	spec := generator.SpecPath(ucfg, "default", "web-1", "aaaa")
	if err := os.MkdirAll(ucfg.SpecDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := podspec.WriteSpecFiles(spec, pod, podspec.Objects{}); err != nil {
		t.Fatal(err)
	}
	if err := rs.SaveSpec(spec, "default", "web-1", "aaaa"); err != nil {
		t.Fatal(err)
	}
	if err := rs.Write(&Rollout{Namespace: "default", Name: "web-1", Phase: PhaseStarting, Generation: "bbbb", Previous: "aaaa"}); err != nil {
		t.Fatal(err)
	}
	if err := rs.Remove("default", "web"); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(ucfg.SpecDir); err != nil { // a boot
		t.Fatal(err)
	}
	if _, err := rs.RestoreSpec(spec, "default", "web-1", "aaaa"); err != nil {
		t.Errorf("web-1's generation aaaa cannot be restored after web's record was removed: %v", err)
	}
}

// A pod waiting for its podunit.io/after dependency whose manifest is
// edited to drop it: its hand-off ends (it waited up to an hour for a unit
// the manifest no longer names) and the sync starts the new generation.
func TestEditedWhileWaitingForItsDependency(t *testing.T) {
	sim, s, _ := simulated(t)
	write := func(name, content string) { saveManifest(t, sim, s, name, content) }
	write("a.yaml", podA("never/img:v1", "0"))
	eventually(t, sim, "a started", func() bool { _, ok := sim.unit(units.ServiceName("default", "a")); return ok })
	podB := func(annotations, image string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n  annotations: {%s}\nspec:\n  containers: [{name: c, image: %q}]\n", annotations, image)
	}
	write("b.yaml", podB(`podunit.io/after: a, sim/stop-ms: "10"`, "good/img:v1"))
	handoff := units.HandoffName(units.ServiceName("default", "b"))
	eventually(t, sim, "b's hand-off waiting for a", func() bool { return slices.Contains(sim.handoffs(), handoff) })
	write("b.yaml", podB(`sim/stop-ms: "10"`, "good/img:v2"))
	eventually(t, sim, "b started without waiting for a", func() bool {
		st, ok := sim.unit(units.ServiceName("default", "b"))
		return ok && st.ActiveState == "active"
	})
}

// watchdogBlip is the simulated systemd as a resumed hand-off sees it when
// its first listing of the pod units catches the pod's unit in a watchdog
// stop, or a crash's stop-post (podshim hung or died; Restart=on-failure
// brings it back at once and the new podshim adopts the pod): deactivating
// with no job, then active again, never inactive or failed in between that
// a poll could see.
type watchdogBlip struct {
	*simSystemd
	unit string
	once sync.Once
}

func (w *watchdogBlip) ListUnitsByPatternsContext(ctx context.Context, states, patterns []string) ([]dbus.UnitStatus, error) {
	out, err := w.simSystemd.ListUnitsByPatternsContext(ctx, states, patterns)
	if len(patterns) == 1 && patterns[0] == units.ServicePattern {
		w.once.Do(func() {
			for i := range out {
				if out[i].Name == w.unit {
					out[i].ActiveState, out[i].SubState, out[i].JobType = "deactivating", "stop-watchdog", ""
				}
			}
		})
	}
	return out, err
}

// A hand-off killed while it holds v2 to its readiness; the resumed
// hand-off lists the pod's unit while podshim restarts (deactivating, no
// stop job). It must go on (restart v2, or hold it as it runs) instead of
// waiting for a stop nobody asked for.
// (Found by an adversarial review: the resumed hand-off waited for a
// stop it had not asked for, for ever.)
func TestResumedHandoffNotStuckOnACrashRestart(t *testing.T) {
	sim, s, write := simulated(t)
	unit := units.ServiceName("default", "a")
	write(podA("good/img:v1", "0"))
	eventually(t, sim, "v1 ready", func() bool { st, _ := sim.unit(unit); return st.ActiveState == "active" })
	v1 := hashOf(mustUnit(sim, unit))
	write(podA("good/img:v2", "30")) // held to its readiness for 30 s
	eventually(t, sim, "v2 held to its readiness", func() bool {
		st, _ := sim.unit(unit)
		rec, _ := s.Rollouts.Read("default", "a")
		return hashOf(st) != v1 && st.ActiveState == "active" && rec != nil && rec.Phase == PhaseStarting
	})
	plain := sim.replacer
	blip := &watchdogBlip{simSystemd: sim, unit: unit}
	// (the next hand-off's Replacer; no hand-off reads it now)
	sim.replacer = func() *Replacer { r := plain(); r.Manager = blip; return r }
	sim.killHandoffs()
	sim.requestSync() // as the killed hand-off's ExecStopPost= does
	eventually(t, sim, "the resumed hand-off past its start", func() bool {
		log := sim.log.String()
		return strings.Count(log, "starts good/img:v2") >= 2 || strings.Contains(log, "runs already; it is held")
	})
}
