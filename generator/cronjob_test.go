package generator

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
)

const cronJobManifest = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
  namespace: ops
spec:
  schedule: "30 2 * * mon-fri"
  timeZone: Etc/UTC
  concurrencyPolicy: Forbid
  failedJobsHistoryLimit: 2
  jobTemplate:
    spec:
      backoffLimit: 1
      template:
        metadata:
          labels: {app: backup}
        spec:
          restartPolicy: Never
          containers:
          - name: dump
            image: busybox
            envFrom: [{configMapRef: {name: target}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: target, namespace: ops}
data: {HOST: db}
`

// A CronJob is read into the set's CronJobs, not its pods: its template,
// with ConfigMaps resolved as for any pod, and its policy with the API
// server's defaults. Each run is a pod of its own, named as the CronJob
// controller names its Jobs.
func TestCronJobTemplateAndRuns(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "backup.yaml"), []byte(cronJobManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := ReadDir(dir)
	if err != nil || len(set.Errors) > 0 {
		t.Fatalf("%v %v", err, set.Errors)
	}
	if len(set.Pods) != 0 || len(set.CronJobs) != 1 {
		t.Fatalf("pods %d, cron jobs %d; want 0 and 1", len(set.Pods), len(set.CronJobs))
	}
	tmpl := set.CronJobs[0]
	want := CronJob{Name: "backup", Schedule: "30 2 * * mon-fri", TimeZone: "Etc/UTC", Concurrency: batchv1.ForbidConcurrent,
		SuccessfulJobsHistoryLimit: 3, FailedJobsHistoryLimit: 2}
	if *tmpl.Cron != want {
		t.Errorf("CronJob = %+v, want %+v", *tmpl.Cron, want)
	}
	if len(tmpl.Objects.ConfigMaps) != 1 {
		t.Errorf("the template's ConfigMap is not resolved: %+v", tmpl.Objects)
	}
	if cal, err := tmpl.Cron.OnCalendar(); err != nil || !slices.Equal(cal, []string{"Mon,Tue,Wed,Thu,Fri *-*-* 02:30:00 Etc/UTC"}) {
		t.Errorf("OnCalendar = %q, %v", cal, err)
	}

	at := time.Date(2026, 12, 4, 2, 30, 0, 0, time.UTC)
	run, err := tmpl.Run(at)
	if err != nil {
		t.Fatal(err)
	}
	if run.Name() != "backup-29939190" || run.Namespace() != "ops" {
		t.Errorf("run %s, want ops/backup-29939190", run.Key())
	}
	if run.Hash == tmpl.Hash || string(run.Spec.UID) != run.Hash || run.Spec.Annotations[AnnotationConfigHash] != run.Hash {
		t.Errorf("run hash %s, UID %s, annotation %s; template %s", run.Hash, run.Spec.UID, run.Spec.Annotations[AnnotationConfigHash], tmpl.Hash)
	}
	for k, v := range map[string]string{AnnotationOwner: "Job/backup-29939190", AnnotationCronJob: "backup",
		AnnotationScheduledTime: "2026-12-04T02:30:00Z", AnnotationBackoffLimit: "1"} {
		if got := run.Spec.Annotations[k]; got != v {
			t.Errorf("annotation %s = %q, want %q", k, got, v)
		}
	}
	if tmpl.Spec.Name != "backup" {
		t.Errorf("Run changed the template: %s", tmpl.Spec.Name)
	}
	again, _ := tmpl.Run(at)
	if again.Hash != run.Hash {
		t.Errorf("the same run hashes differently: %s, %s", again.Hash, run.Hash)
	}
	if cj, got, ok := ParseRunName(run.Name()); !ok || cj != "backup" || !got.Equal(at) {
		t.Errorf("ParseRunName(%q) = %s %v %v", run.Name(), cj, got, ok)
	}
	for _, name := range []string{"backup", "backup-x", "web-0", "web-12"} {
		if _, _, ok := ParseRunName(name); ok {
			t.Errorf("ParseRunName(%q) is a run", name)
		}
	}

	h1, _ := CronHash(tmpl)
	tmpl.Cron.Schedule = "0 3 * * *"
	if h2, _ := CronHash(tmpl); h1 == h2 {
		t.Error("a new schedule does not change the CronJob's hash")
	}
}
