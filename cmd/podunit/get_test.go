package main

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/units/status"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func statusPod(name string, phase corev1.PodPhase, cs ...corev1.ContainerStatus) corev1.Pod {
	start := metav1.NewTime(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
		Annotations: map[string]string{"podunit.io/unit": "pod-" + name + ".service", "podunit.io/manifest": "/etc/podunit/manifests/" + name + ".yaml"}},
		Status: corev1.PodStatus{Phase: phase, ContainerStatuses: cs, PodIP: "10.88.0.9", StartTime: &start}}
	for _, c := range cs {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c.Name})
	}
	return p
}

// The table reads as kubectl's, in Kubernetes' words.
func TestGetPodsTable(t *testing.T) {
	waiting := func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	invalid := statusPod("edited", corev1.PodRunning, corev1.ContainerStatus{Name: "c", Ready: true, State: running})
	invalid.Status.Conditions = []corev1.PodCondition{{Type: status.ConditionManifestValid, Status: corev1.ConditionFalse}}
	pods := []corev1.Pod{
		statusPod("web", corev1.PodRunning, corev1.ContainerStatus{Name: "web", Ready: true, State: running}, corev1.ContainerStatus{Name: "log", State: running, RestartCount: 2}),
		statusPod("crash", corev1.PodRunning, corev1.ContainerStatus{Name: "c", State: waiting("CrashLoopBackOff"), RestartCount: 5}),
		statusPod("pull", corev1.PodPending, corev1.ContainerStatus{Name: "c", State: waiting("ImagePullBackOff")}),
		statusPod("job", corev1.PodSucceeded, corev1.ContainerStatus{Name: "c"}),
		statusPod("bad", corev1.PodFailed, corev1.ContainerStatus{Name: "c"}),
		invalid,
	}
	var out bytes.Buffer
	if err := printPods(&out, pods, "wide", false, time.Date(2026, 11, 23, 12, 30, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"NAME     READY   STATUS             RESTARTS   AGE   IP          UNIT",
		"web      1/2     Running            2          30m   10.88.0.9   pod-web.service      /etc/podunit/manifests/web.yaml",
		"crash    0/1     CrashLoopBackOff   5",
		"pull     0/1     ImagePullBackOff",
		"job      0/1     Completed",
		"bad      0/1     Error",
		"edited   1/1     InvalidManifest",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	printPods(&out, pods[:1], "name", false, time.Now())
	if out.String() != "pod/web\n" {
		t.Errorf("-o name: %q", out.String())
	}
}

func TestCommandLines(t *testing.T) {
	args, err := journalArgs("web", "shop", "nginx", true, 20, 10*time.Minute, false)
	if err != nil || strings.Join(args, " ") != "--no-pager -o cat POD_NAMESPACE=shop POD_NAME=web CONTAINER_NAME=nginx -n 20 --since -600s -f" {
		t.Errorf("journalctl %v, %v", args, err)
	}
	socket := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"get"}, exitUsage, "takes the resource 'pods'"},
		{[]string{"get", "pods", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{[]string{"validate"}, exitUsage, "one or more manifest files"},
		{[]string{"exec", "web", "ls"}, exitUsage, "then -- and the command"},
		{[]string{"delete"}, exitUsage, "a pod name or -f FILE"},
		// Flags after the arguments, as kubectl users type them.
		{[]string{"get", "pods", "-A", "-o", "wide", "--socket", socket}, exitFailure, "is podunit-status.socket running?"},
		{[]string{"logs", "web", "--previous", "-c", "c", "--socket", socket}, exitFailure, "is podunit-status.socket running?"},
	} {
		err := run(tc.args, io.Discard, io.Discard)
		code := 0
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else if err != nil {
			code = exitFailure
		}
		if code != tc.code || err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("podunit %s: exit %d, %v; want %d and %q", strings.Join(tc.args, " "), code, err, tc.code, tc.msg)
		}
	}
}

// get cronjobs prints kubectl's columns, NEXT for AGE.
func TestPrintCronJobs(t *testing.T) {
	now := time.Date(2026, 12, 2, 11, 30, 0, 0, time.UTC)
	tz, yes := "Etc/UTC", true
	last := metav1.NewTime(now.Add(-30 * time.Minute))
	list := []batchv1.CronJob{
		{ObjectMeta: metav1.ObjectMeta{Name: "report", Namespace: "default", Annotations: map[string]string{
			status.AnnotationNextSchedule: now.Add(30 * time.Minute).Format(time.RFC3339), status.AnnotationUnit: "cronjob-report.timer"}},
			Spec:   batchv1.CronJobSpec{Schedule: "0 * * * *", TimeZone: &tz},
			Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "report-29936820"}}, LastScheduleTime: &last}},
		{ObjectMeta: metav1.ObjectMeta{Name: "paused", Namespace: "default"}, Spec: batchv1.CronJobSpec{Schedule: "@daily", Suspend: &yes}},
	}
	var b strings.Builder
	if err := printCronJobs(&b, list, "", false, now); err != nil {
		t.Fatal(err)
	}
	want := "NAME     SCHEDULE    TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   NEXT\n" +
		"paused   @daily      <none>     True      0        <none>          <none>\n" +
		"report   0 * * * *   Etc/UTC    False     1        30m             30m\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// kubectl's STATUS column for init containers: Init:N/M until a sidecar
// has started (past its startup probe), and the app containers' own
// words after; a pod past its activeDeadlineSeconds says DeadlineExceeded.
func TestPodStatusWordInitAndDeadline(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	started, notYet := true, false
	pod := func(sidecarStarted *bool, app corev1.ContainerState) *corev1.Pod {
		return &corev1.Pod{
			Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "side", RestartPolicy: &always}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "side", Started: sidecarStarted,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: app}}},
		}
	}
	initializing := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
	if got := podStatusWord(pod(&notYet, initializing)); got != "Init:0/1" {
		t.Errorf("sidecar not started yet: %q, want Init:0/1", got)
	}
	if got := podStatusWord(pod(&started, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}})); got != "Pending" {
		t.Errorf("sidecar started, app running, phase Pending: %q, want the phase", got)
	}
	failed := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "DeadlineExceeded"}}
	if got := podStatusWord(failed); got != "DeadlineExceeded" {
		t.Errorf("past the deadline: %q, want DeadlineExceeded", got)
	}
}
