package units

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// Manager is the part of systemd's D-Bus API the reconciler uses. The
// go-systemd *dbus.Conn satisfies it; tests use a fake.
type Manager interface {
	ListUnitsByPatternsContext(ctx context.Context, states, patterns []string) ([]dbus.UnitStatus, error)
	StartTransientUnitContext(ctx context.Context, name, mode string, properties []dbus.Property, ch chan<- string) (int, error)
	StopUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
	ResetFailedUnitContext(ctx context.Context, name string) error
	SetUnitPropertiesContext(ctx context.Context, name string, runtime bool, properties ...dbus.Property) error
}

// Result says what a reconcile did, by unit name.
type Result struct {
	Started   []string // new pods
	Replaced  []string // pods whose config hash changed: stopped, then started
	Stopped   []string // pods no longer desired
	Unchanged []string
	Errors    []error // one per unit that could not be brought to its desired state
}

// Running is a pod unit as the manager reports it.
type Running struct {
	Name, Namespace, PodName, ConfigHash string
	ActiveState, SubState                string
}

// List returns the pod units podunit created, by name: the pod-*.service
// units whose description podunit wrote.
func List(ctx context.Context, m Manager) (map[string]Running, error) {
	statuses, err := m.ListUnitsByPatternsContext(ctx, nil, []string{servicePrefix + "*" + serviceSuffix})
	if err != nil {
		return nil, fmt.Errorf("list pod units: %w", err)
	}
	out := map[string]Running{}
	for _, s := range statuses {
		ns, name, hash, ok := ParseDescription(s.Description)
		if !ok || s.LoadState == "not-found" {
			continue
		}
		out[s.Name] = Running{Name: s.Name, Namespace: ns, PodName: name, ConfigHash: hash,
			ActiveState: s.ActiveState, SubState: s.SubState}
	}
	return out, nil
}

// Reconcile brings the manager's pod units to desired: it starts units for
// new pods, replaces units whose config hash changed (the old generation is
// stopped before the new one starts, never both at once), stops units that
// are no longer desired and leaves every other unit untouched. It does not
// wait for started units to become ready. Errors for single units are in the
// Result; the error return is for failures that stopped the whole pass.
func Reconcile(ctx context.Context, m Manager, desired []*Unit) (*Result, error) {
	current, err := List(ctx, m)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	var stop []string
	var start, rolling []*Unit
	replacing := map[string]bool{}
	want := map[string]bool{}
	for _, u := range desired {
		want[u.Name] = true
		cur, ok := current[u.Name]
		switch {
		case !ok:
			start = append(start, u)
		case cur.ConfigHash != u.ConfigHash && u.Group != "" && cur.ActiveState == "active":
			// A replica of a Deployment: replaced one at a time, below.
			rolling = append(rolling, u)
			replacing[u.Name] = true
		case cur.ConfigHash != u.ConfigHash:
			stop = append(stop, u.Name)
			start = append(start, u)
			replacing[u.Name] = true
		case cur.ActiveState == "active" || cur.ActiveState == "activating" || cur.ActiveState == "reloading":
			res.Unchanged = append(res.Unchanged, u.Name)
		case cur.ActiveState == "failed":
			// A pod that finished and failed (restartPolicy Never/OnFailure)
			// stays failed until its manifest changes, as in Kubernetes.
			res.Unchanged = append(res.Unchanged, u.Name)
		default:
			// inactive or on its way down: bring it back up.
			stop = append(stop, u.Name)
			start = append(start, u)
		}
	}
	for name := range current {
		if !want[name] {
			stop = append(stop, name)
		}
	}
	sort.Strings(stop)

	start = startOrder(start)
	stopErrs := stopAll(ctx, m, stop)
	var goneSlices []string // of the pods no longer desired
	for _, name := range stop {
		if err := stopErrs[name]; err != nil {
			res.Errors = append(res.Errors, err)
		} else if !want[name] {
			res.Stopped = append(res.Stopped, name)
			goneSlices = append(goneSlices, SliceName(current[name].Namespace, current[name].PodName))
		}
	}
	// A removed pod's slice goes with it. systemd keeps an empty slice
	// active, with the pod's limits, until the next boot: one more for every
	// pod ever removed, and each one more unit for systemd to go through
	// when it sets up the next pod's cgroups.
	sliceErrs := stopAll(ctx, m, goneSlices)
	for _, name := range goneSlices {
		if err := sliceErrs[name]; err != nil {
			res.Errors = append(res.Errors, err)
		}
	}
	for _, u := range start {
		if err := stopErrs[u.Name]; err != nil {
			continue // the old generation may still run: never start a second one
		}
		if err := startUnit(ctx, m, u); err != nil {
			res.Errors = append(res.Errors, err)
			continue
		}
		if replacing[u.Name] {
			res.Replaced = append(res.Replaced, u.Name)
		} else {
			res.Started = append(res.Started, u.Name)
		}
	}
	// A rolling replacement: each replica is stopped, started again and
	// ready (its start job done: READY=1) before the next one stops, so
	// the others keep serving. A replica that does not become ready stops
	// the rollout; the next sync carries on.
	for _, u := range rolling {
		if err := stopUnit(ctx, m, u.Name); err != nil {
			res.Errors = append(res.Errors, err)
			break
		}
		if err := startUnitAndWait(ctx, m, u); err != nil {
			res.Errors = append(res.Errors, fmt.Errorf("rollout of %s stopped: %w", u.Group, err))
			break
		}
		res.Replaced = append(res.Replaced, u.Name)
	}
	return res, nil
}

// startOrder puts each unit after the units of start it is ordered after
// (After=, from podunit.io/after), keeping the given order otherwise: systemd
// orders a start job after another only while that one is pending, so the
// one to wait for must be queued first. A cycle keeps the given order.
func startOrder(start []*Unit) []*Unit {
	byName := map[string]*Unit{}
	for _, u := range start {
		byName[u.Name] = u
	}
	var (
		out   []*Unit
		state = map[string]int{} // 1 visiting, 2 done
		visit func(u *Unit)
	)
	visit = func(u *Unit) {
		if state[u.Name] != 0 {
			return // done, or a cycle: leave it where it is
		}
		state[u.Name] = 1
		for _, a := range u.After {
			if dep, ok := byName[a]; ok {
				visit(dep)
			}
		}
		state[u.Name] = 2
		out = append(out, u)
	}
	for _, u := range start {
		visit(u)
	}
	return out
}

// stopAll stops units concurrently and waits for each stop job to finish.
func stopAll(ctx context.Context, m Manager, names []string) map[string]error {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs = map[string]error{}
	)
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stopUnit(ctx, m, name); err != nil {
				mu.Lock()
				errs[name] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
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
const unitGoneTimeout = 10 * time.Second

func startUnit(ctx context.Context, m Manager, u *Unit) error {
	return startUnitJob(ctx, m, u, nil)
}

// startUnitAndWait starts u and waits for its start job: for a pod, until
// podshim sent READY=1 (or the start failed).
func startUnitAndWait(ctx context.Context, m Manager, u *Unit) error {
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
func startUnitJob(ctx context.Context, m Manager, u *Unit, done chan<- string) error {
	if len(u.ExecStart) == 0 {
		return fmt.Errorf("start unit %q: no ExecStart", u.Name)
	}
	if err := applySlice(ctx, m, u); err != nil {
		return fmt.Errorf("start unit %q: %w", u.Name, err)
	}
	deadline := time.Now().Add(unitGoneTimeout)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		_, err := m.StartTransientUnitContext(ctx, u.Name, "fail", u.Properties(), done)
		if err == nil {
			return nil
		}
		if !isDBusError(err, "org.freedesktop.systemd1.UnitExists") || time.Now().After(deadline) {
			return fmt.Errorf("start unit %q: %w", u.Name, err)
		}
		// The previous generation is stopped but not yet garbage-collected.
		_ = m.ResetFailedUnitContext(ctx, u.Name)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("start unit %q: %w", u.Name, ctx.Err())
		}
	}
}

// isDBusError matches a D-Bus error by its name, never by its text.
func isDBusError(err error, name string) bool {
	var e godbus.Error
	return errors.As(err, &e) && e.Name == name
}
