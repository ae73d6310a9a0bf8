package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

// maxPasses bounds how often one sync re-reads a directory that keeps
// changing while it runs.
const maxPasses = 3

// A sync reads the manifest directory only once it has held still for
// SettleQuiet, so that an editor's save sequence (vim: test file, rename to
// a backup, write, remove the backup) is seen as one change rather than as
// a removed pod followed by a new one. A directory that never holds still
// is read after settleMax anyway.
const (
	SettleQuiet = 100 * time.Millisecond
	settleMax   = 2 * time.Second
	settlePoll  = 20 * time.Millisecond
)

// GCPercent is the garbage collector's target for a sync: a sync is a
// short-lived process that allocates ~70 kB a manifest, nearly all of it
// garbage at once; collecting less often cut a 1,000-manifest sync from
// 200 to 150 ms (docs/benchmarks.md) for a few tens of MB at peak.
const GCPercent = 400

// Syncer is the sync engine: it reads the manifests of its sources,
// writes the pods' spec files and brings systemd's pod units and CronJob
// timers to them, without waiting on any pod (bus.Reconcile); it keeps a
// pod whose manifest turned invalid on its last good spec, records finished
// Jobs, keeps CronJobs' history limits, collects orphaned sandboxes and pod
// directories, and records each sync for the status API. `podunit sync`
// fills it in from the configuration and runs it.
type Syncer struct {
	// Sources are the manifest directories, read in order (the first
	// definition of a pod wins); Reader reads them for this node.
	Sources []generator.Source
	Reader  generator.Reader
	// UnitConfig is how pods become units and where spec files go.
	UnitConfig generator.UnitConfig
	// Manager is systemd; Runtime the container runtime (sandboxes of pods
	// no unit owns are removed).
	Manager bus.TimerManager
	Runtime Runtime
	// Images tells which images the runtime has, for the pods about to
	// start: one that must pull waits for network-online.target
	// (generator.UnitConfig.ImagePresent); nil: not asked.
	Images Images
	// Report receives what the sync did and found.
	Report Reporter
	// Services is where the Services' reconciler keeps what each Service
	// holds and writes the node's Service table; zero: no Services.
	Services ServiceConfig

	// HandoffCmd is the command line of `podunit handoff`, which hand-off
	// units run with their flags and spec files after it (bus.Handoff);
	// CronRunCmd that of `podunit cron-run`, which CronJob timers'
	// services run with the CronJob's policy after it.
	HandoffCmd, CronRunCmd []string
	// Watch makes podunit.path watch what each pass reads (the targets of
	// symlinked manifests too); nil: nothing to watch (not run by systemd).
	Watch func(context.Context)
	// PodRoot holds podshim's pod directories, collected when orphaned;
	// "": not collected. LogRoot holds the pods' log directories, collected
	// with their pod directories.
	PodRoot, LogRoot string
	// Jobs records finished Job pods across reboots.
	Jobs JobRecords
	// Rollouts are the hand-offs' records (DefaultRolloutDir): a pod
	// whose new generation was rolled back runs its last ready generation
	// until its manifest changes again.
	Rollouts Rollouts
	// StatePath is where the sync is recorded for the status API (State);
	// "": not recorded.
	StatePath string
	// Quiet is how long the directories must hold still before they are
	// read (SettleQuiet; 0: at once). A sync's first pass reads them at
	// once when nothing in them is on its way (quietAlready), unless
	// AlwaysSettle (make bench's "before", to measure both in one run).
	Quiet        time.Duration
	AlwaysSettle bool
	// Main is when the sync's process began its main, for the timings
	// line; zero: not told.
	Main time.Time
	// Now is the clock; nil: time.Now.
	Now func() time.Time

	// What the last pass found: invalid files and their first error, pods
	// defined twice, pods that do not fit the node, notices by file.
	invalid     map[string]string
	conflicts   map[string][]string
	notAdmitted map[string]NotAdmitted
	notices     map[string][]string
	cronJobs    map[string]CronJobRecord
	rolledBack  map[string]string
	// serviceProblems are the Services' errors, by namespace/name.
	serviceProblems map[string][]ServiceProblem
	// busy are the hand-offs that ran when the last pass began; taken
	// the hand-off and rollout units whose names were taken when the pass
	// queued them, by ones that had ended their work (in their
	// ExecStopPost=): what they were to do waits for another pass.
	busy  map[string]bool
	taken []string
	// marks are the moments of the pass under way, for its timings line;
	// readAtOnce: the pass read the directories without settling.
	marks      passMarks
	readAtOnce bool
}

// passMarks are when a pass began (and the same moment on
// CLOCK_MONOTONIC, in µs), had the directories settled, had read them,
// had planned the units and had changed them.
type passMarks struct {
	main, began                    time.Time
	beganMonotonic                 int64
	settled, read, planned, queued time.Time
}

// timings is the pass's timings line: where the time to a pod unit's
// start went (make bench's start trace reads it).
func (m passMarks) timings(started int) string {
	ms := func(t time.Time) float64 { return float64(t.Sub(m.began).Microseconds()) / 1000 }
	line := fmt.Sprintf("started %d unit(s) %.1f ms into the pass: settled %.1f ms, read %.1f ms, planned %.1f ms, units changed %.1f ms (the pass began at CLOCK_MONOTONIC %d µs",
		started, ms(m.queued), ms(m.settled), ms(m.read), ms(m.planned), ms(m.queued), m.beganMonotonic)
	if !m.main.IsZero() {
		line += fmt.Sprintf(", %.1f ms after the process's main", float64(m.began.Sub(m.main).Microseconds())/1000)
	}
	return line + ")"
}

// handoffEnded tells whether a hand-off that ran when the last pass began
// has ended since, or whether the pass could not queue one because the
// unit's name was still taken by one ending. Either way the pass left
// work (the hand-off's queued sync merged into this one, or a replacement
// not queued): it waits briefly for those units to be gone, so that the
// next pass can queue them.
func (s *Syncer) handoffEnded(ctx context.Context) bool {
	ended := slices.Clone(s.taken)
	if len(s.busy) > 0 {
		if now, err := bus.PendingHandoffs(ctx, s.Manager); err == nil {
			for name := range s.busy {
				if !now[name] {
					ended = append(ended, name)
				}
			}
		}
	}
	if len(ended) == 0 {
		return false
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, name := range ended {
		_ = bus.WaitFinished(wctx, s.Manager, name) // an ExecStopPost= is quick; the next pass sees anyway
	}
	return true
}

// Reporter receives a sync's messages for people.
type Reporter interface {
	// Errorf reports a problem the user has to act on.
	Errorf(format string, args ...any)
	// Noticef reports what podunit accepted without acting on it.
	Noticef(format string, args ...any)
	// Infof reports a change.
	Infof(format string, args ...any)
	// Debugf reports what -v asks for: skipped files, unchanged pods.
	Debugf(format string, args ...any)
}

// Result is how a sync went: the manifest problems it found (everything
// valid was synced all the same) and the pod units it could not bring to
// their state.
type Result struct {
	Invalid, Failed int
}

// Run syncs until the manifest directories held still for a whole pass, so
// a change made while a sync runs is not left for the next trigger. The
// error is for a sync that could not run at all (systemd unreachable).
func (s *Syncer) Run(ctx context.Context) (Result, error) {
	start := time.Now()
	var invalid, failed int
	var last State
	if s.StatePath != "" {
		last, _ = ReadState(s.StatePath)
	}
	for pass := 1; ; pass++ {
		s.marks = passMarks{began: time.Now(), beganMonotonic: monotonicMicros(), main: s.Main}
		// The first pass reads at once what is quiet already; a change
		// while it reads makes it settle and read again (readSettled).
		s.readAtOnce = pass == 1 && s.Quiet > 0 && !s.AlwaysSettle && quietAlready(s.dirs()...)
		var before string
		if s.readAtOnce {
			before = fingerprint(s.dirs()...)
		} else {
			before = settle(ctx, s.Quiet, s.dirs()...)
		}
		s.marks.settled = time.Now()
		if s.Watch != nil {
			// At every pass: a symlink made while this sync ran (a start
			// request joins a sync under way) must be watched too.
			s.Watch(ctx)
		}
		inv, fail, err := s.pass(ctx, last, &before)
		if err != nil {
			return Result{}, err
		}
		invalid, failed = inv, fail
		if pass == maxPasses {
			break
		}
		if fingerprint(s.dirs()...) != before {
			s.Report.Debugf("%s changed during the sync; syncing again", strings.Join(s.dirs(), ", "))
			continue
		}
		// A hand-off that ended during the pass queued a sync, which
		// systemd merges into this one (a start job on a running oneshot):
		// what it left is this sync's to carry on, not the periodic one's.
		if !s.handoffEnded(ctx) {
			break
		}
		s.Report.Debugf("a hand-off ended during the sync; syncing again")
	}
	if s.StatePath != "" {
		st := last
		st.Time, st.Duration = time.Now().UTC(), time.Since(start).Seconds()
		st.Failed, st.Invalid, st.Conflicts = failed, s.invalid, s.conflicts
		st.NotAdmitted, st.Notices, st.CronJobs = s.notAdmitted, s.notices, s.cronJobs
		st.RolledBack, st.ServiceProblems = s.rolledBack, s.serviceProblems
		st.Syncs++
		if failed > 0 {
			st.FailedSyncs++
		}
		if err := writeState(s.StatePath, st); err != nil {
			s.Report.Errorf("record the sync for the status API: %v", err)
		}
	}
	return Result{Invalid: invalid, Failed: failed}, nil
}

// pass reads the directory once and reconciles the units with it. It returns
// the number of manifest problems and of units that could not be synced.
// last is what the sync before this one recorded: notices and admission
// results are reported when they differ from it.
func (s *Syncer) pass(ctx context.Context, last State, before *string) (invalid, failed int, err error) {
	reader := s.Reader
	reader.Held, reader.HeldHostPorts = s.heldByServices(), s.hostPortsHeld()
	set, err := reader.Read(s.Sources...)
	if err != nil {
		return 0, 0, err
	}
	if s.readAtOnce && (fingerprint(s.dirs()...) != *before || !quietAlready(s.dirs()...)) {
		// Read at once, but the directories changed meanwhile (an
		// editor's save under way): what was read may miss a manifest
		// renamed away for a moment. Settle and read again.
		s.Report.Debugf("%s changed while read at once; waiting for them to hold still", strings.Join(s.dirs(), ", "))
		*before = settle(ctx, s.Quiet, s.dirs()...)
		s.marks.settled = time.Now()
		if set, err = reader.Read(s.Sources...); err != nil {
			return 0, 0, err
		}
	}
	s.marks.read = time.Now()
	for _, sk := range set.Skipped {
		s.Report.Debugf("skipped %s: %s", sk.Path, sk.Reason)
	}
	s.invalid = map[string]string{}
	s.conflicts = set.Conflicts
	for _, e := range set.Errors {
		for _, fe := range generator.Flatten(e) {
			s.Report.Errorf("%v", fe)
			invalid++
			var f *generator.FieldError
			if errors.As(fe, &f) {
				if _, seen := s.invalid[f.File]; !seen {
					s.invalid[f.File] = f.Error()
				}
			}
		}
	}

	s.reportNotices(set.Notices, last.Notices)
	keep := map[string]bool{}
	s.notAdmitted = map[string]NotAdmitted{}
	for _, p := range set.NotAdmitted {
		path := generator.SpecPath(s.UnitConfig, p.Namespace(), p.Name(), p.Hash)
		na := NotAdmitted{Spec: path, Reason: p.Rejected.Reason, Message: p.Rejected.Message}
		if last.NotAdmitted[p.Key()] != na {
			s.Report.Infof("pod %s from %s is not started on this node: %s", p.Key(), p.Source, p.Rejected)
		}
		if err := podspec.WriteSpecFiles(path, p.Spec, p.Objects); err != nil {
			s.Report.Errorf("pod %s: %v", p.Key(), err)
			continue
		}
		keep[path] = true
		s.notAdmitted[p.Key()] = na
	}

	loaded, err := bus.List(ctx, s.Manager)
	if err != nil {
		return invalid, failed, err
	}
	// The hand-offs and rollouts under way own their pods' records and
	// spec files until they end (a later sync tells them what is wanted
	// now; they queue a sync when they end).
	busy, err := bus.PendingHandoffs(ctx, s.Manager)
	if err != nil {
		return invalid, failed, err
	}
	s.busy = busy
	desired := make([]*units.Unit, 0, len(set.Pods))
	present := imagePresence(ctx, s.Images)
	rollouts := s.Rollouts.All()
	s.rolledBack = map[string]string{}
	for _, p := range set.Pods {
		if result := s.Jobs.completed(p, loaded); result != "" {
			s.Report.Debugf("job pod %s completed (%s); it is not run again until its manifest changes", p.Key(), result)
			continue
		}
		s.setSeen(p, loaded)
		if u := s.rolledBackUnit(p, rollouts[p.Key()], last, keep); u != nil {
			desired = append(desired, u)
			continue
		}
		ucfg := s.UnitConfig
		if r, ok := loaded[units.ServiceName(p.Namespace(), p.Name())]; !ok || r.ConfigHash != p.Hash {
			ucfg.ImagePresent = present // only a unit about to start asks
		}
		u, err := generator.Unit(ucfg, p)
		if err != nil {
			s.Report.Errorf("pod %s from %s: %v", p.Key(), p.Source, err)
			failed++
			continue
		}
		path := generator.SpecPath(s.UnitConfig, p.Namespace(), p.Name(), p.Hash)
		if err := podspec.WriteSpecFiles(path, p.Spec, p.Objects); err != nil {
			s.Report.Errorf("pod %s: %v", p.Key(), err)
			failed++
			continue
		}
		keep[path] = true
		desired = append(desired, u)
	}

	desired = append(desired, s.keepLastGood(loaded, desired, keep, rollouts, last)...)
	svcInvalid, svcFailed := s.syncServices(set, desired)
	invalid, failed = invalid+svcInvalid, failed+svcFailed
	handedOff := handedOffPods(busy, desired)
	s.markCutShort(desired, rollouts, handedOff)
	s.collectRollouts(rollouts, set.Pods, desired, loaded, handedOff)
	// Before any unit changes: a hand-off under way goes on with what is
	// wanted now, and starts nothing for a pod that is gone.
	if err := writeWanted(WantedPath(s.UnitConfig), desired); err != nil {
		s.Report.Errorf("tell the hand-offs under way what is wanted: %v", err)
	}

	cron, err := s.planCronJobs(ctx, set, last)
	if err != nil {
		return invalid, failed, err
	}
	failed += cron.failed
	s.marks.planned = time.Now()
	res, err := bus.ReconcileKeeping(ctx, s.Manager, desired, cron.keepRun, s.handoff)
	if err != nil {
		return invalid, failed, err
	}
	s.marks.queued = time.Now()
	failed += s.syncTimers(ctx, cron)
	for _, n := range res.Started {
		s.Report.Infof("started %s", n)
	}
	if len(res.Started) > 0 {
		s.Report.Infof("%s", s.marks.timings(len(res.Started)))
	}
	for _, n := range res.Replaced {
		s.Report.Infof("replacing %s (its manifest changed): its hand-off pulls the new generation's images, then stops the old one and starts the new one", n)
	}
	for _, n := range res.Resumed {
		s.Report.Infof("carrying on the replacement of %s, cut short (its hand-off was killed, or the machine went down): the generation wanted is held to its readiness against the last ready one", n)
	}
	s.taken = nil
	for _, n := range res.Pending {
		if u := unitNamed(desired, n); u != nil {
			owner := units.HandoffName(u.Name)
			if u.Group != "" && !busy[owner] {
				owner = units.RolloutName(u.Namespace, u.Group)
			}
			if !busy[owner] {
				// Not under way when the pass began: a hand-off that had
				// done its work and was ending held the name.
				s.taken = append(s.taken, owner)
				s.Report.Debugf("%s: %s is ending; the sync carries on once it is gone", n, owner)
				continue
			}
		}
		s.Report.Debugf("%s is being replaced already: its hand-off goes on with what is wanted now", n)
	}
	for _, n := range res.Stopped {
		s.Report.Infof("stopping %s (its manifest is gone)", n)
	}
	for _, n := range res.Unchanged {
		s.Report.Debugf("unchanged %s", n)
	}
	for _, e := range res.Errors {
		s.Report.Errorf("%v", e)
		failed++
	}
	if loaded, err = bus.List(ctx, s.Manager); err != nil {
		return invalid, failed, err
	}
	s.pruneHistory(ctx, set.CronJobs, loaded)
	s.Jobs.record(loaded, s.UnitConfig, set.Pods, s.Report)
	s.removeStaleSpecs(loaded, keep, handedOff)
	if withSandbox := collectSandboxes(ctx, s.Runtime, loaded, s.Report); withSandbox != nil && s.PodRoot != "" {
		for _, p := range set.Pods {
			withSandbox[string(p.Spec.UID)] = true
		}
		collectPodDirs(s.PodRoot, s.LogRoot, withSandbox, time.Now(), s.Report)
	}
	return invalid, failed, nil
}

// unitNamed is the unit of units named name; nil if none.
func unitNamed(us []*units.Unit, name string) *units.Unit {
	for _, u := range us {
		if u.Name == name {
			return u
		}
	}
	return nil
}

// handoff is the command line of a hand-off unit for job (bus.Handoff).
func (s *Syncer) handoff(job bus.HandoffJob) []string {
	argv := append([]string{}, s.HandoffCmd...)
	if job.Rolling {
		argv = append(argv, "--rolling")
	}
	if job.Resume {
		argv = append(argv, "--resume")
	}
	if job.Gone != "" {
		argv = append(argv, "--gone", job.Gone)
	}
	for _, r := range job.Ready {
		argv = append(argv, "--ready", r)
	}
	for _, u := range job.Next {
		argv = append(argv, generator.SpecPath(s.UnitConfig, u.Namespace, u.PodName, u.ConfigHash))
	}
	return argv
}

// rolledBackUnit is the unit of the generation pod p runs instead of its
// own when p's generation was rolled back (a replacement that was not
// ready): the last ready generation, pinned to the images it ran, until
// the manifest changes again. nil otherwise. p's spec file is written all
// the same (the status API shows what the manifest asks for).
func (s *Syncer) rolledBackUnit(p *generator.Pod, rec *Rollout, last State, keep map[string]bool) *units.Unit {
	if rec == nil || rec.Phase != PhaseRolledBack || rec.Generation != p.Hash || rec.Previous == "" {
		return nil
	}
	u, err := previousUnit(s.UnitConfig, s.Rollouts, rec)
	if err != nil {
		s.Report.Errorf("pod %s: generation %s was rolled back, but generation %s cannot run again: %v; running the manifest's", p.Key(), rec.Generation, rec.Previous, err)
		return nil
	}
	path := generator.SpecPath(s.UnitConfig, p.Namespace(), p.Name(), p.Hash)
	if err := podspec.WriteSpecFiles(path, p.Spec, p.Objects); err != nil {
		s.Report.Errorf("pod %s: %v", p.Key(), err)
	}
	keep[path] = true
	keep[generator.SpecPath(s.UnitConfig, p.Namespace(), p.Name(), rec.Previous)] = true
	s.rolledBack[p.Key()] = rec.Generation
	if last.RolledBack[p.Key()] != rec.Generation {
		s.Report.Errorf("pod %s runs generation %s: generation %s of %s was rolled back (%s: %s); it is tried again when the manifest changes",
			p.Key(), rec.Previous, rec.Generation, p.Source, rec.Reason, rec.Message)
	}
	return u
}

// markCutShort marks the desired units whose replacement was cut short
// (units.Unit.Resume): a record under way whose hand-off or rollout is
// gone (SIGKILL, the OOM killer, a reboot or a power cut) while the
// generation wanted is not the last ready one it kept. Its hand-off
// carries the replacement on, gated against that generation: a new
// generation that never proved ready is not taken for a good one because
// its hand-off died.
func (s *Syncer) markCutShort(desired []*units.Unit, rollouts map[string]*Rollout, handedOff map[string]bool) {
	for _, u := range desired {
		key := u.Namespace + "/" + u.PodName
		if rec := rollouts[key]; cutShort(rec) && !handedOff[key] && u.ConfigHash != rec.Previous {
			u.Resume = true
		}
	}
}

// cutShort tells whether rec is a replacement under way (or a rollout's
// replica waiting for the rest) with a ready generation to come back to;
// with no hand-off running for it, one that was cut short.
func cutShort(rec *Rollout) bool {
	return rec != nil && rec.Previous != "" && rec.Phase != PhaseRolledBack
}

// collectRollouts removes the records of replacements that are over: a
// rollback whose manifest changed since (the new generation has a
// hand-off and a record of its own), a replacement whose pod is gone or
// whose manifest asks again for the generation it replaced. A record
// whose hand-off or rollout is under way is the hand-off's: it holds the
// generation a rollback returns to, whatever the manifest says now; so is
// the record of a replacement cut short, which a hand-off carries on
// (markCutShort).
func (s *Syncer) collectRollouts(rollouts map[string]*Rollout, pods []*generator.Pod, desired []*units.Unit, loaded map[string]bus.Running, handedOff map[string]bool) {
	if len(rollouts) == 0 {
		return
	}
	manifest := map[string]string{} // the config hash each manifest asks for
	for _, p := range pods {
		manifest[p.Key()] = p.Hash
	}
	resumed := map[string]bool{}
	for _, u := range desired {
		if u.Resume {
			resumed[u.Namespace+"/"+u.PodName] = true
		}
	}
	for key, rec := range rollouts {
		if handedOff[key] || resumed[key] {
			continue
		}
		hash, wanted := manifest[key]
		_, running := loaded[units.ServiceName(rec.Namespace, rec.Name)]
		// A rollback holds its pod while the manifest asks for the
		// generation that failed, and the pod's unit runs or is wanted.
		// A pod no valid manifest asks for still has its record while its
		// unit runs: on its last good spec (an invalid edit), or stopping.
		held := rec.Phase == PhaseRolledBack && ((wanted && hash == rec.Generation) || (!wanted && running))
		if held {
			continue
		}
		if err := s.Rollouts.Remove(rec.Namespace, rec.Name); err != nil {
			s.Report.Errorf("pod %s: %v", key, err)
		}
	}
}

// handedOffPods are the pods (namespace/name) that a hand-off or rollout
// under way may start: those whose hand-off unit, or whose workload's
// rollout unit, runs or is queued.
func handedOffPods(busy map[string]bool, desired []*units.Unit) map[string]bool {
	out := map[string]bool{}
	// Every pod of a busy hand-off, wanted, loaded or neither (its file
	// removed between the old generation's stop and the new one's start):
	// its spec files are the hand-off's until it sees the pod is gone.
	for name := range busy {
		if ns, pod, ok := units.HandoffPod(name); ok {
			out[ns+"/"+pod] = true
		}
	}
	for _, u := range desired {
		if u.Group != "" && busy[units.RolloutName(u.Namespace, u.Group)] {
			out[u.Namespace+"/"+u.PodName] = true
		}
	}
	return out
}

// reportNotices reports each file's notices when they differ from what the
// last sync reported for it, so the journal says each once per change.
func (s *Syncer) reportNotices(notices []generator.Notice, last map[string][]string) {
	s.notices = map[string][]string{}
	for _, n := range notices {
		s.notices[n.File] = append(s.notices[n.File], n.String())
	}
	for file, lines := range s.notices {
		if slices.Equal(lines, last[file]) {
			continue
		}
		for _, l := range lines {
			s.Report.Noticef("%s", l)
		}
	}
}

// setSeen sets the pod's kubernetes.io/config.seen annotation as the
// kubelet does: when podunit first saw the pod, kept across edits (from the
// spec of the unit running it); it is not part of the config hash.
func (s *Syncer) setSeen(p *generator.Pod, loaded map[string]bus.Running) {
	if _, err := os.Stat(generator.SpecPath(s.UnitConfig, p.Namespace(), p.Name(), p.Hash)); err == nil {
		return // unchanged: its spec file, with the annotation, is written
	}
	seen := s.clock().UTC().Format(time.RFC3339Nano)
	if r, ok := loaded[units.ServiceName(p.Namespace(), p.Name())]; ok {
		if old, err := generator.FromSpec(podspec.ReadSpec(generator.SpecPath(s.UnitConfig, r.Namespace, r.PodName, r.ConfigHash))); err == nil {
			if v := old.Spec.Annotations[generator.AnnotationConfigSeen]; v != "" {
				seen = v
			}
		}
	}
	p.Spec.Annotations[generator.AnnotationConfigSeen] = seen
}

// keepLastGood returns the units of pods whose manifest is still there but
// no longer valid (a half-saved file, a typo): they keep running on their
// last good spec until the file is fixed or removed. The kubelet would
// kill them. A pod's last good spec is the generation the last sync wanted
// for it (the wanted file: what its hand-off rolls out, or the generation
// a rollback holds it on), whose spec file that sync kept, even when its
// unit is not loaded now (between a replacement's stop and start, or a
// hand-off killed there); else the generation its unit runs.
func (s *Syncer) keepLastGood(loaded map[string]bus.Running, desired []*units.Unit, keep map[string]bool, rollouts map[string]*Rollout, last State) []*units.Unit {
	if len(s.invalid) == 0 {
		return nil
	}
	wanted := map[string]bool{}
	for _, u := range desired {
		wanted[u.Name] = true
	}
	specs := map[string]string{} // unit name → its last good spec
	for _, r := range loaded {
		specs[r.Name] = generator.SpecPath(s.UnitConfig, r.Namespace, r.PodName, r.ConfigHash)
	}
	if last, err := readWanted(WantedPath(s.UnitConfig)); err == nil {
		for key, hash := range last.Pods {
			ns, name, _ := strings.Cut(key, "/")
			path := generator.SpecPath(s.UnitConfig, ns, name, hash)
			if _, err := os.Stat(path); err == nil {
				specs[units.ServiceName(ns, name)] = path
			}
		}
	}
	var kept []*units.Unit
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		if wanted[name] {
			continue
		}
		path := specs[name]
		p := s.lastGood(path)
		if p == nil {
			continue
		}
		keep[path] = true
		// Its last good generation was rolled back: the rollback holds
		// it on the generation before, as for a valid manifest.
		if u := s.rolledBackUnit(p, rollouts[p.Key()], last, keep); u != nil {
			kept = append(kept, u)
			continue
		}
		u, err := generator.Unit(s.UnitConfig, p)
		if err != nil {
			continue
		}
		s.Report.Errorf("%s is invalid: pod %s keeps running on its last good spec (config %s) until the file is fixed or removed", p.Source, p.Key(), p.Hash)
		kept = append(kept, u)
	}
	return kept
}

// lastGood is the pod of a spec file when its manifest is invalid now: it
// keeps running (or scheduling) on that last good spec. nil otherwise.
func (s *Syncer) lastGood(spec string) *generator.Pod {
	p, err := generator.FromSpec(podspec.ReadSpec(spec))
	if err != nil {
		return nil
	}
	if _, bad := s.invalid[p.Source]; !bad {
		return nil
	}
	return p
}

// removeStaleSpecs removes spec files that neither a desired pod nor a unit
// still loaded (one that could not be stopped) refers to, nor a hand-off
// under way for the pod (handedOff: it may be about to start the
// generation it was given; it goes on with the one wanted now, and the
// sync it queues when it ends collects the rest).
func (s *Syncer) removeStaleSpecs(loaded map[string]bus.Running, keep map[string]bool, handedOff map[string]bool) {
	for _, r := range loaded {
		keep[generator.SpecPath(s.UnitConfig, r.Namespace, r.PodName, r.ConfigHash)] = true
	}
	entries, err := os.ReadDir(s.UnitConfig.SpecDir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.Report.Errorf("spec files not cleaned up: %v", err)
		}
		return
	}
	for _, e := range entries {
		path := filepath.Join(s.UnitConfig.SpecDir, e.Name())
		spec, ok := podspec.SpecFileOf(path)
		if !ok || keep[spec] || handedOff[specPod(spec)] {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.Report.Errorf("remove stale spec file: %v", err)
		}
	}
}

// specPod is the namespace/name of the pod of a spec file's path
// (generator.SpecPath: <namespace>_<name>-<hash>.json).
func specPod(spec string) string {
	stem := strings.TrimSuffix(filepath.Base(spec), ".json")
	if i := strings.LastIndexByte(stem, '-'); i > 0 {
		stem = stem[:i]
	}
	ns, name, _ := strings.Cut(stem, "_")
	return ns + "/" + name
}

// dirs are the directories (or files) a sync reads.
func (s *Syncer) dirs() []string {
	dirs := make([]string, len(s.Sources))
	for i, src := range s.Sources {
		dirs[i] = src.Dir
	}
	return dirs
}

// settle waits until the directories' fingerprint has not changed for quiet
// (at most settleMax) and returns it.
func settle(ctx context.Context, quiet time.Duration, dirs ...string) string {
	fp := fingerprint(dirs...)
	if quiet <= 0 {
		return fp
	}
	deadline := time.Now().Add(settleMax)
	stable := time.Now()
	for time.Since(stable) < quiet && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return fp
		case <-time.After(settlePoll):
		}
		if now := fingerprint(dirs...); now != fp {
			fp, stable = now, time.Now()
		}
	}
	return fp
}

// fingerprint summarises directories' entries (names, sizes, modification
// times, following symlinks) to tell whether they changed.
func fingerprint(dirs ...string) string {
	var parts []string
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			parts = append(parts, dir+": error: "+err.Error())
			continue
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			info, err := os.Stat(path)
			if err != nil {
				parts = append(parts, path+":?")
				continue
			}
			parts = append(parts, fmt.Sprintf("%s:%d:%d", path, info.Size(), info.ModTime().UnixNano()))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "\n")
}

// clock is the sync's now.
func (s *Syncer) clock() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
