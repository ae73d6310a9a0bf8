package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"

	"github.com/podunit/podunit/units"
)

// fakeManager is an in-memory systemd manager: enough of its unit states and
// job semantics to check what the reconciler asks for, and in which order.
type fakeManager struct {
	mu    sync.Mutex
	units map[string]dbus.UnitStatus
	calls []string
	// lingering: a stopped unit still exists for this many more Start calls,
	// like a transient unit not yet garbage-collected.
	lingering int
	stopFails map[string]bool
	// slowStops never finish stopping: the unit stays deactivating.
	slowStops map[string]bool
	// slices are the pod slices and their last properties.
	slices map[string]map[string]any
	// handoffs are the queued hand-off units and their command lines;
	// jobs the jobs those command lines name.
	handoffs map[string][]string
	jobs     []HandoffJob
	// handoffProps are the properties each hand-off unit was made with.
	handoffProps map[string][]dbus.Property
}

func newFakeManager(existing ...dbus.UnitStatus) *fakeManager {
	m := &fakeManager{units: map[string]dbus.UnitStatus{}, stopFails: map[string]bool{}, slowStops: map[string]bool{},
		slices: map[string]map[string]any{}, handoffs: map[string][]string{}, handoffProps: map[string][]dbus.Property{}}
	for _, u := range existing {
		m.units[u.Name] = u
	}
	return m
}

func (m *fakeManager) ListUnitsByPatternsContext(_ context.Context, _, patterns []string) ([]dbus.UnitStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []dbus.UnitStatus
	if slices.Contains(patterns, "podunit-handoff-*.service") {
		for name := range m.handoffs { // queued: waiting, or running
			out = append(out, dbus.UnitStatus{Name: name, LoadState: "loaded", ActiveState: "inactive", JobId: 1, JobType: "start"})
		}
		return out, nil
	}
	if slices.Contains(patterns, "podunit-*.slice") {
		for name, props := range m.slices {
			desc, _ := props["Description"].(string)
			out = append(out, dbus.UnitStatus{Name: name, Description: desc, LoadState: "loaded", ActiveState: "active"})
		}
		return out, nil
	}
	if slices.Contains(patterns, "cronjob-*.timer") {
		for _, u := range m.units {
			if strings.HasPrefix(u.Name, "cronjob-") && strings.HasSuffix(u.Name, ".timer") {
				out = append(out, u)
			}
		}
		return out, nil
	}
	for _, u := range m.units {
		if strings.HasPrefix(u.Name, "pod-") {
			out = append(out, u)
		}
	}
	return out, nil
}

// StartTransientUnitAux creates a timer and its service, as systemd does.
func (m *fakeManager) StartTransientUnitAux(_ context.Context, name, mode string, props []dbus.Property, aux []dbus.PropertyCollection, ch chan<- string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	call := "start " + name
	for _, a := range aux {
		call += " +" + a.Name
	}
	m.calls = append(m.calls, call)
	if _, exists := m.units[name]; exists {
		return 0, godbus.Error{Name: "org.freedesktop.systemd1.UnitExists"}
	}
	desc := func(props []dbus.Property) string {
		for _, p := range props {
			if p.Name == "Description" {
				return p.Value.Value().(string)
			}
		}
		return ""
	}
	m.units[name] = dbus.UnitStatus{Name: name, Description: desc(props), LoadState: "loaded", ActiveState: "active", SubState: "waiting"}
	for _, a := range aux {
		m.units[a.Name] = dbus.UnitStatus{Name: a.Name, Description: desc(a.Properties), LoadState: "loaded", ActiveState: "inactive", SubState: "dead"}
	}
	if ch != nil {
		ch <- "done"
	}
	return 1, nil
}

func (m *fakeManager) StartTransientUnitContext(_ context.Context, name, mode string, props []dbus.Property, ch chan<- string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if strings.HasSuffix(name, ".slice") {
		m.calls = append(m.calls, "slice "+name)
		if _, exists := m.slices[name]; exists {
			return 0, godbus.Error{Name: "org.freedesktop.systemd1.UnitExists"}
		}
		m.slices[name] = map[string]any{}
		for _, p := range props {
			m.slices[name][p.Name] = p.Value.Value()
		}
		return 1, nil
	}
	if strings.HasPrefix(name, "podunit-handoff-") || strings.HasPrefix(name, "podunit-rollout-") {
		m.calls = append(m.calls, "handoff "+name)
		if _, exists := m.handoffs[name]; exists {
			return 0, godbus.Error{Name: "org.freedesktop.systemd1.UnitExists"}
		}
		for _, p := range props {
			if p.Name == "ExecStart" {
				m.handoffs[name] = execArgs(p)
			}
		}
		m.handoffProps[name] = props
		return 1, nil
	}
	m.calls = append(m.calls, "start "+name)
	if _, exists := m.units[name]; exists {
		return 0, godbus.Error{Name: "org.freedesktop.systemd1.UnitExists", Body: []any{"Unit " + name + " already exists."}}
	}
	var desc string
	for _, p := range props {
		if p.Name == "Description" {
			desc = p.Value.Value().(string)
		}
	}
	m.units[name] = dbus.UnitStatus{Name: name, Description: desc, LoadState: "loaded", ActiveState: "active", SubState: "running"}
	if ch != nil {
		ch <- "done"
	}
	return 1, nil
}

func (m *fakeManager) StopUnitContext(_ context.Context, name, mode string, ch chan<- string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "stop "+name)
	done := func(result string) {
		if ch != nil {
			ch <- result
		}
	}
	if strings.HasSuffix(name, ".slice") {
		if _, ok := m.slices[name]; !ok {
			return 0, godbus.Error{Name: "org.freedesktop.systemd1.NoSuchUnit"}
		}
		delete(m.slices, name)
		done("done")
		return 1, nil
	}
	if _, ok := m.units[name]; !ok {
		return 0, godbus.Error{Name: "org.freedesktop.systemd1.NoSuchUnit"}
	}
	switch {
	case m.slowStops[name]:
		u := m.units[name]
		u.ActiveState, u.SubState = "deactivating", "stop-sigterm"
		m.units[name] = u
		return 1, nil // never done
	case m.stopFails[name]:
		done("timeout")
		return 1, nil
	case m.lingering == 0:
		delete(m.units, name)
	default:
		u := m.units[name]
		u.ActiveState, u.SubState = "inactive", "dead"
		m.units[name] = u
	}
	done("done")
	return 1, nil
}

func (m *fakeManager) StartUnitContext(_ context.Context, name, mode string, ch chan<- string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "start "+name)
	return 1, nil
}

// handoff is a Handoff for tests: the command line names the job by its
// index in m.jobs, where runHandoffs finds it again.
func (m *fakeManager) handoff(job HandoffJob) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.jobs = append(m.jobs, job)
	return []string{"podunit", "handoff", strconv.Itoa(len(m.jobs) - 1)}
}

// runHandoffs runs the queued hand-off units as podunit handoff does
// (within 2 s each), and forgets them.
func (m *fakeManager) runHandoffs(t *testing.T) []error {
	t.Helper()
	m.mu.Lock()
	handoffs := m.handoffs
	m.handoffs = map[string][]string{}
	m.mu.Unlock()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(handoffs)) {
		i, err := strconv.Atoi(handoffs[name][2])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m.mu.Lock()
		job := m.jobs[i]
		m.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		for _, r := range job.Ready {
			if err := WaitActive(ctx, m, r); err != nil {
				errs = append(errs, err)
			}
		}
		switch {
		case job.Gone != "":
			if err := WaitStopped(ctx, m, job.Gone); err != nil {
				errs = append(errs, err)
			}
		default:
			// As engine.Replacer does (without its images and readiness
			// gate): each old generation stopped, then the new one started,
			// ready before the next when rolling.
			for _, u := range job.Next {
				if err := StopUnit(ctx, m, u.Name); err != nil {
					errs = append(errs, err)
					break
				}
				start := StartUnit
				if job.Rolling {
					start = startUnitAndWait
				}
				if err := start(ctx, m, u); err != nil {
					errs = append(errs, err)
					break
				}
			}
		}
		cancel()
	}
	return errs
}

func (m *fakeManager) ResetFailedUnitContext(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.units[name]; ok && (u.ActiveState == "inactive" || u.ActiveState == "failed") {
		if m.lingering > 0 {
			m.lingering--
		}
		if m.lingering == 0 {
			delete(m.units, name)
		}
	}
	return nil
}

func (m *fakeManager) SetUnitPropertiesContext(_ context.Context, name string, runtime bool, props ...dbus.Property) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "set "+name)
	if _, ok := m.slices[name]; !ok || !runtime {
		return godbus.Error{Name: "org.freedesktop.systemd1.NoSuchUnit"}
	}
	for _, p := range props {
		m.slices[name][p.Name] = p.Value.Value()
	}
	return nil
}

func podUnit(name, hash string) *units.Unit {
	return &units.Unit{Name: units.ServiceName("default", name), Namespace: "default", PodName: name, ConfigHash: hash,
		ExecStart: []string{"/usr/libexec/podunit/podshim"}, Slice: units.SliceName("default", name)}
}

// A pod's limits are on its slice before the pod starts; a new generation
// with other limits finds the slice there and changes them.
func TestReconcileSetsSliceLimits(t *testing.T) {
	m := newFakeManager()
	u := podUnit("web", h1)
	u.Limits = units.SliceLimits{MemoryMax: 96 << 20, CPUQuotaPerSec: 500000}
	if _, err := Reconcile(context.Background(), m, []*units.Unit{u}, m.handoff); err != nil {
		t.Fatal(err)
	}
	slice := m.slices["podunit-web.slice"]
	if slice["MemoryMax"] != uint64(96<<20) || slice["CPUQuotaPerSecUSec"] != uint64(500000) {
		t.Errorf("slice properties %v", slice)
	}
	if !slices.Equal(m.calls, []string{"slice podunit-web.slice", "start pod-web.service"}) {
		t.Errorf("calls %v: the slice's limits must be set before the pod starts", m.calls)
	}
	next := podUnit("web", h2) // limits removed
	if _, err := Reconcile(context.Background(), m, []*units.Unit{next}, m.handoff); err != nil {
		t.Fatal(err)
	}
	if errs := m.runHandoffs(t); len(errs) > 0 {
		t.Fatal(errs)
	}
	if slice["MemoryMax"] != uint64(math.MaxUint64) || slice["CPUQuotaPerSecUSec"] != uint64(math.MaxUint64) {
		t.Errorf("limits not lifted: %v", slice)
	}
	if !slices.Contains(m.calls, "set podunit-web.slice") {
		t.Errorf("calls %v", m.calls)
	}
}

func running(name, hash, state string) dbus.UnitStatus {
	return dbus.UnitStatus{Name: units.ServiceName("default", name), Description: podUnit(name, hash).Description(),
		LoadState: "loaded", ActiveState: state}
}

const h1, h2 = "11111111111111111111111111111111", "22222222222222222222222222222222"

func TestReconcile(t *testing.T) {
	m := newFakeManager(
		running("same", h1, "active"),
		running("changed", h1, "active"),
		running("gone", h1, "active"),
		running("gone-failed", h1, "failed"),
		running("failed", h1, "failed"),
		running("restarting", h1, "activating"),
		// Not podunit's: same prefix, foreign description. Never touched.
		dbus.UnitStatus{Name: "pod-foreign.service", Description: "Someone else's pod", LoadState: "loaded", ActiveState: "active"},
	)
	m.slices[units.SliceName("default", "gone")] = map[string]any{"Description": "Pod default/gone"}
	m.slices["podunit-other.slice"] = map[string]any{"Description": "Someone else's slice"}
	desired := func() []*units.Unit {
		return []*units.Unit{podUnit("same", h1), podUnit("changed", h2), podUnit("new", h1), podUnit("failed", h1), podUnit("restarting", h1)}
	}
	res, err := Reconcile(context.Background(), m, desired(), m.handoff)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("Started", res.Started, "pod-new.service")
	check("Replaced", res.Replaced, "pod-changed.service")
	check("Stopped", res.Stopped, "pod-gone.service")
	// The removed pod's slice stays while its pod stops: stopping a slice
	// stops its containers' scopes too, which must stop through podshim.
	if _, ok := m.slices[units.SliceName("default", "gone")]; !ok {
		t.Errorf("the removed pod's slice was stopped with it: %v", m.calls)
	}
	// A removed pod that had failed is unloaded.
	if _, ok := m.units["pod-gone-failed.service"]; ok {
		t.Errorf("the removed failed pod's unit is still loaded")
	}
	// A failed unit is a pod that finished and failed: it stays failed.
	check("Unchanged", res.Unchanged, "pod-failed.service", "pod-restarting.service", "pod-same.service")
	if len(res.Errors) > 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	// A replaced unit: its hand-off is queued, which stops the old
	// generation (once the new one's images are here) and starts the new
	// one; the reconcile itself does neither.
	if !slices.Contains(m.calls, "handoff podunit-handoff-changed.service") ||
		slices.Contains(m.calls, "stop pod-changed.service") || slices.Contains(m.calls, "start pod-changed.service") {
		t.Errorf("replacement: %v", m.calls)
	}
	if errs := m.runHandoffs(t); len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, ok := m.units["pod-changed.service"]; !ok || !slices.Contains(m.calls, "start pod-changed.service") {
		t.Errorf("the hand-off did not start the new generation: %v", m.calls)
	}
	if slices.Contains(m.calls, "stop "+units.SliceName("default", "changed")) {
		t.Errorf("the replaced pod's slice was stopped: %v", m.calls)
	}
	for _, c := range m.calls {
		if strings.Contains(c, "same") || strings.Contains(c, "foreign") || strings.Contains(c, "restarting") || strings.Contains(c, "pod-failed") {
			t.Errorf("touched a unit it must leave alone: %s", c)
		}
	}

	// The next pass, once the removed pods are gone, stops their slices
	// (not another tool's); one more with nothing changed makes no call.
	m.calls = nil
	if _, err := Reconcile(context.Background(), m, desired(), m.handoff); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.calls, []string{"stop " + units.SliceName("default", "gone")}) {
		t.Errorf("second pass: calls %v, want the removed pod's slice stopped", m.calls)
	}
	m.calls = nil
	res, err = Reconcile(context.Background(), m, desired(), m.handoff)
	if err != nil || len(m.calls) != 0 || len(res.Unchanged) != 5 {
		t.Errorf("unchanged pass: calls %v, result %+v, err %v", m.calls, res, err)
	}
}

// A sync never waits on a pod: a stop that takes its whole grace period
// delays neither another pod's start nor the reconcile's return; the
// replacement waits in its hand-off, and a second reconcile meanwhile leaves
// it to that hand-off.
func TestReconcileNeverWaitsOnAPod(t *testing.T) {
	m := newFakeManager(running("slow", h1, "active"), running("leaving", h1, "active"))
	m.slowStops["pod-slow.service"] = true
	m.slowStops["pod-leaving.service"] = true
	done := make(chan *Result)
	go func() {
		res, err := Reconcile(context.Background(), m, []*units.Unit{podUnit("slow", h2), podUnit("new", h1)}, m.handoff)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	var res *Result
	select {
	case res = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("reconcile waited on a stopping pod")
	}
	if !slices.Equal(res.Started, []string{"pod-new.service"}) || !slices.Equal(res.Replaced, []string{"pod-slow.service"}) ||
		!slices.Equal(res.Stopped, []string{"pod-leaving.service"}) {
		t.Errorf("result %+v", res)
	}
	if _, ok := m.units["pod-new.service"]; !ok {
		t.Error("the new pod was not started while another stopped")
	}
	// The manifest changes again while the hand-off is under way: left to
	// it (it sees that its generation is no longer wanted and queues a
	// sync).
	res, err := Reconcile(context.Background(), m, []*units.Unit{podUnit("slow", "33333333333333333333333333333333"), podUnit("new", h1)}, m.handoff)
	if err != nil || !slices.Equal(res.Pending, []string{"pod-slow.service"}) || len(res.Replaced) != 0 {
		t.Errorf("second pass: %+v %v", res, err)
	}
}

// A stopped transient unit may linger until systemd collects it; the
// hand-off's start of its replacement waits for that instead of failing.
func TestHandoffWaitsForStoppedUnitToGo(t *testing.T) {
	m := newFakeManager(running("web", h1, "active"))
	m.lingering = 2
	res, err := Reconcile(context.Background(), m, []*units.Unit{podUnit("web", h2)}, m.handoff)
	if err != nil || len(res.Errors) > 0 || !slices.Equal(res.Replaced, []string{"pod-web.service"}) {
		t.Fatalf("result %+v, err %v, calls %v", res, err, m.calls)
	}
	if errs := m.runHandoffs(t); len(errs) > 0 {
		t.Fatalf("hand-off: %v (calls %v)", errs, m.calls)
	}
}

// When the old generation does not stop, the hand-off does not start the
// new one: it waits, and fails at its deadline.
func TestHandoffNeverRunsTwoGenerations(t *testing.T) {
	m := newFakeManager(running("web", h1, "active"))
	m.stopFails["pod-web.service"] = true
	m.units["pod-web.service"] = running("web", h1, "active") // still there
	if _, err := Reconcile(context.Background(), m, []*units.Unit{podUnit("web", h2)}, m.handoff); err != nil {
		t.Fatal(err)
	}
	errs := m.runHandoffs(t)
	if len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "job timeout") || slices.Contains(m.calls, "start pod-web.service") {
		t.Errorf("errors %v", errs)
	}
	if _, _, hash, _ := units.ParseDescription(m.units["pod-web.service"].Description); hash != h1 {
		t.Errorf("the unit is now generation %s", hash)
	}
}

func TestIsDBusErrorMatchesName(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", godbus.Error{Name: "org.freedesktop.systemd1.UnitExists"})
	if !isDBusError(err, "org.freedesktop.systemd1.UnitExists") || isDBusError(err, "org.freedesktop.systemd1.NoSuchUnit") {
		t.Error("D-Bus error not matched by name")
	}
	if isDBusError(errors.New("org.freedesktop.systemd1.UnitExists"), "org.freedesktop.systemd1.UnitExists") {
		t.Error("matched a plain error by its text")
	}
}

// A pod ordered after others (podunit.io/after) starts once they are
// active: at once when they are, else by a hand-off that waits for them.
// No ordering dependency links the units: it would keep the other unit
// loaded, and so impossible to replace.
func TestReconcileStartsAfterDependenciesAreReady(t *testing.T) {
	m := newFakeManager(running("cache", h1, "active"))
	web, db, cache := podUnit("web", h1), podUnit("db", h1), podUnit("cache", h1)
	web.StartAfter = []string{db.Name, cache.Name}
	db.StartAfter = []string{cache.Name}
	res, err := Reconcile(context.Background(), m, []*units.Unit{web, db, cache}, m.handoff)
	if err != nil || len(res.Errors) > 0 {
		t.Fatal(err, res.Errors)
	}
	// db's dependency is ready: started at once; web waits for db.
	if !slices.Contains(m.calls, "start pod-db.service") || slices.Contains(m.calls, "start pod-web.service") ||
		!slices.Contains(m.calls, "handoff podunit-handoff-web.service") {
		t.Fatalf("calls %v", m.calls)
	}
	if errs := m.runHandoffs(t); len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, ok := m.units["pod-web.service"]; !ok {
		t.Errorf("the hand-off did not start web once db was ready: %v", m.calls)
	}
	// A pod after one that no manifest defines starts at once, as Wants=
	// on a missing unit would not hold it either.
	lone := podUnit("lone", h1)
	lone.StartAfter = []string{"pod-nowhere.service"}
	if _, err := Reconcile(context.Background(), m, []*units.Unit{web, db, cache, lone}, m.handoff); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.units["pod-lone.service"]; !ok {
		t.Errorf("a pod after a pod that does not exist was not started: %v", m.calls)
	}
	for _, p := range Properties(web) {
		if p.Name == "After" || p.Name == "Wants" {
			if strings.Contains(fmt.Sprint(p.Value.Value()), db.Name) {
				t.Errorf("%s=%v links the units", p.Name, p.Value.Value())
			}
		}
	}
}

// A Deployment's replicas are replaced one at a time: each stopped and
// started again (ready) before the next one stops.
func TestReconcileRollsReplicasOneAtATime(t *testing.T) {
	var existing []dbus.UnitStatus
	var desired []*units.Unit
	for _, n := range []string{"web-0", "web-1", "web-2"} {
		existing = append(existing, running(n, h1, "active"))
		u := podUnit(n, h2)
		u.Group = "Deployment/web"
		desired = append(desired, u)
	}
	m := newFakeManager(existing...)
	res, err := Reconcile(context.Background(), m, desired, m.handoff)
	if err != nil || len(res.Replaced) != 3 || len(res.Errors) > 0 {
		t.Fatalf("result %+v, err %v", res, err)
	}
	if !slices.Equal(m.calls, []string{"handoff " + units.RolloutName("default", "Deployment/web")}) {
		t.Fatalf("the reconcile itself must only queue the rollout: %v", m.calls)
	}
	if errs := m.runHandoffs(t); len(errs) > 0 {
		t.Fatal(errs)
	}
	var seq []string
	for _, c := range m.calls[1:] {
		if !strings.HasPrefix(c, "slice ") {
			seq = append(seq, c)
		}
	}
	want := []string{"stop pod-web-0.service", "start pod-web-0.service", "stop pod-web-1.service", "start pod-web-1.service", "stop pod-web-2.service", "start pod-web-2.service"}
	if !slices.Equal(seq, want) {
		t.Errorf("calls %v, want %v", seq, want)
	}
}

// A StatefulSet's pods are replaced highest ordinal first, as its controller
// does.
func TestRolloutOfStatefulSetIsReversed(t *testing.T) {
	var existing []dbus.UnitStatus
	var desired []*units.Unit
	for _, n := range []string{"db-0", "db-1"} {
		existing = append(existing, running(n, h1, "active"))
		u := podUnit(n, h2)
		u.Group = "StatefulSet/db"
		desired = append(desired, u)
	}
	m := newFakeManager(existing...)
	if _, err := Reconcile(context.Background(), m, desired, m.handoff); err != nil {
		t.Fatal(err)
	}
	if errs := m.runHandoffs(t); len(errs) > 0 {
		t.Fatal(errs)
	}
	if i, j := slices.Index(m.calls, "stop pod-db-1.service"), slices.Index(m.calls, "stop pod-db-0.service"); i < 0 || j < i {
		t.Errorf("calls %v: db-1 must be replaced before db-0", m.calls)
	}
}

// A StatefulSet's new pods (Ordered) are started by its rollout unit, one at
// a time, lowest ordinal first, each ready before the next; the reconcile
// itself starts none of them.
func TestOrderedStartGoesThroughTheRollout(t *testing.T) {
	var desired []*units.Unit
	for _, n := range []string{"db-0", "db-1", "db-2"} {
		u := podUnit(n, h1)
		u.Group, u.Ordered = "StatefulSet/db", true
		desired = append(desired, u)
	}
	m := newFakeManager()
	res, err := Reconcile(context.Background(), m, desired, m.handoff)
	if err != nil || len(res.Started) != 3 || len(m.units) != 0 {
		t.Fatalf("result %+v, err %v, units %v: the rollout starts them, not the reconcile", res, err, m.units)
	}
	if errs := m.runHandoffs(t); len(errs) > 0 {
		t.Fatal(errs)
	}
	var starts []string
	for _, c := range m.calls {
		if strings.HasPrefix(c, "start ") {
			starts = append(starts, c)
		}
	}
	if want := []string{"start pod-db-0.service", "start pod-db-1.service", "start pod-db-2.service"}; !slices.Equal(starts, want) {
		t.Errorf("starts %v, want %v", starts, want)
	}
}

// A unit on its way down or up under a job of its own (systemctl restart,
// a restart by systemd) is left to it: a queued stop would cancel it.
func TestReconcileLeavesAUnitWithAJobAlone(t *testing.T) {
	restarting := running("web", h1, "deactivating")
	restarting.JobType = "restart"
	m := newFakeManager(restarting)
	res, err := Reconcile(context.Background(), m, []*units.Unit{podUnit("web", h1)}, m.handoff)
	if err != nil || !slices.Equal(res.Unchanged, []string{"pod-web.service"}) || len(m.calls) != 0 {
		t.Errorf("result %+v, err %v, calls %v", res, err, m.calls)
	}
}

// A CronJob's runs are not in the manifests: ReconcileKeeping leaves the
// ones keep claims alone (running, finished or failed), slices included,
// and stops the rest as Reconcile does.
func TestReconcileKeepsCronJobRuns(t *testing.T) {
	m := newFakeManager(
		running("backup-29939190", h1, "active"),
		running("backup-29939191", h1, "failed"),
		running("web", h1, "active"),
	)
	m.slices[units.SliceName("default", "backup-29939190")] = map[string]any{"Description": "Pod default/backup-29939190"}
	keep := func(r Running) bool { return strings.HasPrefix(r.PodName, "backup-") }
	res, err := ReconcileKeeping(context.Background(), m, nil, keep, m.handoff)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Stopped, []string{"pod-web.service"}) || len(res.Errors) > 0 {
		t.Errorf("stopped %v, errors %v; want pod-web.service only", res.Stopped, res.Errors)
	}
	for _, c := range m.calls {
		if strings.Contains(c, "backup") {
			t.Errorf("touched a kept run: %s", c)
		}
	}
}

// execArgs are the arguments of an ExecStart=-like property (go-systemd's
// execStart is unexported: its Args by name).
func execArgs(p dbus.Property) []string {
	return reflect.ValueOf(p.Value.Value()).Index(0).FieldByName("Args").Interface().([]string)
}

// A hand-off killed with SIGKILL cannot queue the sync that carries its
// replacement on: its ExecStopPost= does (its command line with
// StoppedFlag). And a hand-off unit depends on nothing: a dependency
// (OnFailure=, Wants=, ...) would keep the finished unit loaded, its name
// taken, and every later replacement of the pod would wait on it forever.
func TestHandoffUnitQueuesASyncWhenKilled(t *testing.T) {
	m := newFakeManager(running("web", h1, "active"))
	if _, err := Reconcile(context.Background(), m, []*units.Unit{podUnit("web", h2)}, m.handoff); err != nil {
		t.Fatal(err)
	}
	name := units.HandoffName("pod-web.service")
	var stopPost []string
	for _, p := range m.handoffProps[name] {
		switch p.Name {
		case "ExecStopPost":
			stopPost = execArgs(p)
		case "OnFailure", "OnSuccess", "Wants", "Requires", "BindsTo", "PartOf", "After", "Before":
			t.Errorf("the hand-off unit has %s=%v", p.Name, p.Value.Value())
		}
	}
	if want := append(m.handoffs[name][:len(m.handoffs[name]):len(m.handoffs[name])], StoppedFlag); !slices.Equal(stopPost, want) {
		t.Errorf("ExecStopPost=%q, want %q", stopPost, want)
	}
}
