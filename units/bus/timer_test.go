package bus

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/podunit/podunit/units"
)

func cronTimer(name, hash string) *units.Timer {
	return &units.Timer{Namespace: "default", CronJob: name, ConfigHash: hash, Source: "/etc/podunit/manifests/" + name + ".yaml",
		OnCalendar: []string{"*-*-* *:00,30:00"}, ExecStart: []string{"/usr/bin/podunit", "cron-run", "/run/podunit/cronjobs/" + name + ".json"}}
}

// The timer and its service as text carry what their D-Bus properties
// carry, and the names and description read back.
func TestTimerRenderings(t *testing.T) {
	tm := cronTimer("backup", h1)
	if tm.Name() != "cronjob-backup.timer" || tm.Service() != "cronjob-backup.service" {
		t.Errorf("names %s, %s", tm.Name(), tm.Service())
	}
	if ns, name, hash, ok := units.ParseTimerDescription(tm.Description()); !ok || ns != "default" || name != "backup" || hash != h1 {
		t.Errorf("description %q read back as %s/%s %s %v", tm.Description(), ns, name, hash, ok)
	}
	text, err := tm.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OnCalendar=*-*-* *:00,30:00", "AccuracySec=1s", "Persistent=yes", "SourcePath=/etc/podunit/manifests/backup.yaml",
		"Type=oneshot", "ExecStart=/usr/bin/podunit cron-run /run/podunit/cronjobs/backup.json", "TimeoutStartSec=300s"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered timer lacks %q:\n%s", want, text)
		}
	}
	names := func(props []string) []string { sort.Strings(props); return props }
	var timerProps, serviceProps []string
	for _, p := range TimerProperties(tm) {
		timerProps = append(timerProps, p.Name)
	}
	for _, p := range ServiceProperties(tm) {
		serviceProps = append(serviceProps, p.Name)
	}
	if got, want := names(timerProps), []string{"AccuracyUSec", "Description", "Persistent", "SourcePath", "TimersCalendar"}; !slices.Equal(got, want) {
		t.Errorf("timer properties %v, want %v", got, want)
	}
	if got, want := names(serviceProps), []string{"Description", "ExecStart", "TimeoutStartUSec", "Type"}; !slices.Equal(got, want) {
		t.Errorf("service properties %v, want %v", got, want)
	}
	if n := len(tm.TimerOptions()) + len(tm.ServiceOptions()); n != len(timerProps)+len(serviceProps) {
		t.Errorf("%d options, %d properties", n, len(timerProps)+len(serviceProps))
	}
}

// New timers are armed with their service, changed ones replaced (the old
// timer and service stopped first, so the names are free), unchanged ones
// left alone, gone ones stopped unless kept.
func TestReconcileTimers(t *testing.T) {
	m := newFakeManager()
	ctx := context.Background()
	if _, err := ReconcileTimers(ctx, m, []*units.Timer{cronTimer("same", h1), cronTimer("changed", h1), cronTimer("gone", h1), cronTimer("kept", h1)}, nil); err != nil {
		t.Fatal(err)
	}
	m.calls = nil
	keep := func(r RunningTimer) bool { return r.CronJob == "kept" }
	res, err := ReconcileTimers(ctx, m, []*units.Timer{cronTimer("same", h1), cronTimer("changed", h2), cronTimer("new", h1)}, keep)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Started, []string{"cronjob-new.timer"}) || !slices.Equal(res.Replaced, []string{"cronjob-changed.timer"}) ||
		!slices.Equal(res.Unchanged, []string{"cronjob-same.timer"}) || !slices.Equal(res.Stopped, []string{"cronjob-gone.timer"}) || len(res.Errors) > 0 {
		t.Errorf("result %+v", res)
	}
	want := []string{
		"stop cronjob-changed.timer", "stop cronjob-changed.service", "start cronjob-changed.timer +cronjob-changed.service",
		"start cronjob-new.timer +cronjob-new.service",
		"stop cronjob-gone.timer", "stop cronjob-gone.service",
	}
	if !slices.Equal(m.calls, want) {
		t.Errorf("calls\n%q\nwant\n%q", m.calls, want)
	}
	if _, ok := m.units["cronjob-kept.timer"]; !ok {
		t.Error("the kept timer was stopped")
	}
	if u := m.units["cronjob-changed.timer"]; !strings.Contains(u.Description, h2) {
		t.Errorf("the replaced timer is %q", u.Description)
	}
}
