package engine

import (
	"context"
	"errors"
	"time"

	"github.com/podunit/podunit/units/bus"
)

// Handoff carries out a hand-off unit's job (see newHandoffCommand): the
// replacement of the pods of specs by r, one at a time, each ready before
// the next when rolling. A sync is queued when it ends: it sees what is
// left (a spec file gone because a later sync wants another generation, a
// failed replacement, a manifest changed meanwhile) and carries on.
func Handoff(ctx context.Context, r *Replacer, specs []string, rolling bool, trigger string) error {
	steps := make([]Step, len(specs))
	for i, s := range specs {
		steps[i] = Step{Spec: s, Trigger: trigger}
	}
	_, err := r.Replace(ctx, steps, rolling)
	// Always a sync after: a manifest that changed while this hand-off
	// pulled or held its pods to their readiness was left to it, and
	// should not wait for the periodic sync.
	// A fresh context: a hand-off ended by SIGTERM or its timeout still
	// asks for the sync.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if qerr := bus.QueueStart(qctx, r.Manager, SyncUnit); qerr != nil {
		err = errors.Join(err, qerr)
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
