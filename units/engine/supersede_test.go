package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"

	"github.com/podunit/podunit/units"
)

// Regression tests of replacements superseded by an edit, found by a
// review of the hand-off against the simulated systemd of the
// interleaving test.

// simulated is one pod "a" under the real sync and hand-offs, with a
// simulated systemd; write saves its manifest and asks for a sync.
func simulated(t *testing.T) (sim *simSystemd, s *Syncer, write func(content string)) {
	t.Helper()
	sim, s = simulatedSync(t)
	write = func(content string) { saveManifest(t, sim, s, "a.yaml", content) }
	return sim, s, write
}

// saveManifest writes file name of the manifest directory and asks for a
// sync, as the path unit does.
func saveManifest(t *testing.T, sim *simSystemd, s *Syncer, name, content string) {
	t.Helper()
	if err := os.MkdirAll(s.Sources[0].Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Sources[0].Dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	sim.requestSync()
}

// slowPodA is podA whose stop takes 800 ms: an edit can land while it stops.
func slowPodA(image string) string {
	return strings.Replace(podA(image, "0"), `sim/stop-ms: "100"`, `sim/stop-ms: "800"`, 1)
}

func podA(image, minReady string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: a
  annotations: {podunit.io/rollout-deadline: "900ms", podunit.io/min-ready-seconds: "%s", sim/stop-ms: "100"}
spec:
  containers: [{name: c, image: "%s"}]
`, minReady, image)
}

// eventually waits until cond, for 15 s.
func eventually(t *testing.T, sim *simSystemd, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; units: %s\n\nlog:\n%s", what, sim.snapshot(), sim.log)
		}
	}
}

func serialOf(sim *simSystemd, name string) int {
	sim.mu.Lock()
	defer sim.mu.Unlock()
	if u, ok := sim.units[name]; ok {
		return u.serial
	}
	return -1
}

// An edit reverted while the hand-off pulls the edited generation's
// images (here: they cannot be pulled) leaves the running generation,
// which the manifest asks for again, as it is: it is not restarted.
func TestRevertDuringPullLeavesThePodAlone(t *testing.T) {
	sim, _, write := simulated(t)
	unit := units.ServiceName("default", "a")
	good := podA("good/img:v1", "0")
	write(good)
	eventually(t, sim, "v1 ready", func() bool { st, _ := sim.unit(unit); return st.ActiveState == "active" })
	before := serialOf(sim, unit)
	write(podA("unpullable/img:v2", "0"))
	eventually(t, sim, "the pull failing", func() bool { return strings.Contains(sim.log.String(), "not started: pull") })
	write(good)
	eventually(t, sim, "the hand-off's end", func() bool { return len(sim.handoffs()) == 0 && !sim.moving(nil) })
	if after := serialOf(sim, unit); after != before {
		t.Errorf("the running generation was restarted (start %d, then %d)\n%s", before, after, sim.log)
	}
}

// A generation that was ready, then superseded while it is held to its
// readiness, is not one to come back to: the newest one is gated against
// the last generation that stayed ready. Here the held one crashes soon
// after its start and the newest crash-loops: the pod ends on v1, rolled
// back, not on either of them.
func TestSupersededWhileHeldKeepsTheLastReadyGeneration(t *testing.T) {
	sim, s, write := simulated(t)
	unit := units.ServiceName("default", "a")
	write(podA("good/img:v1", "2"))
	eventually(t, sim, "v1 ready", func() bool { st, _ := sim.unit(unit); return st.ActiveState == "active" })
	v1 := hashOf(mustUnit(sim, unit))
	write(podA("good/img:v2-late", "2"))
	eventually(t, sim, "v2 ready", func() bool {
		st, _ := sim.unit(unit)
		return strings.Contains(sim.log.String(), "starts good/img:v2-late") && st.ActiveState == "active"
	})
	write(podA("crash/img:v3", "2"))
	eventually(t, sim, "v3 rolled back", func() bool {
		rec, _ := s.Rollouts.Read("default", "a")
		return rec != nil && rec.Phase == PhaseRolledBack && len(sim.handoffs()) == 0
	})
	rec, _ := s.Rollouts.Read("default", "a")
	eventually(t, sim, "v1 running", func() bool { st, _ := sim.unit(unit); return st.ActiveState == "active" })
	if got := hashOf(mustUnit(sim, unit)); got != v1 || rec.Previous != v1 {
		t.Errorf("the pod runs %s, rolled back to %s: want v1 (%s)\n%s", got, rec.Previous, v1, sim.log)
	}
}

func mustUnit(sim *simSystemd, name string) dbus.UnitStatus {
	st, _ := sim.unit(name)
	return st
}

// A hand-off killed (SIGKILL) while the new generation is held to its
// readiness does not let that generation through the gate: the next sync
// carries the replacement on from its record, and the generation, which
// crash-loops, is rolled back to the last ready one.
func TestKilledHandoffKeepsTheGate(t *testing.T) {
	sim, s, write := simulated(t)
	unit := units.ServiceName("default", "a")
	write(podA("good/img:v1", "0"))
	eventually(t, sim, "v1 ready", func() bool { st, _ := sim.unit(unit); return st.ActiveState == "active" })
	v1 := hashOf(mustUnit(sim, unit))
	write(podA("crash/img:v2", "0"))
	eventually(t, sim, "v2 started", func() bool { return strings.Contains(sim.log.String(), "starts crash/img:v2") })
	sim.killHandoffs()
	checkRolledBackTo(t, sim, s, v1)
}

// The machine powered off while a replacement holds the new generation to
// its readiness: at boot the new generation starts gated against the last
// ready one (the record is on disk), and is rolled back when it is not
// ready.
func TestPowerCutMidReplacementKeepsTheGate(t *testing.T) {
	sim, s, write := simulated(t)
	unit := units.ServiceName("default", "a")
	write(podA("good/img:v1", "0"))
	eventually(t, sim, "v1 ready", func() bool { st, _ := sim.unit(unit); return st.ActiveState == "active" })
	v1 := hashOf(mustUnit(sim, unit))
	write(podA("never/img:v2", "0"))
	eventually(t, sim, "v2 started", func() bool { return strings.Contains(sim.log.String(), "starts never/img:v2") })
	sim.powerCut()
	checkRolledBackTo(t, sim, s, v1)
}

// checkRolledBackTo: pod a ends on generation v1, active, with a
// RolledBack record naming it.
func checkRolledBackTo(t *testing.T, sim *simSystemd, s *Syncer, v1 string) {
	t.Helper()
	unit := units.ServiceName("default", "a")
	eventually(t, sim, "the rollback to v1", func() bool {
		rec, _ := s.Rollouts.Read("default", "a")
		st, _ := sim.unit(unit)
		return rec != nil && rec.Phase == PhaseRolledBack && len(sim.handoffs()) == 0 && st.ActiveState == "active"
	})
	rec, _ := s.Rollouts.Read("default", "a")
	if got := hashOf(mustUnit(sim, unit)); got != v1 || rec.Previous != v1 {
		t.Errorf("the pod runs %s, rolled back to %s: want v1 (%s)\n%s", got, rec.Previous, v1, sim.log)
	}
}

// An edit to an image that cannot be pulled, made while the old
// generation stops for another edit, is not a rollback: the last ready
// generation runs again while the hand-off pulls with back-off
// (ImagePullBackOff), and an edit to a good one ends it.
func TestUnpullableAfterStopPullsWhileTheLastReadyRuns(t *testing.T) {
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
	write(slowPodA("good/img:v4"))
	eventually(t, sim, "v4 ready, no record", func() bool {
		rec, _ := s.Rollouts.Read("default", "a")
		st, _ := sim.unit(unit)
		return rec == nil && st.ActiveState == "active" && strings.Contains(sim.log.String(), "starts good/img:v4") && hashOf(st) != v1
	})
	if strings.Contains(sim.log.String(), "rolled back") {
		t.Errorf("a pull's failure was taken for the new generation's:\n%s", sim.log)
	}
}

// A pod that waits for another to be ready (podunit.io/after) and whose
// file is removed meanwhile is not started when the other one gets
// ready, and its hand-off does not wait on: it ends at once.
func TestRemovedWhileWaitingForItsDependency(t *testing.T) {
	sim, s, _ := simulated(t)
	write := func(name, content string) { saveManifest(t, sim, s, name, content) }
	write("a.yaml", podA("never/img:v1", "0"))
	eventually(t, sim, "a started", func() bool { _, ok := sim.unit(units.ServiceName("default", "a")); return ok })
	write("b.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: b
  annotations: {podunit.io/after: a, sim/stop-ms: "10"}
spec:
  containers: [{name: c, image: "good/img:v1"}]
`)
	handoff := units.HandoffName(units.ServiceName("default", "b"))
	eventually(t, sim, "b's hand-off waiting for a", func() bool { return slices.Contains(sim.handoffs(), handoff) })
	if err := os.Remove(filepath.Join(s.Sources[0].Dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	sim.requestSync()
	eventually(t, sim, "b's hand-off ended", func() bool { return !slices.Contains(sim.handoffs(), handoff) })
	if _, ok := sim.unit(units.ServiceName("default", "b")); ok {
		t.Errorf("b was started after its file was removed:\n%s", sim.log)
	}
}
