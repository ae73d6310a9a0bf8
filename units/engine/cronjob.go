package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

// CronRunArgv is the command line of a CronJob timer's service: base
// (podunit cron-run with the sync's configuration) and the CronJob's
// policy, then its template's spec file. `systemctl cat cronjob-*.service`
// shows it all.
func CronRunArgv(base []string, c *generator.CronJob, template string) []string {
	argv := append(slices.Clone(base), "--cronjob", c.Name, "--schedule", c.Schedule,
		"--concurrency-policy", string(c.Concurrency),
		"--successful-jobs-history-limit", strconv.Itoa(int(c.SuccessfulJobsHistoryLimit)),
		"--failed-jobs-history-limit", strconv.Itoa(int(c.FailedJobsHistoryLimit)))
	if c.TimeZone != "" {
		argv = append(argv, "--time-zone", c.TimeZone)
	}
	if d := c.StartingDeadlineSeconds; d != nil {
		argv = append(argv, "--starting-deadline-seconds", strconv.FormatInt(*d, 10))
	}
	return append(argv, template)
}

// cronRun starts the run of the CronJob c due at now, and keeps its
// history limits (see newCronRunCommand).
func CronRun(ctx context.Context, m bus.Manager, ucfg generator.UnitConfig, template string, c *generator.CronJob, now time.Time, report Reporter) error {
	tmpl, err := generator.FromSpec(podspec.ReadSpec(template))
	if err != nil {
		return fmt.Errorf("CronJob %s: its template: %w", c.Name, err)
	}
	if tmpl.Objects, err = podspec.ReadObjects(template); err != nil {
		return fmt.Errorf("CronJob %s: its template: %w", c.Name, err)
	}
	tmpl.Cron = c
	loaded, err := bus.List(ctx, m)
	if err != nil {
		return err
	}
	plan, err := planRun(c, tmpl.Namespace(), now, loaded)
	if err != nil {
		return fmt.Errorf("CronJob %s/%s: %w", tmpl.Namespace(), c.Name, err)
	}
	var errs []error
	if plan.Skip != "" {
		report.Infof("CronJob %s/%s: no run: %s", tmpl.Namespace(), c.Name, plan.Skip)
	}
	for _, name := range plan.Stop {
		report.Infof("CronJob %s/%s: stopping %s, still running (concurrencyPolicy Replace)", tmpl.Namespace(), c.Name, name)
		if err := bus.QueueStop(ctx, m, name); err != nil {
			errs = append(errs, err)
		}
	}
	if plan.Run {
		if err := startRun(ctx, m, ucfg, tmpl, plan.Scheduled, now); err != nil {
			errs = append(errs, err)
		} else {
			report.Infof("CronJob %s/%s: started %s, the run for %s", tmpl.Namespace(), c.Name,
				units.ServiceName(tmpl.Namespace(), generator.RunName(c.Name, plan.Scheduled)), plan.Scheduled.Format(time.RFC3339))
		}
	}
	for _, r := range plan.Prune {
		report.Infof("CronJob %s/%s: removing %s (%s), beyond the history limit", tmpl.Namespace(), c.Name, r.Name, runResult(r))
		if err := bus.Remove(ctx, m, r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(plan.Prune) > 0 {
		// The next sync collects what the removed runs left: their slices,
		// spec files and sandboxes.
		if err := bus.QueueStart(ctx, m, SyncUnit); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// startRun writes the spec files of the run for scheduled and starts its
// unit.
func startRun(ctx context.Context, m bus.Manager, ucfg generator.UnitConfig, tmpl *generator.Pod, scheduled, now time.Time) error {
	run, err := tmpl.Run(scheduled)
	if err != nil {
		return err
	}
	run.Spec.Annotations[generator.AnnotationConfigSeen] = now.UTC().Format(time.RFC3339Nano)
	if err := podspec.WriteSpecFiles(generator.SpecPath(ucfg, run.Namespace(), run.Name(), run.Hash), run.Spec, run.Objects); err != nil {
		return fmt.Errorf("run %s: %w", run.Key(), err)
	}
	u, err := generator.Unit(ucfg, run)
	if err != nil {
		return fmt.Errorf("run %s: %w", run.Key(), err)
	}
	return errors.Join(bus.StartUnits(ctx, m, []*units.Unit{u})...)
}

// runPlan is what a CronJob's timer does at one firing.
type runPlan struct {
	// Scheduled is the latest scheduled time; Run says to start its run.
	Scheduled time.Time
	Run       bool
	// Skip says why no run starts.
	Skip string
	// Stop are the runs to stop first (concurrencyPolicy Replace).
	Stop []string
	// Prune are the finished runs beyond the history limits.
	Prune []bus.Running
}

// planRun decides, as the CronJob controller does, what the timer firing
// at now does, from the runs of c in namespace ns that are loaded.
func planRun(c *generator.CronJob, ns string, now time.Time, loaded map[string]bus.Running) (runPlan, error) {
	scheduled, err := c.Prev(now)
	if err != nil {
		return runPlan{}, err
	}
	plan := runPlan{Scheduled: scheduled}
	var running []bus.Running
	plan.Prune, running = history(c, ns, loaded)
	name := generator.RunName(c.Name, plan.Scheduled)
	_, started := loaded[units.ServiceName(ns, name)]
	switch {
	case plan.Scheduled.IsZero():
		plan.Skip = "no scheduled time has come yet"
	case started:
		plan.Skip = fmt.Sprintf("the run for %s (%s) started already", plan.Scheduled.Format(time.RFC3339), name)
	case c.StartingDeadlineSeconds != nil && now.Sub(plan.Scheduled) > time.Duration(*c.StartingDeadlineSeconds)*time.Second:
		plan.Skip = fmt.Sprintf("the run for %s is %s late, past startingDeadlineSeconds (%d)",
			plan.Scheduled.Format(time.RFC3339), now.Sub(plan.Scheduled).Round(time.Second), *c.StartingDeadlineSeconds)
	case len(running) > 0 && c.Concurrency == batchv1.ForbidConcurrent:
		plan.Skip = fmt.Sprintf("%s still runs (concurrencyPolicy Forbid)", running[0].Name)
	default:
		plan.Run = true
		if c.Concurrency == batchv1.ReplaceConcurrent {
			for _, r := range running {
				plan.Stop = append(plan.Stop, r.Name)
			}
			slices.Sort(plan.Stop)
		}
	}
	return plan, nil
}

// history sorts the loaded runs of c in namespace ns: the finished ones
// beyond the history limits, to remove, and the ones still running.
func history(c *generator.CronJob, ns string, loaded map[string]bus.Running) (prune, running []bus.Running) {
	var succeeded, failed []bus.Running
	for _, r := range loaded {
		if cj, _, ok := generator.ParseRunName(r.PodName); !ok || cj != c.Name || r.Namespace != ns {
			continue
		}
		switch runResult(r) {
		case "succeeded":
			succeeded = append(succeeded, r)
		case "failed":
			failed = append(failed, r)
		default:
			running = append(running, r)
		}
	}
	return append(beyond(succeeded, c.SuccessfulJobsHistoryLimit), beyond(failed, c.FailedJobsHistoryLimit)...), running
}

// pruneHistory removes the finished runs of the CronJobs beyond their
// history limits: a run that finished since its timer last fired counts
// now, as the CronJob controller counts it at each of its syncs.
func (s *Syncer) pruneHistory(ctx context.Context, cronJobs []*generator.Pod, loaded map[string]bus.Running) {
	for _, p := range cronJobs {
		prune, _ := history(p.Cron, p.Namespace(), loaded)
		for _, r := range prune {
			s.Report.Infof("removing %s (%s), beyond CronJob %s's history limit", r.Name, runResult(r), p.Key())
			if err := bus.Remove(ctx, s.Manager, r); err != nil {
				s.Report.Errorf("%v", err)
			}
		}
	}
}

// runResult is how a run's unit stands: "succeeded" (its pod completed:
// active, exited), "failed", or "running" (starting, running, stopping).
func runResult(r bus.Running) string {
	switch {
	case r.ActiveState == "active" && r.SubState == "exited":
		return "succeeded"
	case r.ActiveState == "failed":
		return "failed"
	}
	return "running"
}

// beyond are the runs past the newest limit ones, by scheduled time.
func beyond(runs []bus.Running, limit int32) []bus.Running {
	scheduled := func(r bus.Running) int64 {
		_, t, _ := generator.ParseRunName(r.PodName)
		return t.Unix()
	}
	slices.SortFunc(runs, func(a, b bus.Running) int { return cmp.Compare(scheduled(b), scheduled(a)) })
	if int(limit) >= len(runs) {
		return nil
	}
	return runs[limit:]
}

// cronPlan is what a sync does with the CronJobs: the timers it wants, and
// which runs and template files are theirs.
type cronPlan struct {
	timers []*units.Timer
	next   map[string]time.Time // by timer: the next scheduled time
	// kept are timers of CronJobs whose manifest is invalid now: they keep
	// their last good schedule.
	kept map[string]bool
	// names are the CronJobs ("namespace/name") whose runs are theirs to
	// start and remove, not the sync's.
	names     map[string]bool
	templates map[string]bool // template spec files in use
	failed    int
}

// keepRun tells whether a pod unit is a run of a CronJob of the plan.
func (c *cronPlan) keepRun(r bus.Running) bool {
	cj, _, ok := generator.ParseRunName(r.PodName)
	return ok && c.names[r.Namespace+"/"+cj]
}

// planCronJobs writes the CronJobs' template spec files and makes their
// timers; a suspended CronJob has none. last is what the sync before this
// one recorded: a CronJob kept on its last good timer keeps its record.
func (s *Syncer) planCronJobs(ctx context.Context, set *generator.Set, last State) (*cronPlan, error) {
	plan := &cronPlan{next: map[string]time.Time{}, kept: map[string]bool{}, names: map[string]bool{}, templates: map[string]bool{}}
	s.cronJobs = map[string]CronJobRecord{}
	for _, p := range set.CronJobs {
		plan.names[p.Key()] = true
		s.cronJobs[p.Key()] = CronJobRecord{Schedule: p.Cron.Schedule, TimeZone: p.Cron.TimeZone, Suspend: p.Cron.Suspend,
			ConcurrencyPolicy: string(p.Cron.Concurrency), Manifest: p.Source}
		hash, err := generator.CronHash(p)
		if err != nil {
			return nil, err
		}
		path := generator.CronSpecPath(s.UnitConfig, p.Namespace(), p.Name(), hash)
		if err := podspec.WriteSpecFiles(path, p.Spec, p.Objects); err != nil {
			s.Report.Errorf("CronJob %s: %v", p.Key(), err)
			plan.failed++
			continue
		}
		plan.templates[path] = true
		if p.Cron.Suspend {
			s.Report.Debugf("CronJob %s is suspended: no timer", p.Key())
			continue
		}
		calendar, err := p.Cron.OnCalendar()
		if err != nil {
			return nil, err // validated by the generator
		}
		t := &units.Timer{Namespace: p.Namespace(), CronJob: p.Name(), ConfigHash: hash, Source: p.Source,
			OnCalendar: calendar, ExecStart: CronRunArgv(s.CronRunCmd, p.Cron, path)}
		plan.timers = append(plan.timers, t)
		plan.next[t.Name()], _ = p.Cron.Next(s.clock()) // validated by the generator
	}
	if len(s.invalid) == 0 {
		return plan, nil
	}
	loaded, err := bus.ListTimers(ctx, s.Manager)
	if err != nil {
		return nil, err
	}
	for name, r := range loaded {
		if plan.names[r.Namespace+"/"+r.CronJob] {
			continue
		}
		path := generator.CronSpecPath(s.UnitConfig, r.Namespace, r.CronJob, r.ConfigHash)
		p := s.lastGood(path)
		if p == nil {
			continue
		}
		s.Report.Errorf("%s is invalid: CronJob %s/%s keeps its last good schedule (config %s) until the file is fixed or removed", p.Source, r.Namespace, r.CronJob, r.ConfigHash)
		plan.kept[name] = true
		plan.names[r.Namespace+"/"+r.CronJob] = true
		if record, ok := last.CronJobs[r.Namespace+"/"+r.CronJob]; ok {
			s.cronJobs[r.Namespace+"/"+r.CronJob] = record
		}
		plan.templates[path] = true
	}
	return plan, nil
}

// syncTimers brings the CronJob timers to the plan, and removes the
// template files no CronJob uses. It returns how many could not be synced.
func (s *Syncer) syncTimers(ctx context.Context, plan *cronPlan) int {
	res, err := bus.ReconcileTimers(ctx, s.Manager, plan.timers, func(r bus.RunningTimer) bool { return plan.kept[r.Name] })
	if err != nil {
		s.Report.Errorf("%v", err)
		return 1
	}
	next := func(name string) string {
		if t, ok := plan.next[name]; ok && !t.IsZero() {
			return "; next run at " + t.Format(time.RFC3339)
		}
		return ""
	}
	for _, n := range res.Started {
		s.Report.Infof("started %s%s", n, next(n))
	}
	for _, n := range res.Replaced {
		s.Report.Infof("replaced %s (its CronJob changed; runs under way go on)%s", n, next(n))
	}
	for _, n := range res.Stopped {
		s.Report.Infof("stopped %s (its CronJob is gone or suspended)", n)
	}
	for _, n := range res.Unchanged {
		s.Report.Debugf("unchanged %s", n)
	}
	for _, e := range res.Errors {
		s.Report.Errorf("%v", e)
	}
	s.removeStaleTemplates(plan.templates)
	return len(res.Errors)
}

// removeStaleTemplates removes the CronJob template files not in keep.
func (s *Syncer) removeStaleTemplates(keep map[string]bool) {
	dir := filepath.Dir(generator.CronSpecPath(s.UnitConfig, "", "", ""))
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.Report.Errorf("CronJob templates not cleaned up: %v", err)
		}
		return
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if spec, ok := podspec.SpecFileOf(path); ok && !keep[spec] {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.Report.Errorf("remove stale CronJob template: %v", err)
			}
		}
	}
}
