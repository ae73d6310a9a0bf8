package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
	"github.com/podunit/podunit/units"
)

// Manager is the part of systemd's D-Bus API the reconciler uses. The
// go-systemd *dbus.Conn satisfies it; tests use a fake.
type Manager interface {
	ListUnitsByPatternsContext(ctx context.Context, states, patterns []string) ([]dbus.UnitStatus, error)
	StartTransientUnitContext(ctx context.Context, name, mode string, properties []dbus.Property, ch chan<- string) (int, error)
	StartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	StopUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	ResetFailedUnitContext(ctx context.Context, name string) error
	SetUnitPropertiesContext(ctx context.Context, name string, runtime bool, properties ...dbus.Property) error
}

// Result says what a reconcile did, by unit name. It did not wait for any
// of it: each is a job systemd carries out (or a hand-off unit's).
type Result struct {
	Started  []string // new pods: start jobs queued
	Replaced []string // pods whose config hash changed: the old generation's stop and a hand-off queued
	// Resumed are pods whose replacement was cut short (units.Unit.Resume):
	// a hand-off queued that carries it on.
	Resumed   []string
	Stopped   []string // pods no longer desired: stop jobs queued
	Unchanged []string
	// Pending are replacements already under way (their hand-off or
	// rollout unit runs): left to it.
	Pending []string
	Errors  []error // one per unit that could not be brought to its desired state
}

// Handoff is the command line of a hand-off unit, podunit itself, for job:
// sync never waits for a pod, so the second half of a replacement or a
// removal is a hand-off unit's.
type Handoff func(job HandoffJob) []string

// HandoffJob is what a hand-off unit does.
type HandoffJob struct {
	// Next are the units (their spec files) to start once their old
	// generations are down (StartUnits); with Rolling, to replace (or, for
	// an ordered workload, start) one at a time, each ready before the next
	// (RollOut).
	Next    []*units.Unit
	Rolling bool
	// Ready are units that must be active before Next starts
	// (units.Unit.StartAfter of a new pod whose dependencies are not ready).
	Ready []string
	// Gone is a removed pod's unit: once it is down, the next sync collects
	// what the pod left (its slice and spec files).
	Gone string
	// Resume: a replacement of Next was cut short (units.Unit.Resume);
	// the hand-off carries it on from its record.
	Resume bool
}

// Running is a pod unit as the manager reports it.
type Running struct {
	Name, Namespace, PodName, ConfigHash string
	ActiveState, SubState                string
	// Job is the type of the unit's pending job ("start", "restart",
	// "stop"); empty when none.
	Job string
}

// List returns the pod units podunit created, by name: the pod-*.service
// units whose description podunit wrote.
func List(ctx context.Context, m Manager) (map[string]Running, error) {
	statuses, err := m.ListUnitsByPatternsContext(ctx, nil, []string{units.ServicePattern})
	if err != nil {
		return nil, fmt.Errorf("list pod units: %w", err)
	}
	out := map[string]Running{}
	for _, s := range statuses {
		ns, name, hash, ok := units.ParseDescription(s.Description)
		if !ok || s.LoadState == "not-found" {
			continue
		}
		out[s.Name] = Running{Name: s.Name, Namespace: ns, PodName: name, ConfigHash: hash,
			ActiveState: s.ActiveState, SubState: s.SubState, Job: s.JobType}
	}
	return out, nil
}

// Reconcile brings the manager's pod units to desired without waiting on any
// pod: it queues start jobs for new pods and stop jobs for removed ones (the
// slices of pods that are gone are stopped too), and for a pod whose config
// hash changed it queues the old generation's stop and a hand-off unit that
// waits for that stop and then starts the new generation (never both at
// once). A workload's replicas (units.Unit.Group) are replaced one at a time by a
// rollout unit, which also starts an ordered workload's new pods
// (units.Unit.Ordered) one at a time. Every other unit is left untouched. One
// pod's slow stop or rollout therefore never delays another pod's change. Errors for single units are
// in the Result; the error return is for failures that stopped the whole
// pass.
func Reconcile(ctx context.Context, m Manager, desired []*units.Unit, handoff Handoff) (*Result, error) {
	return ReconcileKeeping(ctx, m, desired, nil, handoff)
}

// ReconcileKeeping is Reconcile that leaves alone, as if they were not
// there, the loaded pod units for which keep is true and that are not
// desired: a CronJob's runs, which its timer starts and its history limits
// remove.
func ReconcileKeeping(ctx context.Context, m Manager, desired []*units.Unit, keep func(Running) bool, handoff Handoff) (*Result, error) {
	current, err := List(ctx, m)
	if err != nil {
		return nil, err
	}
	kept := map[string]bool{}
	if keep != nil {
		for name, r := range current {
			kept[name] = keep(r)
		}
	}
	busy, err := pendingHandoffs(ctx, m)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	var start, replace []*units.Unit
	rolling := map[string][]*units.Unit{} // by rollout unit
	want := map[string]bool{}
	for _, u := range desired {
		want[u.Name] = true
		cur, ok := current[u.Name]
		switch {
		case busy[units.HandoffName(u.Name)] || (u.Group != "" && busy[units.RolloutName(u.Namespace, u.Group)]):
			// Its hand-off or its workload's rollout is under way: it
			// starts the pod (a later sync sees whether that was the
			// generation wanted).
			if ok && cur.ConfigHash == u.ConfigHash && (cur.ActiveState == "active" || cur.ActiveState == "activating") {
				res.Unchanged = append(res.Unchanged, u.Name)
			} else {
				res.Pending = append(res.Pending, u.Name)
			}
		case u.Resume && u.Group != "":
			// A rollout cut short: its rollout unit carries it on.
			name := units.RolloutName(u.Namespace, u.Group)
			rolling[name] = append(rolling[name], u)
		case u.Resume:
			// A replacement cut short: a hand-off takes the generation
			// through the gate again, running or not.
			replace = append(replace, u)
		case !ok && u.Ordered:
			// A StatefulSet's pod: started by the rollout unit, after the
			// ones before it are ready.
			name := units.RolloutName(u.Namespace, u.Group)
			rolling[name] = append(rolling[name], u)
		case !ok:
			start = append(start, u)
		case cur.ConfigHash != u.ConfigHash && u.Group != "" && cur.ActiveState == "active":
			// A replica of a workload: replaced one at a time, by one
			// rollout unit for the whole workload.
			name := units.RolloutName(u.Namespace, u.Group)
			rolling[name] = append(rolling[name], u)
		case cur.ConfigHash != u.ConfigHash:
			replace = append(replace, u)
		case cur.ActiveState == "active" || cur.ActiveState == "activating" || cur.ActiveState == "reloading":
			res.Unchanged = append(res.Unchanged, u.Name)
		case cur.Job != "" || cur.ActiveState == "deactivating":
			// A job is under way (systemctl restart, podshim restarted by
			// systemd): queuing a stop would cancel it. The next sync sees
			// how it ended.
			res.Unchanged = append(res.Unchanged, u.Name)
		case cur.ActiveState == "failed":
			// A pod that finished and failed (restartPolicy Never/OnFailure)
			// stays failed until its manifest changes, as in Kubernetes.
			res.Unchanged = append(res.Unchanged, u.Name)
		default:
			// inactive or on its way down: bring it back up once it is down.
			replace = append(replace, u)
		}
	}
	var stop []string
	for name := range current {
		if !want[name] && !kept[name] {
			stop = append(stop, name)
		}
	}
	sort.Strings(stop)
	for _, name := range stop {
		cur := current[name]
		switch cur.ActiveState {
		case "deactivating":
			continue // stopping already
		case "inactive", "failed":
			// Down already, and still loaded: a failed unit until its
			// failure is reset, another while a unit refers to it.
			if err := m.ResetFailedUnitContext(ctx, name); err != nil && !isDBusError(err, "org.freedesktop.systemd1.NoSuchUnit") {
				res.Errors = append(res.Errors, fmt.Errorf("reset failed unit %q: %w", name, err))
			}
			continue
		}
		if err := queueStop(ctx, m, name); err != nil {
			res.Errors = append(res.Errors, err)
			continue
		}
		// Once it is down, a hand-off with nothing to start has the next
		// sync collect its slice and spec files.
		desc := fmt.Sprintf("Collect pod %s/%s's slice once it stopped", cur.Namespace, cur.PodName)
		if _, err := startHandoff(ctx, m, units.HandoffName(name), desc, handoff(HandoffJob{Gone: name})); err != nil {
			res.Errors = append(res.Errors, err)
		}
		res.Stopped = append(res.Stopped, name)
	}
	for _, u := range replace {
		// The hand-off pulls the new generation's images while the old one
		// runs, stops it, starts the new one and, when the old one was
		// ready, rolls back if the new one is not. (Not by an ordering
		// dependency: a unit another refers to is never unloaded, and a
		// new generation can take its name only once it is.)
		desc := fmt.Sprintf("Replace pod %s/%s with podunit config %s", u.Namespace, u.PodName, u.ConfigHash)
		if u.Resume {
			desc = fmt.Sprintf("Carry on replacing pod %s/%s with podunit config %s (its replacement was cut short)", u.Namespace, u.PodName, u.ConfigHash)
		}
		queued, err := startHandoff(ctx, m, units.HandoffName(u.Name), desc, handoff(HandoffJob{Next: []*units.Unit{u}, Ready: notActive(current, want, u.StartAfter), Resume: u.Resume}))
		switch {
		case err != nil:
			res.Errors = append(res.Errors, fmt.Errorf("replace %s: %w", u.Name, err))
		case !queued:
			// An earlier sync's hand-off is still waiting: it starts
			// what it was given, and a later sync replaces that if need be.
			res.Pending = append(res.Pending, u.Name)
		case u.Resume:
			res.Resumed = append(res.Resumed, u.Name)
		default:
			res.Replaced = append(res.Replaced, u.Name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rolling)) {
		group := rolling[name]
		if strings.HasPrefix(group[0].Group, "StatefulSet/") {
			// As the StatefulSet controller: new pods lowest ordinal first,
			// then replacements highest ordinal first.
			var starts, replaced []*units.Unit
			for _, u := range group {
				if _, loaded := current[u.Name]; loaded {
					replaced = append(replaced, u)
				} else {
					starts = append(starts, u)
				}
			}
			slices.Reverse(replaced)
			group = append(starts, replaced...)
		}
		desc := fmt.Sprintf("Roll out %s in namespace %s, one replica at a time", group[0].Group, group[0].Namespace)
		resume := slices.ContainsFunc(group, func(u *units.Unit) bool { return u.Resume })
		queued, err := startHandoff(ctx, m, name, desc, handoff(HandoffJob{Next: group, Rolling: true, Resume: resume}))
		if err != nil {
			res.Errors = append(res.Errors, fmt.Errorf("roll out %s: %w", group[0].Group, err))
			continue
		}
		for _, u := range group {
			_, loaded := current[u.Name]
			switch {
			case !queued:
				res.Pending = append(res.Pending, u.Name)
			case u.Resume:
				res.Resumed = append(res.Resumed, u.Name)
			case loaded:
				res.Replaced = append(res.Replaced, u.Name)
			default:
				res.Started = append(res.Started, u.Name) // by the rollout, in order
			}
		}
	}
	for _, u := range start {
		if waiting := notActive(current, want, u.StartAfter); len(waiting) > 0 {
			// Started by a hand-off once what it starts after is ready.
			desc := fmt.Sprintf("Start pod %s/%s once %s ready", u.Namespace, u.PodName, strings.Join(waiting, ", "))
			if _, err := startHandoff(ctx, m, units.HandoffName(u.Name), desc, handoff(HandoffJob{Next: []*units.Unit{u}, Ready: waiting})); err != nil {
				res.Errors = append(res.Errors, err)
				continue
			}
		} else if err := startUnit(ctx, m, u); err != nil {
			res.Errors = append(res.Errors, err)
			continue
		}
		res.Started = append(res.Started, u.Name)
	}
	res.Errors = append(res.Errors, collectSlices(ctx, m, current, want)...)
	return res, nil
}

// collectSlices stops the slices of removed pods once their units are gone:
// systemd keeps an empty slice active, with the pod's limits, until the
// next boot otherwise. Not at once with the pod's stop: stopping a slice
// stops everything in it, the containers' scopes too, which must stop
// through podshim (preStop, then the stop signal, within the grace period).
func collectSlices(ctx context.Context, m Manager, current map[string]Running, want map[string]bool) []error {
	statuses, err := m.ListUnitsByPatternsContext(ctx, []string{"active"}, []string{"podunit-*.slice"})
	if err != nil {
		return []error{fmt.Errorf("list pod slices: %w", err)}
	}
	var errs []error
	for _, st := range statuses {
		ns, name, ok := units.ParseSliceDescription(st.Description)
		if !ok || st.ActiveState != "active" {
			continue
		}
		service := units.ServiceName(ns, name)
		if _, loaded := current[service]; loaded || want[service] {
			continue
		}
		if err := queueStop(ctx, m, st.Name); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// PendingHandoffs are the hand-off and rollout units that run or wait to
// run, by name.
func PendingHandoffs(ctx context.Context, m Manager) (map[string]bool, error) {
	return pendingHandoffs(ctx, m)
}

// pendingHandoffs are the hand-off and rollout units that run or wait to
// run (a start job queued behind an old generation's stop).
func pendingHandoffs(ctx context.Context, m Manager) (map[string]bool, error) {
	statuses, err := m.ListUnitsByPatternsContext(ctx, nil, []string{"podunit-handoff-*.service", "podunit-rollout-*.service"})
	if err != nil {
		return nil, fmt.Errorf("list hand-off units: %w", err)
	}
	busy := map[string]bool{}
	for _, st := range statuses {
		// (Deactivating: its work is done, its ExecStopPost= runs; its name
		// is taken until it ends, which the sync waits for: Syncer.Run.)
		if st.JobId != 0 || st.ActiveState == "activating" || st.ActiveState == "active" {
			busy[st.Name] = true
		}
	}
	return busy, nil
}

// StartUnits starts the units a hand-off was given once their old
// generations are down (a stopped transient unit that systemd has not
// collected yet is waited for too). It returns the errors, one per unit.
func StartUnits(ctx context.Context, m Manager, next []*units.Unit) []error {
	var errs []error
	for _, u := range next {
		if err := WaitStopped(ctx, m, u.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := startUnit(ctx, m, u); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// StartHandoff queues a hand-off unit as a sync does (podunit auto-update's
// replacements go through the same units, so that a sync leaves the pod to
// them). queued is false when one runs already.
func StartHandoff(ctx context.Context, m Manager, name, description string, argv []string) (queued bool, err error) {
	return startHandoff(ctx, m, name, description, argv)
}

// startHandoff queues a hand-off unit, a oneshot service running argv.
// queued is false when it exists already: a replacement is under way. A
// rollout waits for each replica to be ready, with deadlines of its own: the
// unit has no start timeout.
func startHandoff(ctx context.Context, m Manager, name, description string, argv []string) (queued bool, err error) {
	if len(argv) == 0 {
		return false, fmt.Errorf("start unit %q: no command line", name)
	}
	props := []dbus.Property{
		dbus.PropDescription(description),
		dbus.PropType("oneshot"),
		dbus.PropExecStart(argv, false),
		{Name: "CollectMode", Value: godbus.MakeVariant("inactive-or-failed")},
		{Name: "TimeoutStartUSec", Value: godbus.MakeVariant(uint64(math.MaxUint64))},
		stopPost(append(argv[:len(argv):len(argv)], StoppedFlag)),
	}
	if _, err := m.StartTransientUnitContext(ctx, name, "fail", props, nil); err != nil {
		if isDBusError(err, "org.freedesktop.systemd1.UnitExists") {
			return false, nil
		}
		return false, fmt.Errorf("start unit %q: %w", name, err)
	}
	return true, nil
}

// StoppedFlag is added to a hand-off's command line for its ExecStopPost=:
// run after the hand-off ended however it ended, it queues a sync when the
// hand-off did not (killed with SIGKILL, by the OOM killer), so that the
// replacement cut short is carried on at once (units.Unit.Resume), not at
// the next timer. (Not OnFailure=podunit-sync.service: the dependency
// would keep every finished hand-off unit loaded, and its name taken.)
const StoppedFlag = "--stopped"

// stopPost is the ExecStopPost= property running argv.
func stopPost(argv []string) dbus.Property {
	p := dbus.PropExecStart(argv, false)
	p.Name = "ExecStopPost"
	return p
}

// WaitStopped waits until a unit is down: gone, or inactive or failed (its
// failure then reset, so that systemd may unload it).
func WaitStopped(ctx context.Context, m Manager, name string) error {
	down := func(st *dbus.UnitStatus) bool {
		return st == nil || st.LoadState == "not-found" || st.ActiveState == "inactive" || st.ActiveState == "failed"
	}
	if err := pollUnit(ctx, m, name, 50*time.Millisecond, time.Second, down, "still stopping"); err != nil {
		return err
	}
	if err := m.ResetFailedUnitContext(ctx, name); err != nil && !isDBusError(err, "org.freedesktop.systemd1.NoSuchUnit") {
		return fmt.Errorf("reset failed unit %q: %w", name, err)
	}
	return nil
}

// WaitFinished waits until a oneshot unit that was queued (a hand-off)
// has run and ended: gone, or down with no job left. (A unit whose start
// job is still queued is inactive too, and not finished.)
func WaitFinished(ctx context.Context, m Manager, name string) error {
	finished := func(st *dbus.UnitStatus) bool {
		return st == nil || st.LoadState == "not-found" || (st.JobType == "" && (st.ActiveState == "inactive" || st.ActiveState == "failed"))
	}
	return pollUnit(ctx, m, name, 100*time.Millisecond, time.Second, finished, "still running")
}

// QueueStart queues a (static) unit's start job without waiting for it.
func QueueStart(ctx context.Context, m Manager, name string) error {
	if _, err := m.StartUnitContext(ctx, name, "replace", nil); err != nil {
		return fmt.Errorf("start unit %q: %w", name, err)
	}
	return nil
}

// queueStop queues a unit's stop job without waiting for it.
// Remove takes a finished pod's unit away: a failed one's failure is
// reset, another is stopped (the stop job is queued, not waited for).
// Either way systemd unloads it.
func Remove(ctx context.Context, m Manager, r Running) error {
	if r.ActiveState == "failed" {
		if err := m.ResetFailedUnitContext(ctx, r.Name); err != nil && !isDBusError(err, "org.freedesktop.systemd1.NoSuchUnit") {
			return fmt.Errorf("reset failed unit %q: %w", r.Name, err)
		}
		return nil
	}
	return queueStop(ctx, m, r.Name)
}

// Inspector is what a health check reads of systemd.
type Inspector interface {
	GetManagerProperty(prop string) (string, error)
	ListUnitsByNamesContext(ctx context.Context, units []string) ([]dbus.UnitStatus, error)
}

// Version is systemd's version, as it reports it ("252.38-1~deb12u1").
func Version(m Inspector) (string, error) {
	v, err := m.GetManagerProperty("Version")
	if err != nil {
		return "", err
	}
	return strings.Trim(v, `"`), nil
}

// States are the named units as the manager has them, loaded or not.
func States(ctx context.Context, m Inspector, names []string) ([]dbus.UnitStatus, error) {
	return m.ListUnitsByNamesContext(ctx, names)
}

// Restarter is what Restart needs of systemd.
type Restarter interface {
	RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
}

// Restart restarts a unit and waits for the restart job: for a pod's unit,
// until its new podshim said READY=1. The error names the job's result
// (failed, timeout, ...) otherwise.
func Restart(ctx context.Context, m Restarter, name string) error {
	done := make(chan string, 1)
	if _, err := m.RestartUnitContext(ctx, name, "replace", done); err != nil {
		return fmt.Errorf("restart %s: %w", name, err)
	}
	select {
	case r := <-done:
		if r != "done" {
			return fmt.Errorf("restart %s: %s (journalctl -u %s)", name, r, name)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("restart %s: %w", name, ctx.Err())
	}
}

// QueueStop queues a unit's stop job without waiting for it.
func QueueStop(ctx context.Context, m Manager, name string) error { return queueStop(ctx, m, name) }

func queueStop(ctx context.Context, m Manager, name string) error {
	if _, err := m.StopUnitContext(ctx, name, "replace", nil); err != nil && !isDBusError(err, "org.freedesktop.systemd1.NoSuchUnit") {
		return fmt.Errorf("stop unit %q: %w", name, err)
	}
	return nil
}

// notActive are the units of names that are not active now but will be:
// loaded, or desired. One of neither (a pod no manifest defines) is not
// waited for, as Wants= on a missing unit would not.
func notActive(current map[string]Running, desired map[string]bool, names []string) []string {
	var out []string
	for _, n := range names {
		cur, loaded := current[n]
		if (loaded || desired[n]) && cur.ActiveState != "active" {
			out = append(out, n)
		}
	}
	return out
}

// WaitActive waits until a unit is active: a pod unit once podshim sent
// READY=1.
func WaitActive(ctx context.Context, m Manager, name string) error {
	active := func(st *dbus.UnitStatus) bool { return st != nil && st.ActiveState == "active" }
	return pollUnit(ctx, m, name, 100*time.Millisecond, 2*time.Second, active, "not ready")
}

// pollUnit polls unit name's status, the delay doubling from first up to
// limit, until done is true of it (nil: the unit is not loaded).
func pollUnit(ctx context.Context, m Manager, name string, first, limit time.Duration, done func(*dbus.UnitStatus) bool, notYet string) error {
	for delay := first; ; delay = min(2*delay, limit) {
		statuses, err := m.ListUnitsByPatternsContext(ctx, nil, []string{name})
		if err != nil {
			return fmt.Errorf("unit %q: %w", name, err)
		}
		var st *dbus.UnitStatus
		for i := range statuses {
			if statuses[i].Name == name {
				st = &statuses[i]
			}
		}
		if done(st) {
			return nil
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("unit %q %s: %w", name, notYet, ctx.Err())
		}
	}
}

func stopUnit(ctx context.Context, m Manager, name string) error {
	done := make(chan string, 1)
	if _, err := m.StopUnitContext(ctx, name, "replace", done); err != nil {
		if isDBusError(err, "org.freedesktop.systemd1.NoSuchUnit") {
			return nil
		}
		return fmt.Errorf("stop unit %q: %w", name, err)
	}
	select {
	case result := <-done:
		if result != "done" {
			return fmt.Errorf("stop unit %q: job %s", name, result)
		}
	case <-ctx.Done():
		return fmt.Errorf("stop unit %q: %w", name, ctx.Err())
	}
	// A failed unit stays loaded until its failure is reset.
	if err := m.ResetFailedUnitContext(ctx, name); err != nil && !isDBusError(err, "org.freedesktop.systemd1.NoSuchUnit") {
		return fmt.Errorf("reset failed unit %q: %w", name, err)
	}
	return nil
}

// unitGoneTimeout bounds the wait for systemd to unload a stopped transient
// unit before a unit of the same name can be created again.
var unitGoneTimeout = 10 * time.Second

func startUnit(ctx context.Context, m Manager, u *units.Unit) error {
	return startUnitJob(ctx, m, u, nil)
}

// startUnitAndWait starts u and waits for its start job: for a pod, until
// podshim sent READY=1 (or the start failed).
func startUnitAndWait(ctx context.Context, m Manager, u *units.Unit) error {
	done := make(chan string, 1)
	if err := startUnitJob(ctx, m, u, done); err != nil {
		return err
	}
	select {
	case r := <-done:
		if r != "done" {
			return fmt.Errorf("start unit %q: job %s", u.Name, r)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("start unit %q: %w", u.Name, ctx.Err())
	}
}

// startUnitJob starts u; done, when not nil, receives the start job's result.
func startUnitJob(ctx context.Context, m Manager, u *units.Unit, done chan<- string) error {
	if len(u.ExecStart) == 0 {
		return fmt.Errorf("start unit %q: no ExecStart", u.Name)
	}
	if err := applySlice(ctx, m, u); err != nil {
		return fmt.Errorf("start unit %q: %w", u.Name, err)
	}
	return retryUntilGone(ctx, m, u.Name, func() error {
		_, err := m.StartTransientUnitContext(ctx, u.Name, "fail", Properties(u), done)
		return err
	})
}

// retryUntilGone creates a transient unit with start, again while a unit
// of that name exists: the previous generation, stopped but not yet
// garbage-collected.
func retryUntilGone(ctx context.Context, m Manager, name string, start func() error) error {
	deadline := time.Now().Add(unitGoneTimeout)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		err := start()
		if err == nil {
			return nil
		}
		if !isDBusError(err, "org.freedesktop.systemd1.UnitExists") || time.Now().After(deadline) {
			return fmt.Errorf("start unit %q: %w", name, err)
		}
		_ = m.ResetFailedUnitContext(ctx, name)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("start unit %q: %w", name, ctx.Err())
		}
	}
}

// isDBusError matches a D-Bus error by its name, never by its text.
func isDBusError(err error, name string) bool {
	var e godbus.Error
	return errors.As(err, &e) && e.Name == name
}

// UnitState is a unit's ActiveState and SubState ("inactive" when it is
// not loaded).
func UnitState(ctx context.Context, m Manager, name string) (state, sub string, err error) {
	statuses, err := m.ListUnitsByPatternsContext(ctx, nil, []string{name})
	if err != nil {
		return "", "", fmt.Errorf("unit %q: %w", name, err)
	}
	for _, st := range statuses {
		if st.Name == name {
			return st.ActiveState, st.SubState, nil
		}
	}
	return "inactive", "gone", nil
}

// StopUnit stops a unit and waits until it is down (its failure reset, so
// that systemd unloads it).
func StopUnit(ctx context.Context, m Manager, name string) error { return stopUnit(ctx, m, name) }

// StartUnit queues u's start job without waiting for it.
func StartUnit(ctx context.Context, m Manager, u *units.Unit) error { return startUnit(ctx, m, u) }

// ErrNotReady is returned by WaitReady for a unit that did not become
// ready in time, or failed.
var ErrNotReady = errors.New("not ready")

// ErrStopped is returned by WaitReady for a unit that something else
// stopped meanwhile (a sync, after its manifest was removed; systemctl
// stop): not a failure of the unit.
var ErrStopped = errors.New("stopped meanwhile")

// WaitReady waits until a unit is active (a pod unit: podshim sent
// READY=1) for at most deadline. A unit that fails (podshim gave up on the
// pod, or the pod failed) ends the wait at once (ErrNotReady), as does one
// that is stopped (ErrStopped).
func WaitReady(ctx context.Context, m Manager, name string, deadline time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	var state, sub string
	err := pollUnit(ctx, m, name, 100*time.Millisecond, time.Second, func(st *dbus.UnitStatus) bool {
		if st == nil {
			state, sub = "inactive", "gone"
			return true
		}
		state, sub = st.ActiveState, st.SubState
		return state == "active" || state == "failed" || state == "deactivating" || (state == "inactive" && st.JobType == "")
	}, "not ready")
	switch {
	case err != nil && ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w within %s: %s (%s)", ErrNotReady, deadline, state, sub)
	case err != nil:
		return err
	}
	return StateError(state, sub)
}

// StateError is what a unit's state says of it after it was started: nil
// when active, ErrNotReady when it failed or is restarting, ErrStopped
// when something stopped it.
func StateError(state, sub string) error {
	switch state {
	case "active":
		return nil
	case "inactive", "deactivating":
		return fmt.Errorf("%w: %s (%s)", ErrStopped, state, sub)
	}
	return fmt.Errorf("%w: %s (%s)", ErrNotReady, state, sub)
}
