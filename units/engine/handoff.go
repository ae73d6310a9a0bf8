package engine

import (
	"context"
	"errors"

	"github.com/podunit/podunit/units/bus"
)

// Handoff carries out a hand-off unit's job (see newHandoffCommand): the
// replacement of the pods of specs by r, one at a time, each ready before
// the next when rolling. When a spec file is gone (a later sync wants
// another generation) or a replacement failed, a sync is queued: it sees
// what is left and carries on.
func Handoff(ctx context.Context, r *Replacer, specs []string, rolling bool, trigger string) error {
	steps := make([]Step, len(specs))
	for i, s := range specs {
		steps[i] = Step{Spec: s, Trigger: trigger}
	}
	var carryOn bool
	_, err := r.Replace(ctx, steps, rolling, &carryOn)
	if carryOn || err != nil {
		if qerr := bus.QueueStart(ctx, r.Manager, SyncUnit); qerr != nil {
			err = errors.Join(err, qerr)
		}
	}
	if errors.Is(err, ErrRolledBack) {
		// Done as designed: the pod runs its last ready generation, and
		// the record, the journal and the status API say why.
		return nil
	}
	return err
}

// SyncUnit is the service that runs podunit sync.
const SyncUnit = "podunit-sync.service"
