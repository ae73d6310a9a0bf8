package engine

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"

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
	// After are units that must be active (ready) before the pods start
	// (podunit.io/after); the wait ends early once no manifest asks for
	// the pods any more.
	After []string
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
	start := true
	if len(job.After) > 0 {
		var err error
		if start, err = r.waitAfter(ctx, job); err != nil {
			return err
		}
	}
	var err error
	if start {
		steps := make([]Step, len(job.Specs))
		for i, s := range job.Specs {
			steps[i] = Step{Spec: s, Trigger: trigger, Resume: job.Resume}
		}
		_, err = r.Replace(ctx, steps, job.Rolling)
	}
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

// waitAfter waits for job.After to be active. It ends early, telling not
// to start, once the sync wants none of the job's pods any more (their
// files removed meanwhile) or another generation of one (an edit, which
// may name other dependencies: the sync this hand-off queues plans it).
func (r *Replacer) waitAfter(ctx context.Context, job Job) (start bool, err error) {
	r.init()
	var pods []*generator.Pod
	for _, spec := range job.Specs {
		if p, err := generator.FromSpec(podspec.ReadSpec(spec)); err == nil {
			pods = append(pods, p)
		}
	}
	wctx, cancel := r.until(ctx, func() error {
		gone := true
		for _, p := range pods {
			switch next, err := r.latest(p); {
			case errors.Is(err, errGone):
			case next != p:
				return errSuperseded
			default:
				gone = false
			}
		}
		if gone {
			return errGone
		}
		return nil
	})
	defer cancel()
	for _, u := range job.After {
		if err := bus.WaitActive(wctx, r.Manager, u); err != nil {
			if why := context.Cause(wctx); why == errGone || why == errSuperseded {
				r.Report.Infof("%s: %v while it waited for %s; nothing is started (the sync carries on)", strings.Join(job.Specs, ", "), why, u)
				return false, nil
			}
			return false, err
		}
	}
	return true, nil
}
