package engine

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

// The interleaving test drives the real sync and the real hand-offs
// against a simulated systemd whose jobs take time, as systemd's do: a
// pod's stop takes its grace period, its start becomes ready later, never,
// or after a crash loop, a hand-off runs beside the syncs, and every sync
// a hand-off queues runs after it. A random sequence of edits (good,
// crash-looping, never ready, unpullable, invalid), deletions and
// re-adds, syncs and killed hand-offs is played, and then the invariants
// are checked (docs/reliability.md, "Replacements"):
//
//   - no pod unit ever starts on a spec file that is gone;
//   - once everything settled, each pod runs the latest valid manifest, or
//     its last ready generation with a RolledBack record naming the
//     latest, or (latest invalid) a generation that was valid;
//   - a deleted pod has no unit, no spec file, no record;
//   - no hand-off is left running (but one that pulls an image that
//     cannot be pulled, while the old generation runs on);
//   - no spec file but the wanted ones and the loaded units', and every
//     record parses and belongs to a rollback or a hand-off under way.
//
// -interleave.seed repeats a failure; -interleave.sequences sets how many
// sequences run (make test-resilience runs many).
var (
	interleaveSeed      = flag.Uint64("interleave.seed", 0, "seed of the interleaving test (0: from the clock)")
	interleaveSequences = flag.Int("interleave.sequences", 8, "sequences the interleaving test plays")
)

func TestInterleavedEditsEndOnTheLatestManifest(t *testing.T) {
	seed := *interleaveSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (repeat with -interleave.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range *interleaveSequences {
		s := uint64(rng.Int64())
		if !t.Run(fmt.Sprintf("sequence-%d", i), func(t *testing.T) { playSequence(t, s) }) {
			t.Fatalf("sequence %d failed: repeat it with -interleave.seed=%d -interleave.sequences=%d -run 'TestInterleaved/sequence-%d$'", i, seed, i+1, i)
		}
	}
}

// kinds of generation a manifest edit writes.
const (
	genGood       = "good"       // ready soon after it starts
	genCrash      = "crash"      // its container crash-loops: never ready
	genNever      = "never"      // runs, never passes its readiness probe
	genUnpullable = "unpullable" // its image cannot be pulled
	genInvalid    = "invalid"    // the file does not validate
)

// manifestOf writes pod name's manifest of generation n of kind, whose
// stop takes stopMs.
func manifestOf(name, kind string, n, stopMs int) string {
	if kind == genInvalid {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n  containers: [{name: c, image: x, imagePullPolcy: Always}]\n"
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  annotations: {podunit.io/rollout-deadline: "900ms", podunit.io/min-ready-seconds: "0", sim/stop-ms: "%d"}
spec:
  containers: [{name: c, image: "%s/img:v%d"}]
`, name, stopMs, kind, n)
}

// simPod is what the test knows of one pod's manifest.
type simPod struct {
	name    string
	present bool
	latest  string   // the kind of the file's content now
	hash    string   // config hash of the latest valid content ("" while invalid or gone)
	valid   []string // every valid generation written
	good    map[string]bool
}

func playSequence(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	sim, s := simulatedSync(t)

	pods := []*simPod{{name: "a", good: map[string]bool{}}, {name: "b", good: map[string]bool{}}}
	n := 0
	write := func(p *simPod, kind string) {
		n++
		content := manifestOf(p.name, kind, n, 20+rng.IntN(300))
		path := filepath.Join(s.Sources[0].Dir, p.name+".yaml")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		p.present, p.latest, p.hash = true, kind, ""
		if kind != genInvalid {
			set, err := generator.ReadDir(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range set.Pods {
				if q.Name() == p.name {
					p.hash = q.Hash
				}
			}
			p.valid = append(p.valid, p.hash)
			p.good[p.hash] = kind == genGood
		}
		sim.logf("test: %s.yaml is now %s (generation %s)", p.name, kind, p.hash)
	}
	remove := func(p *simPod) {
		os.Remove(filepath.Join(s.Sources[0].Dir, p.name+".yaml"))
		p.present, p.hash = false, ""
		sim.logf("test: %s.yaml removed", p.name)
	}

	kinds := []string{genGood, genGood, genGood, genCrash, genNever, genUnpullable, genInvalid}
	for _, p := range pods {
		write(p, genGood)
	}
	sim.requestSync()
	for range 6 + rng.IntN(6) {
		p := pods[rng.IntN(len(pods))]
		switch r := rng.IntN(10); {
		case r < 6:
			write(p, kinds[rng.IntN(len(kinds))])
		case r < 7 && p.present:
			remove(p)
		case r < 8 && rng.IntN(3) == 0:
			sim.powerCut()
		case r < 8:
			sim.killHandoffs()
		default:
			write(p, genGood)
		}
		if rng.IntN(3) > 0 {
			sim.requestSync() // the path unit; else the periodic sync finds it
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
	}
	// A pod whose latest image cannot be pulled pulls on, its old
	// generation running: checked, then edited to a good one, which must
	// end the pull at once.
	settleSim(t, sim, pods)
	for _, p := range pods {
		switch {
		case !p.present:
		case p.latest == genUnpullable:
			checkPulling(t, sim, s, p)
		case p.latest == genInvalid:
			// The last good generation runs: the one the syncs last
			// wanted, a valid one; none when no sync saw the file valid
			// since it was added. (A pod whose last valid generation
			// cannot be pulled: its hand-off pulls it while the one
			// before runs.)
			st, ok := sim.unit(units.ServiceName("default", p.name))
			want := sim.lastWanted("default/" + p.name)
			if ok && !slices.Contains(p.valid, hashOf(st)) || !ok && want != "" {
				t.Errorf("pod %s: file invalid, runs %q, the last sync wanted %q (valid generations: %v)", p.name, hashOf(st), want, p.valid)
			}
		default:
			continue
		}
		write(p, genGood)
		sim.requestSync()
	}
	settleSim(t, sim, pods)
	checkSettled(t, sim, s, pods)
	if v := sim.violations(); len(v) > 0 {
		t.Fatalf("violations:\n%s\n\nlog:\n%s", strings.Join(v, "\n"), sim.log)
	}
}

// simulatedSync is the real sync, with the real hand-offs, against a
// simulated systemd, syncing at each request (the path unit) and every 2 s
// (the timer) until the test ends.
func simulatedSync(t *testing.T) (*simSystemd, *Syncer) {
	t.Helper()
	dir := t.TempDir()
	sim := newSimSystemd(t)
	s := &Syncer{
		HandoffCmd: []string{"/usr/bin/podunit", "handoff"},
		Sources:    []generator.Source{{Dir: filepath.Join(dir, "manifests")}},
		UnitConfig: generator.UnitConfig{
			PodshimPath: "/usr/libexec/podunit/podshim", SpecDir: filepath.Join(dir, "run", "specs"),
			CRIEndpoint: "unix:///run/containerd/containerd.sock", CgroupDriver: units.CgroupDriverSystemd,
		},
		Manager:  sim,
		Runtime:  critest.NewFakeRuntimeService(),
		Rollouts: Rollouts{Dir: filepath.Join(dir, "rollouts")},
		Report:   &testReporter{w: sim.log},
	}
	sim.replacer = func() *Replacer {
		return &Replacer{Manager: sim, Images: simImages{}, UnitConfig: s.UnitConfig, Rollouts: s.Rollouts,
			Report: &testReporter{w: sim.log}, PullBackoff: func(int) time.Duration { return 300 * time.Millisecond }}
	}
	sim.sync = s
	ctx, cancel := context.WithCancel(context.Background())
	syncs := make(chan struct{})
	go func() { sim.runSyncs(ctx); close(syncs) }()
	t.Cleanup(func() {
		cancel()
		<-syncs
		sim.stop()
	})
	return sim, s
}

// settleSim waits until no hand-off runs (but those pulling what cannot be
// pulled), no pod unit starts or stops, and a sync ran after that.
func settleSim(t *testing.T, sim *simSystemd, pods []*simPod) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for quiet := 0; quiet < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("did not settle in 30 s: %v\n\nlog:\n%s", sim.snapshot(), sim.log)
		}
		time.Sleep(150 * time.Millisecond)
		if sim.moving(pods) {
			quiet = 0
			continue
		}
		sim.requestSync()
		quiet++
	}
}

// checkPulling: p's hand-off pulls on, the generation before it runs; or,
// when the pod started on that generation (no generation ran before), it
// runs it (podshim pulls on) and no hand-off runs.
func checkPulling(t *testing.T, sim *simSystemd, s *Syncer, p *simPod) {
	t.Helper()
	rec, err := s.Rollouts.Read("default", p.name)
	st, loaded := sim.unit(units.ServiceName("default", p.name))
	switch {
	case err != nil:
		t.Errorf("pod %s: record: %v", p.name, err)
	case rec == nil:
		if !loaded || hashOf(st) != p.hash {
			t.Errorf("pod %s: no hand-off pulls %s, and the unit runs %q", p.name, p.hash, hashOf(st))
		}
	case rec.Phase == PhaseImagePullBackOff && rec.Generation == p.hash && rec.Previous != "":
		// Pulled while the generation it replaces runs; when the
		// unpullable generation became the wanted one only after the old
		// one was down (an edit during the grace period), the last ready
		// one runs again meanwhile, rather than nothing.
		if !loaded || hashOf(st) == p.hash {
			t.Errorf("pod %s: its hand-off pulls %s, and the unit runs %q", p.name, p.hash, hashOf(st))
		}
	case rec.Phase != PhaseImagePullBackOff || rec.Generation != p.hash:
		t.Errorf("pod %s: record %+v, want ImagePullBackOff for %s", p.name, rec, p.hash)
	case loaded && hashOf(st) == p.hash:
		t.Errorf("pod %s runs %s, whose image its hand-off cannot pull", p.name, p.hash)
	}
}

func hashOf(st dbus.UnitStatus) string {
	_, _, hash, _ := units.ParseDescription(st.Description)
	return hash
}

// checkSettled checks the invariants once everything settled.
func checkSettled(t *testing.T, sim *simSystemd, s *Syncer, pods []*simPod) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
	}
	keep := map[string]bool{}
	for _, p := range pods {
		name := units.ServiceName("default", p.name)
		st, loaded := sim.unit(name)
		rec, err := s.Rollouts.Read("default", p.name)
		if err != nil {
			fail("pod %s: record does not parse: %v", p.name, err)
		}
		if !p.present {
			if loaded {
				fail("pod %s: its file is gone, its unit is %s", p.name, st.ActiveState)
			}
			if rec != nil {
				fail("pod %s: its file is gone, a record is left: %+v", p.name, rec)
			}
			continue
		}
		if !loaded {
			fail("pod %s: no unit (latest %s %s)", p.name, p.latest, p.hash)
			continue
		}
		running := hashOf(st)
		keep[running] = true
		switch {
		case p.latest == genInvalid:
			if !slices.Contains(p.valid, running) {
				fail("pod %s: file invalid, runs %s, which was never valid (valid: %v)", p.name, running, p.valid)
			}
		case running == p.hash:
			if rec != nil {
				fail("pod %s: runs its latest generation, a record is left: %+v", p.name, rec)
			}
			if p.latest == genGood && st.ActiveState != "active" {
				fail("pod %s: runs its latest good generation, %s (%s)", p.name, st.ActiveState, st.SubState)
			}
		default:
			// Not the latest: only a rollback of the latest to a good one.
			if rec == nil || rec.Phase != PhaseRolledBack || rec.Generation != p.hash || rec.Previous != running {
				fail("pod %s: runs %s, the manifest asks for %s (%s); record %+v", p.name, running, p.hash, p.latest, rec)
			} else if !p.good[running] || st.ActiveState != "active" {
				fail("pod %s: rolled back to %s, which is not a ready one (%s)", p.name, running, st.ActiveState)
			}
			keep[p.hash] = true
		}
		if spec := sim.specOf(name); spec != "" {
			if _, err := os.Stat(spec); err != nil {
				fail("pod %s: its unit runs a spec file that is gone: %v", p.name, err)
			}
		}
		if p.hash != "" {
			keep[p.hash] = true
		}
	}
	if busy := sim.handoffs(); len(busy) > 0 {
		fail("hand-offs left running: %v", busy)
	}
	specs, _ := filepath.Glob(filepath.Join(s.UnitConfig.SpecDir, "*.json"))
	for _, f := range specs {
		hash := strings.TrimSuffix(f[strings.LastIndexByte(f, '-')+1:], ".json")
		if !keep[hash] {
			fail("spec file left: %s", filepath.Base(f))
		}
	}
	if t.Failed() {
		t.Logf("units: %v\n\nlog:\n%s", sim.snapshot(), sim.log)
	}
}

// simImages is a registry where images of unpullable generations are
// missing; every other image is pulled at once.
type simImages struct{}

func (simImages) ImageStatus(context.Context, *runtimeapi.ImageSpec, bool) (*runtimeapi.ImageStatusResponse, error) {
	return &runtimeapi.ImageStatusResponse{}, nil
}

func (simImages) PullImage(_ context.Context, image *runtimeapi.ImageSpec, _ *runtimeapi.AuthConfig, _ *runtimeapi.PodSandboxConfig) (string, error) {
	if strings.HasPrefix(image.Image, genUnpullable+"/") {
		return "", fmt.Errorf("pull %s: not found", image.Image)
	}
	return "sha256:" + image.Image, nil
}

// simSystemd is systemd as the sync and hand-offs see it, with jobs that
// take time: pod units become ready (or not) after they start, and take
// their grace period to stop; hand-off and rollout units run `podunit
// handoff` (the real Replacer) beside everything else; the sync service
// runs once at a time, again for each start asked while it ran.
type simSystemd struct {
	t        *testing.T
	replacer func() *Replacer
	sync     *Syncer
	log      *syncBuffer

	mu       sync.Mutex
	units    map[string]*simUnit
	serial   int
	bad      []string
	kills    map[string]context.CancelFunc
	running  sync.WaitGroup
	syncs    chan struct{}
	syncBusy bool
	wanted   map[string]string // what the last sync wanted
	// power is held by a sync while it runs, and by a power cut.
	power sync.Mutex
}

// lastWanted is the generation the last sync wanted pod key to run ("":
// none).
func (m *simSystemd) lastWanted(key string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.wanted[key]
}

type simUnit struct {
	status dbus.UnitStatus
	spec   string // a pod unit's spec file
	serial int    // which start of the unit this is
}

func newSimSystemd(t *testing.T) *simSystemd {
	return &simSystemd{t: t, log: &syncBuffer{}, units: map[string]*simUnit{}, kills: map[string]context.CancelFunc{}, syncs: make(chan struct{}, 1)}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)

func (m *simSystemd) logf(format string, args ...any) {
	fmt.Fprintf(m.log, "%s "+format+"\n", append([]any{time.Now().Format("05.000")}, args...)...)
}

func (m *simSystemd) violate(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bad = append(m.bad, fmt.Sprintf(format, args...))
}

func (m *simSystemd) violations() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.bad)
}

func (m *simSystemd) requestSync() {
	select {
	case m.syncs <- struct{}{}:
	default:
	}
}

// runSyncs is podunit-sync.service with its path unit and timer: a sync
// at each request, and every 2 s.
func (m *simSystemd) runSyncs(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.syncs:
		case <-tick.C:
		}
		m.power.Lock()
		m.mu.Lock()
		m.syncBusy = true
		m.mu.Unlock()
		if _, err := m.sync.Run(ctx); err != nil && ctx.Err() == nil {
			m.violate("sync failed: %v", err)
		}
		w, _ := readWanted(WantedPath(m.sync.UnitConfig))
		m.mu.Lock()
		m.syncBusy = false
		if w != nil {
			m.wanted = w.Pods
		}
		m.mu.Unlock()
		m.power.Unlock()
	}
}

// stop ends every hand-off and waits for them.
func (m *simSystemd) stop() {
	m.killHandoffs()
	m.running.Wait()
}

// killHandoffs ends every hand-off under way, as SIGKILL would (the unit
// fails; what it left is the next sync's).
func (m *simSystemd) killHandoffs() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, kill := range m.kills {
		fmt.Fprintf(m.log, "test: killing %s\n", name)
		kill()
	}
}

// powerCut is the machine going down at once and booting: every hand-off
// killed, every unit gone, /run (the spec files, the wanted file) empty;
// the records in /var/lib stay. (Between two syncs: a sync is part of
// the boot.)
func (m *simSystemd) powerCut() {
	m.power.Lock()
	defer m.power.Unlock()
	m.mu.Lock()
	fmt.Fprintf(m.log, "test: power cut\n")
	for _, kill := range m.kills {
		kill()
	}
	m.mu.Unlock()
	m.running.Wait()
	m.mu.Lock()
	clear(m.units)
	m.wanted = nil
	m.mu.Unlock()
	if err := os.RemoveAll(m.sync.UnitConfig.SpecDir); err != nil {
		m.t.Error(err)
	}
	if err := os.Remove(WantedPath(m.sync.UnitConfig)); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.t.Error(err)
	}
	m.requestSync() // the boot's sync
}

func (m *simSystemd) unit(name string) (dbus.UnitStatus, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.units[name]
	if !ok {
		return dbus.UnitStatus{}, false
	}
	return u.status, true
}

func (m *simSystemd) specOf(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.units[name]; ok {
		return u.spec
	}
	return ""
}

func (m *simSystemd) handoffs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for name := range m.kills {
		out = append(out, name)
	}
	return out
}

func (m *simSystemd) snapshot() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for name, u := range m.units {
		out = append(out, fmt.Sprintf("%s %s/%s %q", name, u.status.ActiveState, u.status.SubState, u.status.Description))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// moving tells whether anything is under way: a sync, a hand-off (but
// one pulling an image that cannot be pulled: it pulls on until the
// manifest changes), a pod unit stopping.
func (m *simSystemd) moving(pods []*simPod) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.syncBusy || len(m.syncs) > 0 {
		return true
	}
	pulling := map[string]bool{}
	for _, rec := range m.sync.Rollouts.All() {
		if rec.Phase == PhaseImagePullBackOff {
			pulling[units.HandoffName(units.ServiceName(rec.Namespace, rec.Name))] = true
		}
	}
	for name := range m.kills {
		if !pulling[name] {
			return true
		}
	}
	for _, u := range m.units {
		if u.status.ActiveState == "deactivating" {
			return true
		}
	}
	return false
}

func (m *simSystemd) ListUnitsByPatternsContext(_ context.Context, _ []string, patterns []string) ([]dbus.UnitStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []dbus.UnitStatus
	for _, u := range m.units {
		for _, p := range patterns {
			if prefix, _, _ := strings.Cut(p, "*"); strings.HasPrefix(u.status.Name, prefix) {
				out = append(out, u.status)
				break
			}
		}
	}
	return out, nil
}

func (m *simSystemd) StartTransientUnitAux(ctx context.Context, name, mode string, props []dbus.Property, _ []dbus.PropertyCollection, ch chan<- string) (int, error) {
	return m.StartTransientUnitContext(ctx, name, mode, props, ch)
}

func (m *simSystemd) StartTransientUnitContext(_ context.Context, name, _ string, props []dbus.Property, ch chan<- string) (int, error) {
	if strings.HasSuffix(name, ".slice") {
		return 1, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.units[name]; ok {
		return 0, godbus.Error{Name: "org.freedesktop.systemd1.UnitExists"}
	}
	var desc string
	for _, p := range props {
		if p.Name == "Description" {
			desc = p.Value.Value().(string)
		}
	}
	m.serial++
	u := &simUnit{status: dbus.UnitStatus{Name: name, Description: desc, LoadState: "loaded", ActiveState: "activating", SubState: "start"}, serial: m.serial}
	m.units[name] = u
	argv := execArgs(props)
	if strings.HasPrefix(name, "podunit-handoff-") || strings.HasPrefix(name, "podunit-rollout-") {
		ctx, kill := context.WithCancel(context.Background())
		m.kills[name] = kill
		m.running.Add(1)
		go m.handoff(ctx, name, argv)
	} else {
		m.startPod(u, argv)
	}
	if ch != nil {
		ch <- "done"
	}
	return 1, nil
}

// startPod is podshim's start: it reads its spec file, then the pod
// becomes ready soon (good), or never.
func (m *simSystemd) startPod(u *simUnit, argv []string) {
	if i := slices.Index(argv, "--spec"); i >= 0 {
		u.spec = argv[i+1]
	}
	p, err := generator.FromSpec(podspec.ReadSpec(u.spec))
	if err != nil {
		m.bad = append(m.bad, fmt.Sprintf("%s started on a spec file it cannot read: %v", u.status.Name, err))
		u.status.SubState = "auto-restart"
		return
	}
	image := p.Spec.Spec.Containers[0].Image
	fmt.Fprintf(m.log, "%s podshim of %s starts %s\n", time.Now().Format("05.000"), u.status.Name, image)
	if strings.Contains(image, "-late") {
		// Ready at first, crashing 700 ms later (a version that dies once
		// it has some traffic).
		name, serial := u.status.Name, u.serial
		time.AfterFunc(700*time.Millisecond, func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if cur, ok := m.units[name]; ok && cur.serial == serial && cur.status.ActiveState == "active" {
				cur.status.ActiveState, cur.status.SubState = "activating", "auto-restart"
			}
		})
	}
	if !strings.HasPrefix(image, genGood+"/") {
		if strings.HasPrefix(image, genCrash+"/") {
			u.status.SubState = "auto-restart"
		}
		return
	}
	name, serial := u.status.Name, u.serial
	time.AfterFunc(time.Duration(20+rand.IntN(80))*time.Millisecond, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if cur, ok := m.units[name]; ok && cur.serial == serial && cur.status.ActiveState == "activating" {
			cur.status.ActiveState, cur.status.SubState = "active", "running"
		}
	})
}

// handoff runs a hand-off unit's command line, as `podunit handoff` does.
func (m *simSystemd) handoff(ctx context.Context, name string, argv []string) {
	defer m.running.Done()
	defer func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.units, name)
		delete(m.kills, name)
	}()
	var specs, ready []string
	rolling, resume, gone, trigger := false, false, "", TriggerManifest
	for i := 0; i < len(argv); i++ {
		switch a := argv[i]; {
		case a == "--rolling":
			rolling = true
		case a == "--resume":
			resume = true
		case a == "--gone":
			i++
			gone = argv[i]
		case a == "--ready":
			i++
			ready = append(ready, argv[i])
		case a == "--trigger":
			i++
			trigger = argv[i]
		case strings.HasSuffix(a, ".json"):
			specs = append(specs, a)
		}
	}
	m.mu.Lock()
	m.units[name].status.ActiveState = "activating"
	m.mu.Unlock()
	if gone != "" {
		if bus.WaitStopped(ctx, m, gone) == nil {
			m.requestSync()
		}
		return
	}
	err := Handoff(ctx, m.replacer(), Job{Specs: specs, Rolling: rolling, Trigger: trigger, Resume: resume, After: ready})
	if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(m.log, "%s %s failed: %v\n", time.Now().Format("05.000"), name, err)
	}
}

func (m *simSystemd) StartUnitContext(_ context.Context, name, _ string, ch chan<- string) (int, error) {
	if name == SyncUnit {
		m.requestSync()
	}
	return 1, nil
}

// StopUnitContext stops a pod unit in its grace period (sim/stop-ms of
// its spec), any other at once.
func (m *simSystemd) StopUnitContext(_ context.Context, name, _ string, ch chan<- string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.units[name]
	if !ok {
		if ch != nil {
			ch <- "done"
		}
		return 1, nil
	}
	if u.status.ActiveState == "deactivating" {
		go m.whenGone(name, u.serial, ch)
		return 1, nil
	}
	grace := 0
	if p, err := generator.FromSpec(podspec.ReadSpec(u.spec)); err == nil {
		grace, _ = strconv.Atoi(p.Spec.Annotations["sim/stop-ms"])
	}
	u.status.ActiveState, u.status.SubState = "deactivating", "stop-sigterm"
	serial := u.serial
	time.AfterFunc(time.Duration(grace)*time.Millisecond, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if cur, ok := m.units[name]; ok && cur.serial == serial {
			delete(m.units, name)
		}
	})
	go m.whenGone(name, serial, ch)
	return 1, nil
}

// whenGone sends "done" on ch once start serial of unit name is gone.
func (m *simSystemd) whenGone(name string, serial int, ch chan<- string) {
	if ch == nil {
		return
	}
	for {
		m.mu.Lock()
		cur, ok := m.units[name]
		m.mu.Unlock()
		if !ok || cur.serial != serial {
			ch <- "done"
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (m *simSystemd) ResetFailedUnitContext(context.Context, string) error { return nil }

func (m *simSystemd) SetUnitPropertiesContext(context.Context, string, bool, ...dbus.Property) error {
	return nil
}

// execArgs are a unit's ExecStart= arguments (go-systemd's execStart is
// unexported: its Args by name).
func execArgs(props []dbus.Property) []string {
	for _, p := range props {
		if p.Name == "ExecStart" {
			return reflect.ValueOf(p.Value.Value()).Index(0).FieldByName("Args").Interface().([]string)
		}
	}
	return nil
}
