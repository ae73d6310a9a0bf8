package engine

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

func runUnit(cronJob string, scheduled time.Time, active, sub string) bus.Running {
	name := generator.RunName(cronJob, scheduled)
	return bus.Running{Name: units.ServiceName("default", name), Namespace: "default", PodName: name, ConfigHash: "aa",
		ActiveState: active, SubState: sub}
}

// Each firing of a CronJob's timer is decided as the CronJob controller
// decides it: the run for the latest scheduled time, once; Forbid skips it
// while a run runs, Replace stops that run; a late start past the deadline
// is skipped; finished runs beyond the history limits go, newest kept.
func TestPlanRun(t *testing.T) {
	at := func(hhmm string) time.Time {
		t, _ := time.ParseInLocation("2006-01-02 15:04", "2026-12-02 "+hhmm, time.UTC)
		return t
	}
	deadline := int64(60)
	base := generator.CronJob{Name: "backup", Schedule: "*/10 * * * *", TimeZone: "Etc/UTC", Concurrency: batchv1.AllowConcurrent,
		SuccessfulJobsHistoryLimit: 2, FailedJobsHistoryLimit: 1}
	history := []bus.Running{
		runUnit("backup", at("09:00"), "active", "exited"),
		runUnit("backup", at("09:10"), "failed", "failed"),
		runUnit("backup", at("09:20"), "active", "exited"),
		runUnit("backup", at("09:30"), "failed", "failed"),
		runUnit("backup", at("09:40"), "active", "exited"),
		runUnit("other", at("09:40"), "active", "exited"), // another CronJob's
	}
	running := runUnit("backup", at("09:50"), "active", "running")
	for _, tc := range []struct {
		name        string
		policy      batchv1.ConcurrencyPolicy
		deadline    *int64
		now         time.Time
		loaded      []bus.Running
		run         bool
		skip        string
		stop, prune []string
	}{
		{name: "due", now: at("10:00").Add(300 * time.Millisecond), loaded: history, run: true,
			prune: []string{"pod-backup-29936700.service", "pod-backup-29936710.service"}},
		{name: "allow overlaps", now: at("10:00"), loaded: []bus.Running{running}, run: true},
		{name: "forbid", policy: batchv1.ForbidConcurrent, now: at("10:00"), loaded: []bus.Running{running},
			skip: "pod-backup-29936750.service still runs (concurrencyPolicy Forbid)"},
		{name: "forbid, last run done", policy: batchv1.ForbidConcurrent, now: at("10:00"), loaded: history[:1], run: true},
		{name: "replace", policy: batchv1.ReplaceConcurrent, now: at("10:00"), loaded: []bus.Running{running}, run: true,
			stop: []string{"pod-backup-29936750.service"}},
		{name: "started already", now: at("10:05"), loaded: []bus.Running{runUnit("backup", at("10:00"), "active", "running")},
			skip: "the run for 2026-12-02T10:00:00Z (backup-29936760) started already"},
		{name: "late, no deadline", now: at("10:09"), run: true},
		{name: "past the deadline", deadline: &deadline, now: at("10:09"),
			skip: "the run for 2026-12-02T10:00:00Z is 9m0s late, past startingDeadlineSeconds (60)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			if tc.policy != "" {
				c.Concurrency = tc.policy
			}
			c.StartingDeadlineSeconds = tc.deadline
			loaded := map[string]bus.Running{}
			for _, r := range tc.loaded {
				loaded[r.Name] = r
			}
			plan, err := planRun(&c, "default", tc.now, loaded)
			if err != nil {
				t.Fatal(err)
			}
			var prune []string
			for _, r := range plan.Prune {
				prune = append(prune, r.Name)
			}
			slices.Sort(prune)
			if plan.Run != tc.run || plan.Skip != tc.skip || !slices.Equal(plan.Stop, tc.stop) || !slices.Equal(prune, tc.prune) {
				t.Errorf("plan: run %v, skip %q, stop %v, prune %v\nwant: run %v, skip %q, stop %v, prune %v",
					plan.Run, plan.Skip, plan.Stop, prune, tc.run, tc.skip, tc.stop, tc.prune)
			}
			if tc.run && !plan.Scheduled.Equal(at("10:00")) {
				t.Errorf("scheduled %v, want 10:00", plan.Scheduled)
			}
		})
	}
}

const cronManifest = `apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "0 6 * * *"
  timeZone: Etc/UTC
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 300
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox, env: [{name: TARGET, valueFrom: {configMapKeyRef: {name: cfg, key: target}}}]}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {target: db}
`

// A sync arms a CronJob's timer, whose service runs `podunit cron-run`
// with the CronJob's policy and its template; the runs the timer starts
// are the CronJob's, not stopped by the sync as pods no manifest defines.
// Suspending the CronJob stops the timer and leaves the runs; removing it
// stops the runs too, and its template goes.
func TestSyncCronJob(t *testing.T) {
	s, m, _, out := newSyncer(t)
	s.CronRunCmd = []string{"/usr/bin/podunit", "cron-run"}
	ctx := context.Background()
	write(t, s.Sources[0].Dir, "report.yaml", cronManifest)
	if err := runSync(ctx, s); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	timer, ok := m.Units["cronjob-report.timer"]
	if _, svc := m.Units["cronjob-report.service"]; !ok || !svc {
		t.Fatalf("units %v", m.Units)
	}
	if !strings.Contains(out.String(), "started cronjob-report.timer; next run at ") {
		t.Errorf("the sync does not report the timer:\n%s", out)
	}
	_, _, hash, _ := units.ParseTimerDescription(timer.Description)
	template := generator.CronSpecPath(s.UnitConfig, "default", "report", hash)
	tmpl, err := generator.FromSpec(podspec.ReadSpec(template))
	if err != nil || tmpl.Name() != "report" {
		t.Fatalf("template %s: %v", template, err)
	}

	// The timer fires: cron-run starts the run, with the template's
	// ConfigMap, as a pod unit with its own spec files.
	c := &generator.CronJob{Name: "report", Schedule: "0 6 * * *", TimeZone: "Etc/UTC", Concurrency: batchv1.ForbidConcurrent,
		SuccessfulJobsHistoryLimit: 3, FailedJobsHistoryLimit: 1}
	fired := time.Date(2026, 12, 2, 6, 0, 1, 0, time.UTC)
	if err := CronRun(ctx, m, s.UnitConfig, template, c, fired, &testReporter{w: out}); err != nil {
		t.Fatal(err)
	}
	run := "pod-report-29936520.service"
	if _, ok := m.Units[run]; !ok {
		t.Fatalf("no run unit; units %v\n%s", m.Units, out)
	}
	specs, _ := filepath.Glob(filepath.Join(s.UnitConfig.SpecDir, "default_report-29936520-*.data.json"))
	if len(specs) != 1 {
		t.Errorf("the run's data file (its ConfigMap): %v", specs)
	}
	// Fired again in the same minute (a restart of the timer): nothing new.
	if err := CronRun(ctx, m, s.UnitConfig, template, c, fired.Add(10*time.Second), &testReporter{w: out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "no run: the run for 2026-12-02T06:00:00Z (report-29936520) started already") {
		t.Errorf("output:\n%s", out)
	}

	// A sync leaves the run alone.
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Units[run]; !ok {
		t.Fatal("the sync stopped the CronJob's run")
	}
	// ... and once more runs finished than successfulJobsHistoryLimit (3)
	// keeps, it removes the oldest, as the controller does at each sync.
	for i, minutes := range []int{29936517, 29936518, 29936519} {
		name := fmt.Sprintf("pod-report-%d.service", minutes)
		m.Units[name] = dbus.UnitStatus{Name: name, Description: fmt.Sprintf("Pod default/report-%d (podunit config %032d)", minutes, i),
			LoadState: "loaded", ActiveState: "active", SubState: "exited"}
	}
	u := m.Units[run]
	u.SubState = "exited"
	m.Units[run] = u
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Units["pod-report-29936517.service"]; ok || len(m.Units) != 5 {
		t.Errorf("after the history limit: %v", slices.Sorted(maps.Keys(m.Units)))
	}

	// Suspended: no timer; the run goes on.
	write(t, s.Sources[0].Dir, "report.yaml", strings.Replace(cronManifest, "  schedule:", "  suspend: true\n  schedule:", 1))
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Units["cronjob-report.timer"]; ok {
		t.Error("a suspended CronJob's timer is still there")
	}
	if _, ok := m.Units[run]; !ok {
		t.Error("suspending the CronJob stopped its run")
	}

	// Removed: its runs stop, its template goes.
	if err := os.Remove(filepath.Join(s.Sources[0].Dir, "report.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Units[run]; ok {
		t.Error("the removed CronJob's run still runs")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(template), "*")); len(left) != 0 {
		t.Errorf("templates left: %v", left)
	}
}

var _ bus.TimerManager = (*dbus.Conn)(nil)

// A CronJob whose manifest becomes invalid keeps its timer on its last
// good schedule, and its runs, until the file is fixed or removed.
func TestSyncCronJobKeepsLastGood(t *testing.T) {
	s, m, _, out := newSyncer(t)
	s.CronRunCmd = []string{"/usr/bin/podunit", "cron-run"}
	ctx := context.Background()
	write(t, s.Sources[0].Dir, "report.yaml", cronManifest)
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	before := m.Units["cronjob-report.timer"]
	write(t, s.Sources[0].Dir, "report.yaml", strings.Replace(cronManifest, "concurrencyPolicy:", "concurencyPolicy:", 1))
	out.Reset()
	if err := runSync(ctx, s); err == nil {
		t.Fatal("a sync with a typo succeeded")
	}
	if after, ok := m.Units["cronjob-report.timer"]; !ok || after.Description != before.Description {
		t.Fatalf("the timer of the invalid CronJob: %v (was %v)", after, before)
	}
	if !strings.Contains(out.String(), "CronJob default/report keeps its last good schedule") {
		t.Errorf("output:\n%s", out)
	}
	_, _, hash, _ := units.ParseTimerDescription(before.Description)
	if _, err := os.Stat(generator.CronSpecPath(s.UnitConfig, "default", "report", hash)); err != nil {
		t.Errorf("the last good template was removed: %v", err)
	}
}
