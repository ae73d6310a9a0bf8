package engine

import (
	"context"
	"errors"
	"time"

	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

// Job is what one hand-off unit does (see newHandoffCommand).
type Job struct {
	// Specs are the spec files of the pods' new generations.
	Specs []string
	// Rolling replaces them one at a time, each ready before the next (a
	// workload's rollout).
	Rolling bool
	// Trigger is why they are replaced (TriggerManifest,
	// TriggerAutoUpdate).
	Trigger string
	// Resume carries on replacements that were cut short, from their
	// records (units.Unit.Resume).
	Resume bool
}

// Handoff carries out a hand-off unit's job: the replacement of the pods
// of job.Specs by r. A sync is queued when it ends: it sees what is left
// (a spec file gone because a later sync wants another generation, a
// failed replacement, a manifest changed meanwhile) and carries on.
func Handoff(ctx context.Context, r *Replacer, job Job) error {
	trigger := job.Trigger
	if trigger == "" {
		trigger = TriggerManifest
	}
	steps := make([]Step, len(job.Specs))
	for i, s := range job.Specs {
		steps[i] = Step{Spec: s, Trigger: trigger, Resume: job.Resume}
	}
	_, err := r.Replace(ctx, steps, job.Rolling)
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
const SyncUnit = units.SyncUnit
