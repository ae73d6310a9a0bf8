// Package unitstest is an in-memory systemd manager for tests of what
// drives units (the sync engine, the status server): bus.Manager and
// bus.TimerManager, as httptest is a server for tests of HTTP clients.
// The units package's own tests use a finer fake of their own, which
// scripts job outcomes.
package unitstest

import (
	"context"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"

	"github.com/podunit/podunit/units/bus"
)

// Manager is a minimal systemd: units start active and vanish when
// stopped; a hand-off or rollout unit runs at once, as `podunit handoff`
// would (see Handoff).
type Manager struct {
	mu sync.Mutex
	// Units are the loaded units, by name; Properties the properties
	// each was last started with.
	Units      map[string]dbus.UnitStatus
	Properties map[string][]dbus.Property
	// Started are the static units started (podunit-sync.service).
	Started []string
	// Handoff runs a hand-off's second half: start the units of specs
	// (their old generations are down: stops are done at once here), one
	// at a time each ready before the next when rolling. Nil: hand-offs
	// only wait for and queue what their flags say.
	Handoff func(ctx context.Context, specs []string, rolling bool) error
}

// NewManager returns a Manager with no units.
func NewManager() *Manager {
	return &Manager{Units: map[string]dbus.UnitStatus{}, Properties: map[string][]dbus.Property{}}
}

var (
	_ bus.TimerManager = (*Manager)(nil)
	_ bus.TimerManager = (*dbus.Conn)(nil)
)

// ListUnitsByPatternsContext lists the units whose names start as a
// pattern's part before its '*'.
func (m *Manager) ListUnitsByPatternsContext(_ context.Context, _ []string, patterns []string) ([]dbus.UnitStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []dbus.UnitStatus
	for _, u := range m.Units {
		for _, p := range patterns {
			if prefix, _, _ := strings.Cut(p, "*"); strings.HasPrefix(u.Name, prefix) {
				out = append(out, u)
				break
			}
		}
	}
	return out, nil
}

// StartTransientUnitContext makes a unit, active; a hand-off or rollout
// unit is run instead (its command line: --ready, --gone, --rolling, spec
// files).
func (m *Manager) StartTransientUnitContext(ctx context.Context, name, _ string, props []dbus.Property, ch chan<- string) (int, error) {
	if strings.HasPrefix(name, "podunit-handoff-") || strings.HasPrefix(name, "podunit-rollout-") {
		return 1, m.runHandoff(ctx, execArgs(props))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if strings.HasSuffix(name, ".slice") {
		return 1, nil // the pod's slice; its limits are tested in units
	}
	if _, ok := m.Units[name]; ok {
		return 0, godbus.Error{Name: "org.freedesktop.systemd1.UnitExists"}
	}
	for _, p := range props {
		if p.Name == "Description" {
			m.Units[name] = dbus.UnitStatus{Name: name, Description: p.Value.Value().(string), LoadState: "loaded", ActiveState: "active"}
		}
	}
	m.Properties[name] = props
	if ch != nil {
		ch <- "done"
	}
	return 1, nil
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

func (m *Manager) runHandoff(ctx context.Context, argv []string) error {
	for i, a := range argv {
		if a == "--ready" {
			if err := bus.WaitActive(ctx, m, argv[i+1]); err != nil {
				return err
			}
		}
	}
	if i := slices.Index(argv, "--gone"); i >= 0 {
		if err := bus.WaitStopped(ctx, m, argv[i+1]); err != nil {
			return err
		}
		return bus.QueueStart(ctx, m, "podunit-sync.service")
	}
	var specs []string
	for _, a := range argv {
		if strings.HasSuffix(a, ".json") {
			specs = append(specs, a)
		}
	}
	if m.Handoff == nil {
		return nil
	}
	return m.Handoff(ctx, specs, slices.Contains(argv, "--rolling"))
}

// StartTransientUnitAux makes a timer and its service.
func (m *Manager) StartTransientUnitAux(ctx context.Context, name, mode string, props []dbus.Property, aux []dbus.PropertyCollection, ch chan<- string) (int, error) {
	for _, a := range aux {
		if _, err := m.StartTransientUnitContext(ctx, a.Name, mode, a.Properties, nil); err != nil {
			return 0, err
		}
	}
	return m.StartTransientUnitContext(ctx, name, mode, props, ch)
}

// SetUnitPropertiesContext changes nothing.
func (m *Manager) SetUnitPropertiesContext(context.Context, string, bool, ...dbus.Property) error {
	return nil
}

// StopUnitContext removes the unit at once.
func (m *Manager) StopUnitContext(_ context.Context, name, _ string, ch chan<- string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.Units, name)
	if ch != nil {
		ch <- "done"
	}
	return 1, nil
}

// ExecStart is the command line a unit was started with (nil: none).
func (m *Manager) ExecStart(name string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return execArgs(m.Properties[name])
}

// StartUnitContext records the start of a static unit.
func (m *Manager) StartUnitContext(_ context.Context, name, _ string, ch chan<- string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Started = append(m.Started, name)
	return 1, nil
}

// ResetFailedUnitContext does nothing: a unit stopped here is gone.
func (m *Manager) ResetFailedUnitContext(context.Context, string) error { return nil }

// GetUnitTypePropertiesContext gives every unit of a type the same
// figures, and systemd's "unknown" for memory: a service (podshim alone)
// used 0.1 s of CPU, a slice (the whole pod) 1.5 s.
func (m *Manager) GetUnitTypePropertiesContext(_ context.Context, unit, unitType string) (map[string]any, error) {
	cpu := uint64(100_000_000)
	if unitType == "Slice" {
		cpu = 1_500_000_000
	}
	return map[string]any{"NRestarts": uint32(2), "MemoryCurrent": uint64(math.MaxUint64), "CPUUsageNSec": cpu}, nil
}

// Set puts a unit in the manager, as a test arranges it.
func (m *Manager) Set(u dbus.UnitStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Units[u.Name] = u
}

// Get is a unit as the manager has it.
func (m *Manager) Get(name string) (dbus.UnitStatus, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.Units[name]
	return u, ok
}

// Has tells whether a unit is loaded.
func (m *Manager) Has(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.Units[name]
	return ok
}
