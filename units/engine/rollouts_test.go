package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
)

// A pod whose new generation was rolled back runs its last ready
// generation, pinned to its images, at every sync (a reboot empties the
// spec directory: the kept copy is used), and tries the manifest again
// once it changes.
func TestRolledBackPodStaysOnItsLastReadyGeneration(t *testing.T) {
	s, m, _, out := newSyncer(t)
	s.Rollouts = Rollouts{Dir: t.TempDir()}
	s.StatePath = filepath.Join(t.TempDir(), "sync.json") // what was reported is remembered
	ctx := context.Background()
	dir := s.Sources[0].Dir
	generation := func() string {
		_, _, hash, _ := units.ParseDescription(m.Units["pod-web.service"].Description)
		return hash
	}
	write(t, dir, "web.yaml", pod("web", "img:1"))
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	good := generation()
	goodSpec := generator.SpecPath(s.UnitConfig, "default", "web", good)
	kept := filepath.Join(t.TempDir(), filepath.Base(goodSpec))
	p0, _ := podspec.ReadSpec(goodSpec)
	podspec.WriteSpecFiles(kept, p0, podspec.Objects{})
	write(t, dir, "web.yaml", pod("web", "img:2"))
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	// What the hand-off keeps when it begins replacing a ready generation.
	if err := s.Rollouts.SaveSpec(kept, "default", "web", good); err != nil {
		t.Fatal(err)
	}
	bad := generation()
	if bad == good {
		t.Fatal("the edit did not replace the pod")
	}
	// The hand-off found it not ready and rolled back; a reboot emptied
	// the spec directory since.
	s.Rollouts.Write(&Rollout{Namespace: "default", Name: "web", Phase: PhaseRolledBack, Trigger: TriggerManifest,
		Generation: bad, Previous: good, PreviousImages: map[string]string{"img:1": "sha256:good"}, Reason: "CrashLoopBackOff"})
	os.Remove(generator.SpecPath(s.UnitConfig, "default", "web", good))
	for i := range 2 {
		if err := runSync(ctx, s); err != nil {
			t.Fatal(err)
		}
		if g := generation(); g != good {
			t.Fatalf("sync %d: the pod runs generation %s, want the rolled-back-to %s\n%s", i, g, good, out)
		}
	}
	argv := execStart(t, m, "pod-web.service")
	pins := s.Rollouts.PinsPath("default", "web")
	if !slices.Contains(argv, "--pins") || !slices.Contains(argv, pins) {
		t.Errorf("the rolled-back unit's podshim is not pinned: %q", argv)
	}
	p, err := podspec.ReadPins(pins)
	if err != nil || p.Generation != good || p.Images["img:1"] != "sha256:good" {
		t.Errorf("pins %+v, %v", p, err)
	}
	if n := strings.Count(out.String(), "was rolled back"); n != 1 {
		t.Errorf("the rollback was reported %d times in three syncs, want once:\n%s", n, out)
	}
	// Both specs stay: the running one, and the manifest's for the status.
	for _, h := range []string{good, bad} {
		if _, err := os.Stat(generator.SpecPath(s.UnitConfig, "default", "web", h)); err != nil {
			t.Errorf("spec of generation %s: %v", h, err)
		}
	}

	write(t, dir, "web.yaml", pod("web", "img:3"))
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if g := generation(); g == good || g == bad {
		t.Errorf("after a new edit the pod runs %s (good %s, bad %s)", g, good, bad)
	}
	if rec, _ := s.Rollouts.Read("default", "web"); rec != nil {
		t.Errorf("the rollback record outlived the manifest change: %+v", rec)
	}
	if _, err := os.Stat(pins); err == nil {
		t.Error("the pins outlived the manifest change")
	}
}

// execStart is a unit's ExecStart as the fake manager was given it.
func execStart(t *testing.T, m interface{ ExecStart(string) []string }, name string) []string {
	t.Helper()
	return m.ExecStart(name)
}

func TestRolloutCounters(t *testing.T) {
	rs := Rollouts{Dir: filepath.Join(t.TempDir(), "rollouts")}
	done := make(chan bool)
	for range 8 {
		go func() {
			for range 10 {
				if err := rs.Count(CounterRolloutsReady); err != nil {
					t.Error(err)
				}
			}
			done <- true
		}()
	}
	for range 8 {
		<-done
	}
	if n := rs.Counters()[CounterRolloutsReady]; n != 80 {
		t.Errorf("80 increments from 8 goroutines counted %d", n)
	}
	if got := fmt.Sprint(rs.All()); got != "map[]" {
		t.Errorf("the counters file is taken for a record: %s", got)
	}
}
