package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
)

// DefaultSpecDir holds the pod spec files that podshim reads.
const DefaultSpecDir = "/run/podunit/specs"

// maxPasses bounds how often one sync re-reads a directory that keeps
// changing while it runs.
const maxPasses = 3

// A sync reads the manifest directory only once it has held still for
// settleQuiet, so that an editor's save sequence (vim: test file, rename to
// a backup, write, remove the backup) is seen as one change rather than as
// a removed pod followed by a new one. A directory that never holds still
// is read after settleMax anyway.
const (
	settleQuiet = 100 * time.Millisecond
	settleMax   = 2 * time.Second
	settlePoll  = 20 * time.Millisecond
)

// syncGCPercent is the garbage collector's target for a sync: a sync is a
// short-lived process that allocates ~70 kB a manifest, nearly all of it
// garbage at once; collecting less often cut a 1,000-manifest sync from
// 200 to 150 ms (docs/benchmarks.md) for a few tens of MB at peak.
const syncGCPercent = 400

func newSyncCommand() *cobra.Command {
	var (
		configPath, manifestDir, specDir, kubeletConfig, urlCache string
		verbose                                                   bool
		settle, timeout                                           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "reconcile the pod units with the manifest directory",
		Long: `Starts a unit for each new pod, replaces the unit of each changed pod, stops
the units of removed pods and leaves every other unit alone.

podunit.path runs it (as podunit-sync.service) when a manifest changes, and
podunit-sync.timer every 20 s. Exit status 3: some manifests are invalid;
everything valid was synced, and pods of invalid manifests keep their last
good spec.`,
		Args: exactArgs(0, "no arguments"),
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", DefaultConfigPath, "configuration file")
	f.StringVar(&manifestDir, "manifest-dir", "", "manifest directory (default: manifestDir from the configuration, /etc/podunit/manifests)")
	f.StringVar(&specDir, "spec-dir", DefaultSpecDir, "where pod spec files for podshim are written")
	f.BoolVarP(&verbose, "verbose", "v", false, "also report skipped files and unchanged pods")
	f.StringVar(&kubeletConfig, "kubelet-config", "", "a kubelet's KubeletConfiguration whose staticPodPath, staticPodURL and staticPodURLHeader to use (config key kubeletConfig)")
	f.StringVar(&urlCache, "url-cache", DefaultURLCache, "where 'podunit fetch' keeps manifestURL's answer")
	f.DurationVar(&settle, "settle", settleQuiet, "read the manifest directory once it held still this long (0: at once)")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long (stopping pods waits for their grace periods)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		debug.SetGCPercent(syncGCPercent)
		cfg, notes, err := loadConfigWithKubelet(configPath, f.Changed("config"), kubeletConfig)
		if err != nil {
			return err
		}
		report := newReporter(cmd.ErrOrStderr(), verbose)
		for _, n := range notes {
			report.Debugf("%s", n)
		}
		if manifestDir != "" {
			cfg.ManifestDir = manifestDir
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		common := []string{"--config", configPath, "--spec-dir", specDir}
		handoff := append([]string{self, "handoff"}, common...)
		cronRun := append([]string{self, "cron-run"}, common...)
		return runSync(cfg, specDir, urlCache, settle, timeout, handoff, cronRun, report)
	}
	return cmd
}

func runSync(cfg Config, specDir, urlCache string, settle, timeout time.Duration, handoff, cronRun []string, report *reporter) error {
	var err error
	// Absolute, so that every unit's SourcePath names its manifest.
	if cfg.ManifestDir, err = filepath.Abs(cfg.ManifestDir); err != nil {
		return err
	}
	for i, d := range cfg.ManifestDirs {
		if cfg.ManifestDirs[i], err = filepath.Abs(d); err != nil {
			return err
		}
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	defer cancelTimeout()

	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to systemd: %w", err)
	}
	defer conn.Close()
	dirs := append([]string{cfg.ManifestDir}, cfg.ManifestDirs...)
	var watch func(context.Context)
	if os.Getenv("INVOCATION_ID") != "" { // run by systemd (podunit-sync.service), not by hand
		watch = func(ctx context.Context) {
			paths := watchPaths(dirs)
			if changed, err := watchManifestDirs(ctx, conn, watchDropIn, paths); err != nil {
				report.Errorf("changes in %s are picked up by the periodic relist only: %v", strings.Join(paths, ", "), err)
			} else if changed {
				report.Infof("podunit.path now watches %s", strings.Join(paths, ", "))
			}
		}
	}

	s := &syncer{
		watch:      watch,
		handoffCmd: handoff,
		cronRunCmd: cronRun,
		sources:    cfg.sources(urlCache),
		reader:     cfg.reader(),
		podRoot:    podshim.DefaultPodRoot,
		jobs:       jobRecords{dir: DefaultJobDir},
		syncState:  DefaultSyncState,
		quiet:      settle,
		unitConfig: cfg.unitConfig(specDir),
		manager:    conn,
		report:     report,
	}
	rt, err := criclient.New(cfg.CRIEndpoint)
	if err != nil {
		return err
	}
	defer rt.Close()
	rt.Timeout = 30 * time.Second
	s.runtime = rt
	if v, err := rt.Version(ctx, ""); err == nil {
		// What admission checks of the runtime (hostUsers: false).
		s.reader.Node.Runtime = v.RuntimeName + " " + v.RuntimeVersion
		s.reader.Node.UserNamespaces = generator.RuntimeSupportsUserNamespaces(v.RuntimeName, v.RuntimeVersion)
	}
	return s.run(ctx)
}

type syncer struct {
	now func() time.Time // nil: time.Now
	// handoffCmd is the command line of `podunit handoff`, which hand-off
	// units run with spec files after it (see units.Handoff).
	handoffCmd []string
	// cronRunCmd is the command line of `podunit cron-run`, which CronJob
	// timers' services run with the CronJob's policy after it.
	cronRunCmd []string
	// watch makes podunit.path watch what each pass reads (the targets of
	// symlinked manifests too); nil: not run by systemd.
	watch     func(context.Context)
	sources   []generator.Source
	reader    generator.Reader
	podRoot   string // podshim's pod directories, collected when orphaned; "": not collected
	jobs      jobRecords
	syncState string            // where to record the sync for the status API; "": not recorded
	invalid   map[string]string // the last pass's invalid files and their first error
	conflicts map[string][]string
	// The last pass's pods that do not fit the node, and notices by file.
	notAdmitted map[string]notAdmitted
	notices     map[string][]string
	quiet       time.Duration // see settleQuiet
	unitConfig  generator.UnitConfig
	manager     units.TimerManager
	runtime     sandboxRuntime
	report      *reporter
}

// run syncs until the manifest directory held still for a whole pass, so a
// change made while a sync runs is not left for the next trigger.
func (s *syncer) run(ctx context.Context) error {
	start := time.Now()
	var invalid, failed int
	var last syncState
	if s.syncState != "" {
		last, _ = readSyncState(s.syncState)
	}
	for pass := 1; ; pass++ {
		before := settle(ctx, s.quiet, s.dirs()...)
		if s.watch != nil {
			// At every pass: a symlink made while this sync ran (a start
			// request joins a sync under way) must be watched too.
			s.watch(ctx)
		}
		inv, fail, err := s.pass(ctx, last)
		if err != nil {
			return err
		}
		invalid, failed = inv, fail
		if pass == maxPasses || fingerprint(s.dirs()...) == before {
			break
		}
		s.report.Debugf("%s changed during the sync; syncing again", strings.Join(s.dirs(), ", "))
	}
	if s.syncState != "" {
		st := last
		st.Time, st.Duration = time.Now().UTC(), time.Since(start).Seconds()
		st.Failed, st.Invalid, st.Conflicts = failed, s.invalid, s.conflicts
		st.NotAdmitted, st.Notices = s.notAdmitted, s.notices
		st.Syncs++
		if failed > 0 {
			st.FailedSyncs++
		}
		if err := writeSyncState(s.syncState, st); err != nil {
			s.report.Errorf("record the sync for the status API: %v", err)
		}
	}
	switch {
	case failed > 0:
		return &exitError{exitFailure, fmt.Errorf("%d pod unit(s) could not be synced", failed)}
	case invalid > 0:
		return &exitError{exitInvalid, fmt.Errorf("%d manifest problem(s); valid pods were synced", invalid)}
	}
	return nil
}

// pass reads the directory once and reconciles the units with it. It returns
// the number of manifest problems and of units that could not be synced.
// last is what the sync before this one recorded: notices and admission
// results are reported when they differ from it.
func (s *syncer) pass(ctx context.Context, last syncState) (invalid, failed int, err error) {
	set, err := s.reader.Read(s.sources...)
	if err != nil {
		return 0, 0, err
	}
	for _, sk := range set.Skipped {
		s.report.Debugf("skipped %s: %s", sk.Path, sk.Reason)
	}
	s.invalid = map[string]string{}
	s.conflicts = set.Conflicts
	for _, e := range set.Errors {
		for _, fe := range flatten(e) {
			s.report.Errorf("%v", fe)
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
	s.notAdmitted = map[string]notAdmitted{}
	for _, p := range set.NotAdmitted {
		path := generator.SpecPath(s.unitConfig, p.Namespace(), p.Name(), p.Hash)
		na := notAdmitted{Spec: path, Reason: p.Rejected.Reason, Message: p.Rejected.Message}
		if last.NotAdmitted[p.Key()] != na {
			s.report.Infof("pod %s from %s is not started on this node: %s", p.Key(), p.Source, p.Rejected)
		}
		if err := generator.WriteSpecFiles(path, p); err != nil {
			s.report.Errorf("pod %s: %v", p.Key(), err)
			continue
		}
		keep[path] = true
		s.notAdmitted[p.Key()] = na
	}

	loaded, err := units.List(ctx, s.manager)
	if err != nil {
		return invalid, failed, err
	}
	desired := make([]*units.Unit, 0, len(set.Pods))
	for _, p := range set.Pods {
		if result := s.jobs.completed(p, loaded); result != "" {
			s.report.Debugf("job pod %s completed (%s); it is not run again until its manifest changes", p.Key(), result)
			continue
		}
		s.setSeen(p, loaded)
		u, err := generator.Unit(s.unitConfig, p)
		if err != nil {
			s.report.Errorf("pod %s from %s: %v", p.Key(), p.Source, err)
			failed++
			continue
		}
		path := generator.SpecPath(s.unitConfig, p.Namespace(), p.Name(), p.Hash)
		if err := generator.WriteSpecFiles(path, p); err != nil {
			s.report.Errorf("pod %s: %v", p.Key(), err)
			failed++
			continue
		}
		keep[path] = true
		desired = append(desired, u)
	}

	desired = append(desired, s.keepLastGood(loaded, desired, keep)...)

	cron, err := s.planCronJobs(ctx, set)
	if err != nil {
		return invalid, failed, err
	}
	failed += cron.failed
	res, err := units.ReconcileKeeping(ctx, s.manager, desired, cron.keepRun, s.handoff)
	if err != nil {
		return invalid, failed, err
	}
	failed += s.syncTimers(ctx, cron)
	for _, n := range res.Started {
		s.report.Infof("started %s", n)
	}
	for _, n := range res.Replaced {
		s.report.Infof("replacing %s (its manifest changed): the old generation stops, then the new one starts", n)
	}
	for _, n := range res.Pending {
		s.report.Debugf("%s is being replaced already", n)
	}
	for _, n := range res.Stopped {
		s.report.Infof("stopping %s (its manifest is gone)", n)
	}
	for _, n := range res.Unchanged {
		s.report.Debugf("unchanged %s", n)
	}
	for _, e := range res.Errors {
		s.report.Errorf("%v", e)
		failed++
	}
	if loaded, err = units.List(ctx, s.manager); err != nil {
		return invalid, failed, err
	}
	s.pruneHistory(ctx, set.CronJobs, loaded)
	s.jobs.record(loaded, s.unitConfig, set.Pods, s.report)
	s.removeStaleSpecs(loaded, keep)
	if withSandbox := collectSandboxes(ctx, s.runtime, loaded, s.report); withSandbox != nil && s.podRoot != "" {
		for _, p := range set.Pods {
			withSandbox[string(p.Spec.UID)] = true
		}
		collectPodDirs(s.podRoot, withSandbox, time.Now(), s.report)
	}
	return invalid, failed, nil
}

// handoff is the command line of a hand-off unit for job (units.Handoff).
func (s *syncer) handoff(job units.HandoffJob) []string {
	argv := append([]string{}, s.handoffCmd...)
	if job.Rolling {
		argv = append(argv, "--rolling")
	}
	if job.Gone != "" {
		argv = append(argv, "--gone", job.Gone)
	}
	for _, r := range job.Ready {
		argv = append(argv, "--ready", r)
	}
	for _, u := range job.Next {
		argv = append(argv, generator.SpecPath(s.unitConfig, u.Namespace, u.PodName, u.ConfigHash))
	}
	return argv
}

// reportNotices reports each file's notices when they differ from what the
// last sync reported for it, so the journal says each once per change.
func (s *syncer) reportNotices(notices []generator.Notice, last map[string][]string) {
	s.notices = map[string][]string{}
	for _, n := range notices {
		s.notices[n.File] = append(s.notices[n.File], n.String())
	}
	for file, lines := range s.notices {
		if slices.Equal(lines, last[file]) {
			continue
		}
		for _, l := range lines {
			s.report.Noticef("%s", l)
		}
	}
}

// setSeen sets the pod's kubernetes.io/config.seen annotation as the
// kubelet does: when podunit first saw the pod, kept across edits (from the
// spec of the unit running it); it is not part of the config hash.
func (s *syncer) setSeen(p *generator.Pod, loaded map[string]units.Running) {
	if _, err := os.Stat(generator.SpecPath(s.unitConfig, p.Namespace(), p.Name(), p.Hash)); err == nil {
		return // unchanged: its spec file, with the annotation, is written
	}
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	seen := now().UTC().Format(time.RFC3339Nano)
	if r, ok := loaded[units.ServiceName(p.Namespace(), p.Name())]; ok {
		if old, err := generator.ReadSpecFile(generator.SpecPath(s.unitConfig, r.Namespace, r.PodName, r.ConfigHash)); err == nil {
			if v := old.Spec.Annotations[generator.AnnotationConfigSeen]; v != "" {
				seen = v
			}
		}
	}
	p.Spec.Annotations[generator.AnnotationConfigSeen] = seen
}

// keepLastGood returns the units of running pods whose manifest is still
// there but no longer valid (a half-saved file, a typo): they keep running
// on their last good spec, which their spec file holds, until the file is
// fixed or removed. The kubelet would kill them.
func (s *syncer) keepLastGood(loaded map[string]units.Running, desired []*units.Unit, keep map[string]bool) []*units.Unit {
	if len(s.invalid) == 0 {
		return nil
	}
	wanted := map[string]bool{}
	for _, u := range desired {
		wanted[u.Name] = true
	}
	var kept []*units.Unit
	for _, r := range loaded {
		if wanted[r.Name] {
			continue
		}
		path := generator.SpecPath(s.unitConfig, r.Namespace, r.PodName, r.ConfigHash)
		p, err := generator.ReadSpecFile(path)
		if err != nil {
			continue
		}
		if _, bad := s.invalid[p.Source]; !bad {
			continue
		}
		u, err := generator.Unit(s.unitConfig, p)
		if err != nil {
			continue
		}
		s.report.Errorf("%s is invalid: pod %s keeps running on its last good spec (config %s) until the file is fixed or removed", p.Source, p.Key(), p.Hash)
		keep[path] = true
		kept = append(kept, u)
	}
	return kept
}

// flatten splits errors.Join'ed errors, so each problem is its own line.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// removeStaleSpecs removes spec files that neither a desired pod nor a unit
// still loaded (one that could not be stopped) refers to.
func (s *syncer) removeStaleSpecs(loaded map[string]units.Running, keep map[string]bool) {
	for _, r := range loaded {
		keep[generator.SpecPath(s.unitConfig, r.Namespace, r.PodName, r.ConfigHash)] = true
	}
	entries, err := os.ReadDir(s.unitConfig.SpecDir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.report.Errorf("spec files not cleaned up: %v", err)
		}
		return
	}
	for _, e := range entries {
		path := filepath.Join(s.unitConfig.SpecDir, e.Name())
		spec, ok := podspec.SpecFileOf(path)
		if !ok || keep[spec] {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.report.Errorf("remove stale spec file: %v", err)
		}
	}
}

// dirs are the directories (or files) a sync reads.
func (s *syncer) dirs() []string {
	dirs := make([]string, len(s.sources))
	for i, src := range s.sources {
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
