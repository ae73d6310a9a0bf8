package status

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/engine"
	"github.com/podunit/podunit/units/engine/enginetest"
	"github.com/podunit/podunit/units/unitstest"
	batchv1 "k8s.io/api/batch/v1"
)

type fakeVersioner struct{ err error }

func (f fakeVersioner) Version(context.Context, string) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: "containerd"}, f.err
}

func get(t testing.TB, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestStatusAPI(t *testing.T) {
	s, m, _, _ := enginetest.NewSyncer(t)
	s.StatePath = filepath.Join(t.TempDir(), "sync.json")
	enginetest.Write(t, s.Sources[0].Dir, "web.yaml", enginetest.Pod("web", "img:1"))
	enginetest.Write(t, s.Sources[0].Dir, "api.yaml", enginetest.Pod("api", "img:1"))
	ctx := context.Background()
	if err := enginetest.Run(ctx, s); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	// podshim's record of web: running, with its IP.
	specs, _ := filepath.Glob(filepath.Join(s.UnitConfig.SpecDir, "default_web-*.json"))
	var web corev1.Pod
	b, _ := os.ReadFile(specs[0])
	json.Unmarshal(b, &web)
	st := podshim.State{Namespace: "default", Name: "web", UID: string(web.UID),
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.88.0.7"}}
	sb, _ := json.Marshal(st)
	enginetest.Write(t, stateDir, "default_web.json", string(sb))

	srv := &Server{SpecDir: s.UnitConfig.SpecDir, StateDir: stateDir, SyncState: s.StatePath, Manager: m, Runtime: fakeVersioner{}}
	code, body := get(t, srv, "/pods")
	var list corev1.PodList
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || list.Kind != "PodList" || list.APIVersion != "v1" {
		t.Fatalf("/pods: %d %v\n%s", code, err, body)
	}
	if len(list.Items) != 2 || list.Items[0].Name != "api" || list.Items[1].Status.PodIP != "10.88.0.7" ||
		list.Items[0].Status.Phase != corev1.PodPending || list.Items[1].Annotations["podunit.io/unit"] != "pod-web.service" {
		t.Errorf("pods: %+v", list.Items)
	}
	// The list, put together from each pod's cached JSON, is what
	// encoding/json makes of the PodList.
	snap, _ := srv.snapshot(ctx)
	var items []corev1.Pod
	for _, c := range snap.pods {
		items = append(items, c.pod)
	}
	whole, _ := json.Marshal(corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: items})
	if string(whole)+"\n" != string(snap.list) || body != string(snap.list) {
		t.Errorf("the assembled list differs from encoding/json's:\n%s\n%s", snap.list, whole)
	}
	if code, body := get(t, srv, "/pods/default/web"); code != 200 || !strings.Contains(body, `"podIP":"10.88.0.7"`) {
		t.Errorf("/pods/default/web: %d %s", code, body)
	}
	if code, _ := get(t, srv, "/pods/default/nope"); code != 404 {
		t.Errorf("a missing pod: %d", code)
	}

	// An invalid edit: the pod runs on its last good spec, and says so.
	enginetest.Write(t, s.Sources[0].Dir, "web.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: c, image: i, ttty: true}]}\n")
	enginetest.Run(ctx, s)
	_, body = get(t, srv, "/pods/default/web")
	if !strings.Contains(body, `"type":"podunit.io/ManifestValid","status":"False"`) || !strings.Contains(body, "ttty: unknown field") {
		t.Errorf("no InvalidManifest condition:\n%s", body)
	}

	if code, body := get(t, srv, "/healthz"); code != 200 || body != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, srv, "/healthz?verbose"); code != 200 || body != "[+]ping ok\n[+]runtime ok\n[+]syncloop ok\nhealthz check passed\n" {
		t.Errorf("/healthz?verbose: %d %q", code, body)
	}
	srv.Runtime = fakeVersioner{err: errors.New("connection refused")}
	if code, body := get(t, srv, "/healthz"); code != 500 || !strings.Contains(body, "[-]runtime failed: connection refused") || !strings.Contains(body, "healthz check failed") {
		t.Errorf("unhealthy /healthz: %d %q", code, body)
	}
	if err := syncHealth(s.StatePath, time.Now().Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "ago") {
		t.Errorf("a stale sync: %v", err)
	}
}

func TestStatusAPIUnitFiguresConflictsAndMetrics(t *testing.T) {
	s, m, _, _ := enginetest.NewSyncer(t)
	s.StatePath = filepath.Join(t.TempDir(), "sync.json")
	enginetest.Write(t, s.Sources[0].Dir, "a.yaml", enginetest.Pod("web", "img:1"))
	enginetest.Write(t, s.Sources[0].Dir, "b.yaml", enginetest.Pod("web", "img:2"))
	enginetest.Run(context.Background(), s)
	stateDir := t.TempDir()
	srv := &Server{SpecDir: s.UnitConfig.SpecDir, StateDir: stateDir, SyncState: s.StatePath, Manager: m, Runtime: fakeVersioner{}}
	_, body := get(t, srv, "/pods/default/web")
	var web corev1.Pod
	if err := json.Unmarshal([]byte(body), &web); err != nil {
		t.Fatal(err)
	}
	a := web.Annotations
	if a[AnnotationUnitRestarts] != "2" || a[AnnotationCPUSeconds] != "1.500" || a[AnnotationMemoryBytes] != "" {
		t.Errorf("systemd's figures: %v", a)
	}
	var conflict *corev1.PodCondition
	for i, c := range web.Status.Conditions {
		if c.Type == ConditionManifestUnique {
			conflict = &web.Status.Conditions[i]
		}
	}
	if conflict == nil || conflict.Status != corev1.ConditionFalse || !strings.Contains(conflict.Message, "b.yaml") {
		t.Errorf("no NameConflict condition: %+v", web.Status.Conditions)
	}

	// Running and ready 3 s after its start; one container restarted twice.
	start := metav1.NewTime(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	ready := metav1.NewTime(start.Add(3 * time.Second))
	st := podshim.State{Namespace: "default", Name: "web", UID: string(web.UID), ProbeFailures: map[string]int64{"c/liveness": 3}, Status: corev1.PodStatus{
		Phase: corev1.PodRunning, StartTime: &start,
		Conditions:        []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: ready}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "c", Ready: true, RestartCount: 2}},
	}}
	sb, _ := json.Marshal(st)
	enginetest.Write(t, stateDir, "default_web.json", string(sb))
	code, metrics := get(t, srv, "/metrics")
	for _, want := range []string{
		`podunit_pods{phase="Running"} 1`,
		`podunit_pods{phase="Pending"} 0`,
		`podunit_container_restarts_total{container="c",namespace="default",pod="web"} 2`,
		`podunit_container_ready{container="c",namespace="default",pod="web"} 1`,
		`podunit_probe_failures_total{container="c",namespace="default",pod="web",probe="liveness"} 3`,
		`podunit_unit_restarts_total{namespace="default",pod="web",unit="pod-web.service"} 2`,
		`podunit_pod_cpu_seconds_total{namespace="default",pod="web",unit="pod-web.service"} 1.5`,
		`podunit_pod_start_duration_seconds_bucket{le="2"} 0`,
		`podunit_pod_start_duration_seconds_bucket{le="3"} 1`,
		`podunit_pod_start_duration_seconds_count 1`,
		`podunit_manifest_conflicts 1`,
		`podunit_syncs_total 1`,
		`podunit_sync_duration_seconds `,
	} {
		if code != 200 || !strings.Contains(metrics, want+"\n") && !strings.Contains(metrics, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
	if strings.Contains(metrics, "podunit_pod_memory_bytes") {
		t.Error("an unknown MemoryCurrent was reported")
	}
}

func TestStatusAnswersAreFreshAndSystemdFiguresCached(t *testing.T) {
	s, m, _, _ := enginetest.NewSyncer(t)
	enginetest.Write(t, s.Sources[0].Dir, "web.yaml", enginetest.Pod("web", "img:1"))
	enginetest.Run(context.Background(), s)
	counting := &countingManager{Manager: m}
	srv := &Server{SpecDir: s.UnitConfig.SpecDir, StateDir: t.TempDir(), Manager: counting, Runtime: fakeVersioner{},
		StatsMaxAge: time.Hour}
	get(t, srv, "/pods")
	enginetest.Write(t, s.Sources[0].Dir, "api.yaml", enginetest.Pod("api", "img:1"))
	enginetest.Run(context.Background(), s)
	// A pod is in the very next answer after its unit started.
	if _, now := get(t, srv, "/pods"); !strings.Contains(now, `"name":"api"`) {
		t.Error("a stale snapshot was served")
	}
	// systemd's figures were read once, in the background, for the hour.
	time.Sleep(50 * time.Millisecond)
	get(t, srv, "/pods")
	if n := counting.calls.Load(); n != 1 {
		t.Errorf("read the units' figures %d times", n)
	}
}

// countingManager counts the reads of pods' figures (one a pod: its unit's,
// then its slice's).
type countingManager struct {
	*unitstest.Manager
	calls atomic.Int32
}

func (c *countingManager) GetUnitTypePropertiesContext(ctx context.Context, unit, typ string) (map[string]any, error) {
	if typ == "Service" {
		c.calls.Add(1)
	}
	return c.Manager.GetUnitTypePropertiesContext(ctx, unit, typ)
}

func TestStatusSnapshotReusedUntilAWatchedFileChanges(t *testing.T) {
	s, m, _, _ := enginetest.NewSyncer(t)
	s.StatePath = filepath.Join(t.TempDir(), "sync.json")
	enginetest.Write(t, s.Sources[0].Dir, "web.yaml", enginetest.Pod("web", "img:1"))
	enginetest.Run(context.Background(), s)
	srv := &Server{SpecDir: s.UnitConfig.SpecDir, StateDir: t.TempDir(), SyncState: s.StatePath, Manager: m, Runtime: fakeVersioner{},
		MaxAge: time.Hour}
	if err := srv.Watch(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, first := get(t, srv, "/pods")
	// A change only systemd knows of waits for maxAge...
	u, _ := m.Get("pod-web.service")
	u.ActiveState, u.SubState = "failed", "failed"
	m.Set(u)
	if _, again := get(t, srv, "/pods"); again != first {
		t.Error("rebuilt with no watched file changed")
	}
	// ...a sync (new spec files, its record) is in the next answer.
	enginetest.Write(t, s.Sources[0].Dir, "api.yaml", enginetest.Pod("api", "img:1"))
	enginetest.Run(context.Background(), s)
	waitUntil(t, func() bool { return srv.changed.Load() })
	if _, now := get(t, srv, "/pods"); !strings.Contains(now, `"name":"api"`) || !strings.Contains(now, `"podunit.io/unit-state":"failed (failed)"`) {
		t.Errorf("not rebuilt after a sync:\n%s", now)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// A pod the sync did not start because it does not fit the node is served
// Failed with the kubelet's reason.
func TestStatusShowsNotAdmittedPod(t *testing.T) {
	s, m, _, _ := enginetest.NewSyncer(t)
	s.StatePath = filepath.Join(t.TempDir(), "sync.json")
	s.Reader = generator.Reader{Node: generator.NewNode("node1", nil)}
	enginetest.Write(t, s.Sources[0].Dir, "ssd.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: ssd}\nspec:\n  nodeSelector: {disktype: ssd}\n  containers: [{name: c, image: i}]\n")
	ctx := context.Background()
	if err := enginetest.Run(ctx, s); err != nil {
		t.Fatal(err)
	}
	srv := &Server{SpecDir: s.UnitConfig.SpecDir, StateDir: t.TempDir(), SyncState: s.StatePath, Manager: m}
	snap, err := srv.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, c := range snap.pods {
		if c.pod.Name == "ssd" {
			found = true
			if c.pod.Status.Phase != "Failed" || c.pod.Status.Reason != "NodeAffinity" {
				t.Errorf("status %+v", c.pod.Status)
			}
		}
	}
	if !found {
		t.Errorf("the not-admitted pod is not served: %s", snap.list)
	}
}

// /cronjobs lists the CronJobs the last sync read, as batch/v1 CronJobs
// with the status the controller would report: the running run as active,
// the last scheduled and the last successful run's times, and when the
// timer fires next.
func TestCronJobsAPI(t *testing.T) {
	s, m, _, _ := enginetest.NewSyncer(t)
	s.StatePath = filepath.Join(t.TempDir(), "sync.json")
	s.CronRunCmd = []string{"/usr/bin/podunit", "cron-run"}
	enginetest.Write(t, s.Sources[0].Dir, "report.yaml", `apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "0 * * * *"
  timeZone: Etc/UTC
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: paused}
spec:
  schedule: "@daily"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
`)
	ctx := context.Background()
	if err := enginetest.Run(ctx, s); err != nil {
		t.Fatal(err)
	}
	// Two runs: 10:00 succeeded, 11:00 still runs.
	timer, _ := m.Get("cronjob-report.timer")
	_, _, hash, _ := units.ParseTimerDescription(timer.Description)
	template := generator.CronSpecPath(s.UnitConfig, "default", "report", hash)
	c := &generator.CronJob{Name: "report", Schedule: "0 * * * *", TimeZone: "Etc/UTC", Concurrency: "Allow", SuccessfulJobsHistoryLimit: 3, FailedJobsHistoryLimit: 1}
	stateDir := t.TempDir()
	for _, run := range []struct {
		at    time.Time
		phase corev1.PodPhase
	}{{time.Date(2026, 12, 2, 10, 0, 5, 0, time.UTC), corev1.PodSucceeded}, {time.Date(2026, 12, 2, 11, 0, 5, 0, time.UTC), corev1.PodRunning}} {
		if err := engine.CronRun(ctx, m, s.UnitConfig, template, c, run.at, &enginetest.Reporter{W: io.Discard}); err != nil {
			t.Fatal(err)
		}
		name := generator.RunName("report", run.at.Truncate(time.Hour))
		specs, _ := filepath.Glob(filepath.Join(s.UnitConfig.SpecDir, "default_"+name+"-*.json"))
		var p corev1.Pod
		b, _ := os.ReadFile(specs[0])
		json.Unmarshal(b, &p)
		st, _ := json.Marshal(podshim.State{Namespace: "default", Name: name, UID: string(p.UID), Status: corev1.PodStatus{Phase: run.phase}})
		enginetest.Write(t, stateDir, "default_"+name+".json", string(st))
	}
	srv := &Server{SpecDir: s.UnitConfig.SpecDir, StateDir: stateDir, SyncState: s.StatePath, Manager: m, Runtime: fakeVersioner{}}
	code, body := get(t, srv, "/cronjobs")
	var list batchv1.CronJobList
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || list.Kind != "CronJobList" || len(list.Items) != 2 {
		t.Fatalf("/cronjobs: %d %v\n%s", code, err, body)
	}
	paused, report := list.Items[0], list.Items[1]
	if paused.Name != "paused" || !*paused.Spec.Suspend || paused.Annotations[AnnotationNextSchedule] != "" || paused.Annotations[AnnotationUnit] != "" {
		t.Errorf("the suspended CronJob: %+v", paused)
	}
	if report.Spec.Schedule != "0 * * * *" || *report.Spec.TimeZone != "Etc/UTC" || report.Annotations[AnnotationUnit] != "cronjob-report.timer" ||
		report.Annotations[AnnotationNextSchedule] == "" {
		t.Errorf("the CronJob: %+v", report)
	}
	st := report.Status
	if len(st.Active) != 1 || st.Active[0].Name != "report-29936820" || st.LastScheduleTime == nil || !st.LastScheduleTime.Time.Equal(time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC)) ||
		st.LastSuccessfulTime == nil || !st.LastSuccessfulTime.Time.Equal(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("status %+v", st)
	}
}

// A rollback's record says RolledBack before the failed generation is
// stopped; until the pod's unit runs the last ready generation again, the
// pod says RollingBack, so that no one reads RolledBack off a pod that
// still runs the generation that failed.
func TestRollbackShownOnlyOnceTheLastReadyRuns(t *testing.T) {
	s, m, _, _ := enginetest.NewSyncer(t)
	s.StatePath = filepath.Join(t.TempDir(), "sync.json")
	enginetest.Write(t, s.Sources[0].Dir, "gate.yaml", enginetest.Pod("gate", "img:2"))
	if err := enginetest.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	specs, _ := filepath.Glob(filepath.Join(s.UnitConfig.SpecDir, "default_gate-*.json"))
	if len(specs) != 1 {
		t.Fatalf("spec files: %v", specs)
	}
	running := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(specs[0]), "default_gate-"), ".json")
	rollouts := engine.Rollouts{Dir: t.TempDir()}
	srv := &Server{SpecDir: s.UnitConfig.SpecDir, StateDir: t.TempDir(), SyncState: s.StatePath, Manager: m, Runtime: fakeVersioner{}, Rollouts: rollouts}
	upToDate := func() corev1.PodCondition {
		t.Helper()
		_, body := get(t, srv, "/pods/default/gate")
		var p corev1.Pod
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == ConditionUpToDate {
				return c
			}
		}
		t.Fatalf("no %s condition: %+v", ConditionUpToDate, p.Status.Conditions)
		return corev1.PodCondition{}
	}
	rec := &engine.Rollout{Namespace: "default", Name: "gate", Phase: engine.PhaseRolledBack, Trigger: engine.TriggerManifest,
		Generation: running, Previous: "0123456789abcdef", Reason: "CrashLoopBackOff", Message: "exit 1", Updated: time.Now()}
	if err := rollouts.Write(rec); err != nil {
		t.Fatal(err)
	}
	rolledBack := func() string {
		t.Helper()
		_, metrics := get(t, srv, "/metrics")
		for _, l := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(l, "podunit_pods_rolled_back ") {
				return strings.TrimPrefix(l, "podunit_pods_rolled_back ")
			}
		}
		t.Fatalf("/metrics has no podunit_pods_rolled_back:\n%s", metrics)
		return ""
	}
	if c := upToDate(); c.Reason != ReasonRollingBack || !strings.Contains(c.Message, "generation 0123456789abcdef starts again") {
		t.Errorf("the failed generation still runs: %s: %s", c.Reason, c.Message)
	}
	if n := rolledBack(); n != "0" {
		t.Errorf("podunit_pods_rolled_back %s while the failed generation runs, want 0", n)
	}
	rec.Generation, rec.Previous = "0123456789abcdef", running
	if err := rollouts.Write(rec); err != nil {
		t.Fatal(err)
	}
	if c := upToDate(); c.Reason != engine.PhaseRolledBack || !strings.Contains(c.Message, "generation "+running+" runs until the manifest changes") {
		t.Errorf("the last ready generation runs: %s: %s", c.Reason, c.Message)
	}
	if n := rolledBack(); n != "1" {
		t.Errorf("podunit_pods_rolled_back %s once the last ready generation runs, want 1", n)
	}

	// An auto-update's rollback keeps the generation: the pod is
	// RollingBack while a container runs the image the update brought.
	rec.Generation, rec.Previous, rec.Trigger = running, running, engine.TriggerAutoUpdate
	// The proxy runs the image it ran before: the update did not change it.
	rec.FailedImages = map[string]string{"img:2": "sha256:new", "proxy:1": "sha256:proxy"}
	rec.PreviousImages = map[string]string{"img:2": "sha256:old", "proxy:1": "sha256:proxy"}
	if err := rollouts.Write(rec); err != nil {
		t.Fatal(err)
	}
	writeState := func(imageID string) {
		t.Helper()
		up := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		st := podshim.State{UID: running, Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "app", Image: "img:2", ImageID: imageID, State: up},
			{Name: "proxy", Image: "proxy:1", ImageID: "sha256:proxy", State: up},
		}}}
		b, _ := json.Marshal(st)
		if err := os.WriteFile(podshim.StatePath(srv.StateDir, "default", "gate"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeState("sha256:new")
	if c := upToDate(); c.Reason != ReasonRollingBack || !strings.Contains(c.Message, "the last ready images start again") {
		t.Errorf("the auto-update's image still runs: %s: %s", c.Reason, c.Message)
	}
	writeState("sha256:old")
	if c := upToDate(); c.Reason != engine.PhaseRolledBack {
		t.Errorf("the last ready image runs again: %s: %s", c.Reason, c.Message)
	}
}
