package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

// handoff starts the units of specs (see newHandoffCommand).
func Handoff(ctx context.Context, m bus.Manager, ucfg generator.UnitConfig, specs []string, rolling bool, report Reporter) error {
	var (
		next    []*units.Unit
		carryOn bool
	)
	for _, path := range specs {
		p, err := generator.FromSpec(podspec.ReadSpec(path))
		if errors.Is(err, fs.ErrNotExist) {
			// A later sync wants another generation: it is the next sync's.
			report.Infof("%s is gone (the manifest changed again); the next sync carries on", path)
			carryOn = true
			continue
		}
		if err != nil {
			return err
		}
		u, err := generator.Unit(ucfg, p)
		if err != nil {
			return fmt.Errorf("pod %s: %w", p.Key(), err)
		}
		next = append(next, u)
	}
	var errs []error
	if rolling {
		replaced, err := bus.RollOut(ctx, m, next)
		for _, name := range replaced {
			report.Infof("replaced %s (ready)", name)
		}
		if err != nil {
			errs = append(errs, err)
		}
	} else {
		errs = bus.StartUnits(ctx, m, next)
		if len(errs) == 0 {
			for _, u := range next {
				report.Infof("started %s, its old generation stopped", u.Name)
			}
		}
	}
	if carryOn || len(errs) > 0 {
		// The next sync sees what is left and carries on.
		if err := bus.QueueStart(ctx, m, SyncUnit); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SyncUnit is the service that runs podunit sync.
const SyncUnit = "podunit-sync.service"
