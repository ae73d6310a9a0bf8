//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/generator"
)

// cronRuns are the loaded run units of CronJob name (default namespace),
// oldest first, with their active and sub states.
func cronRuns(t *testing.T, name string) (runs []string, state map[string]string) {
	t.Helper()
	list, err := systemd.ListUnitsByPatternsContext(context.Background(), nil, []string{"pod-" + name + "-*.service"})
	if err != nil {
		t.Fatal(err)
	}
	state = map[string]string{}
	for _, u := range list {
		pod := strings.TrimSuffix(strings.TrimPrefix(u.Name, "pod-"), ".service")
		if cj, _, ok := generator.ParseRunName(pod); !ok || cj != name || u.LoadState == "not-found" {
			continue
		}
		runs = append(runs, u.Name)
		state[u.Name] = u.ActiveState + "/" + u.SubState
	}
	slices.Sort(runs) // equal-width minutes: by name is by time
	return runs, state
}

// A CronJob runs on its schedule, something neither the kubelet nor podman
// does: its timer (OnCalendar= from the schedule, next elapse shown by
// systemd) starts a run at each scheduled minute, as a Job's pod of its own
// named as the CronJob controller names Jobs, logging to the journal; with
// successfulJobsHistoryLimit 1 the older run goes once the newer one
// finished. Removing the manifest stops the timer and removes the runs.
//
// This waits for two scheduled minutes of real time (the schedule's
// granularity), up to about two and a half minutes.
func TestCronJobRunsOnSchedule(t *testing.T) {
	// Mostly waiting for the clock: it runs beside the other parallel
	// tests, after the sequential ones (its pods and timer are its own).
	t.Parallel()
	const name = "e2e-cron"
	timer := "cronjob-" + name + ".timer"
	os.Remove("/var/lib/systemd/timers/stamp-" + timer)
	t.Cleanup(func() { os.Remove("/var/lib/systemd/timers/stamp-" + timer) })
	start := time.Now()
	writeManifest(t, name+".yaml", `apiVersion: batch/v1
kind: CronJob
metadata:
  name: e2e-cron
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: tick
            image: localhost/podunit/busybox:1.35
            command: ["sh", "-c", "echo tick from $HOSTNAME"]
`)
	waitFor(t, timer+" armed", func() (bool, error) { return activeState(timer) == "active", nil })
	props := unitProps(t, timer)
	if next, _ := props["NextElapseUSecRealtime"].(uint64); next == 0 {
		t.Errorf("%s has no next elapse: %v", timer, props["NextElapseUSecRealtime"])
	}
	if cal := props["TimersCalendar"]; !strings.Contains(strings.ReplaceAll(fmt.Sprint(cal), " ", ""), "*-*-**:*:00") {
		t.Errorf("TimersCalendar = %v", cal)
	}

	var first string
	waitForWithin(t, 150*time.Second, "a first run that completed", func() (bool, error) {
		runs, state := cronRuns(t, name)
		for _, r := range runs {
			if state[r] == "active/exited" {
				first = r
				return true, nil
			}
		}
		return false, nil
	})
	pod := strings.TrimSuffix(strings.TrimPrefix(first, "pod-"), ".service")
	_, scheduled, _ := generator.ParseRunName(pod)
	p := getPod(t, "default", pod)
	if got := p.Annotations[generator.AnnotationScheduledTime]; got != scheduled.UTC().Format(time.RFC3339) {
		t.Errorf("%s: scheduled-time annotation %q, want %s", pod, got, scheduled.UTC().Format(time.RFC3339))
	}
	if p.Status.Phase != "Succeeded" {
		t.Errorf("%s: phase %s", pod, p.Status.Phase)
	}
	if j := journal(t, first, start); !strings.Contains(j, "tick from "+pod) {
		t.Errorf("the run's output is not in its journal:\n%s", j)
	}
	if j := journal(t, "cronjob-"+name+".service", start); !strings.Contains(j, "started "+first) {
		t.Errorf("cron-run's journal does not say it started %s:\n%s", first, j)
	}

	// get cronjobs shows it as kubectl would, with its last and next run.
	out, err := exec.Command(podunitBin, "get", "cronjobs").CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^e2e-cron\s+\* \* \* \* \*\s+<none>\s+False\s+[01]\s+\d+s\s+\d+s$`).Match(out) {
		t.Errorf("podunit get cronjobs: %v\n%s", err, out)
	}

	// The next minute's run completes, and the history limit removes the
	// first.
	waitForWithin(t, 150*time.Second, "a second run, and the first removed", func() (bool, error) {
		runs, state := cronRuns(t, name)
		return len(runs) == 1 && runs[0] != first && state[runs[0]] == "active/exited", nil
	})

	os.Remove(filepath.Join(manifestDir, name+".yaml"))
	waitGone(t, timer)
	waitFor(t, "the runs removed with the CronJob", func() (bool, error) {
		runs, _ := cronRuns(t, name)
		return len(runs) == 0, nil
	})
}
