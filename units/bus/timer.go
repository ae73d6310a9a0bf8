package bus

import (
	"context"
	"fmt"
	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/podunit/podunit/units"
	"sort"
)

// TimerManager is a Manager that creates a unit with an auxiliary one.
type TimerManager interface {
	Manager
	StartTransientUnitAux(ctx context.Context, name, mode string, properties []dbus.Property, aux []dbus.PropertyCollection, ch chan<- string) (int, error)
}

// RunningTimer is a CronJob timer as the manager reports it.
type RunningTimer struct {
	Name, Namespace, CronJob, ConfigHash string
	ActiveState                          string
}

// ListTimers returns the CronJob timers podunit created, by name.
func ListTimers(ctx context.Context, m Manager) (map[string]RunningTimer, error) {
	statuses, err := m.ListUnitsByPatternsContext(ctx, nil, []string{units.TimerPattern})
	if err != nil {
		return nil, fmt.Errorf("list CronJob timers: %w", err)
	}
	out := map[string]RunningTimer{}
	for _, s := range statuses {
		ns, name, hash, ok := units.ParseTimerDescription(s.Description)
		if !ok || s.LoadState == "not-found" {
			continue
		}
		out[s.Name] = RunningTimer{Name: s.Name, Namespace: ns, CronJob: name, ConfigHash: hash, ActiveState: s.ActiveState}
	}
	return out, nil
}

// TimerResult says what ReconcileTimers did, by timer name.
type TimerResult struct {
	Started, Replaced, Stopped, Unchanged []string
	Errors                                []error
}

// ReconcileTimers brings the CronJob timers to desired: new ones are
// started (armed), changed ones replaced, and the ones no longer desired
// stopped, with their services, unless keep says to leave them (a CronJob
// whose manifest is invalid keeps its last good timer). A timer's stop is
// immediate; a run under way is a pod unit of its own and goes on.
func ReconcileTimers(ctx context.Context, m TimerManager, desired []*units.Timer, keep func(RunningTimer) bool) (*TimerResult, error) {
	current, err := ListTimers(ctx, m)
	if err != nil {
		return nil, err
	}
	res := &TimerResult{}
	want := map[string]bool{}
	for _, t := range desired {
		name := t.Name()
		want[name] = true
		cur, ok := current[name]
		switch {
		case ok && cur.ConfigHash == t.ConfigHash && cur.ActiveState == "active":
			res.Unchanged = append(res.Unchanged, name)
			continue
		case ok:
			if err := stopTimer(ctx, m, name); err != nil {
				res.Errors = append(res.Errors, err)
				continue
			}
		}
		if err := startTimer(ctx, m, t); err != nil {
			res.Errors = append(res.Errors, err)
			continue
		}
		if ok {
			res.Replaced = append(res.Replaced, name)
		} else {
			res.Started = append(res.Started, name)
		}
	}
	var gone []string
	for name, cur := range current {
		if !want[name] && (keep == nil || !keep(cur)) {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		if err := stopTimer(ctx, m, name); err != nil {
			res.Errors = append(res.Errors, err)
			continue
		}
		res.Stopped = append(res.Stopped, name)
	}
	return res, nil
}

// stopTimer stops a timer and its service: both are unloaded then, and
// their names free for the next generation.
func stopTimer(ctx context.Context, m Manager, name string) error {
	if err := stopUnit(ctx, m, name); err != nil {
		return err
	}
	return stopUnit(ctx, m, units.TimerService(name))
}

func startTimer(ctx context.Context, m TimerManager, t *units.Timer) error {
	aux := []dbus.PropertyCollection{{Name: t.Service(), Properties: ServiceProperties(t)}}
	return retryUntilGone(ctx, m, t.Name(), func() error {
		_, err := m.StartTransientUnitAux(ctx, t.Name(), "fail", TimerProperties(t), aux, nil)
		return err
	})
}
