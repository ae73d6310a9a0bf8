package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/units/engine/enginetest"
	"github.com/podunit/podunit/units/status"
	corev1 "k8s.io/api/core/v1"
)

func TestEventMessage(t *testing.T) {
	for line, want := range map[string]string{
		`level=WARN msg="container exited; restarting it" container=web exitCode=1`: "container exited; restarting it: container=web exitCode=1",
		`level=INFO msg="pod running" sandbox=abc ip=10.88.0.4`:                     "pod running: sandbox=abc ip=10.88.0.4",
		`level=INFO msg="started container" pod=default/web container=web`:          "started container: container=web",
		`level=INFO msg=done`:                        "done",
		`Started pod-web.service - Pod default/web.`: "Started pod-web.service - Pod default/web.",
	} {
		if got := eventMessage(line); got != want {
			t.Errorf("%s:\n got %q\nwant %q", line, got, want)
		}
	}
}

func TestDescribePod(t *testing.T) {
	p := statusPod("web", corev1.PodRunning, corev1.ContainerStatus{Name: "c", Ready: false, RestartCount: 3, ContainerID: "containerd://abc",
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}}})
	p.Spec.Containers = []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sh", "-c"}, Args: []string{"echo one\necho two\n"}}}
	p.Annotations[status.AnnotationUnitState] = "active (running)"
	p.Annotations[status.AnnotationUnitRestarts] = "0"
	p.Annotations[status.AnnotationMemoryBytes] = "3145728"
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}}
	now := time.Date(2026, 11, 23, 12, 10, 0, 0, time.UTC)
	var out bytes.Buffer
	describePod(&out, &p, []event{{Time: now.Add(-40 * time.Second), Source: "podshim", Message: "container exited; restarting it: container=c"}}, now)
	for _, want := range []string{
		"Name:", "web", "Manifest:", "/etc/podunit/manifests/web.yaml",
		"pod-web.service, active (running), restarted 0 time(s) by systemd, memory 3.0Mi",
		"Status:", "CrashLoopBackOff", "Container ID:", "containerd://abc",
		"State:", "Waiting", "back-off 40s", "Last State:", "Terminated", "Exit Code:", "Restart Count:", "3",
		"Ready", "ContainersNotReady", "Events:", "40s", "container exited; restarting it: container=c",
		"    Command:\n      sh\n      -c\n    Args:\n      echo one\n      echo two\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("describe lacks %q:\n%s", want, out.String())
		}
	}
}

func TestApplyWritesOnlyValidManifestsAtomically(t *testing.T) {
	dir := t.TempDir()
	src := t.TempDir()
	enginetest.Write(t, src, "web.yaml", enginetest.Pod("web", "img:1"))
	enginetest.Write(t, src, "none.yaml", "")
	apply := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(append([]string{"apply", "--manifest-dir", dir, "--config", filepath.Join(src, "none.yaml")}, args...), &out, io.Discard)
		return out.String(), err
	}
	if out, err := apply("-f", filepath.Join(src, "web.yaml")); err != nil || !strings.Contains(out, "pod/web created") {
		t.Fatalf("apply: %q, %v", out, err)
	}
	if out, _ := apply("-f", filepath.Join(src, "web.yaml")); !strings.Contains(out, "pod/web unchanged") {
		t.Errorf("again: %q", out)
	}
	enginetest.Write(t, src, "web.yaml", enginetest.Pod("web", "img:2"))
	if out, _ := apply("-f", filepath.Join(src, "web.yaml")); !strings.Contains(out, "pod/web configured") {
		t.Errorf("changed: %q", out)
	}
	// An invalid manifest is refused, and the running one stays.
	enginetest.Write(t, src, "web.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: i, ttty: true}]\n")
	if _, err := apply("-f", filepath.Join(src, "web.yaml")); err == nil || !strings.Contains(err.Error(), "web.yaml:5: spec.containers[0].ttty: unknown field") {
		t.Errorf("invalid: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "web.yaml")); !strings.Contains(string(b), "img:2") {
		t.Errorf("the applied manifest changed: %s", b)
	}
	// Another file may not define the same pod.
	enginetest.Write(t, src, "other.yaml", enginetest.Pod("web", "img:3"))
	if _, err := apply("-f", filepath.Join(src, "other.yaml")); err == nil || !strings.Contains(err.Error(), "pod default/web is defined in "+filepath.Join(dir, "web.yaml")) {
		t.Errorf("a second definition: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestDeleteRemovesOnlyWholeDefinitions(t *testing.T) {
	dir := t.TempDir()
	enginetest.Write(t, dir, "web.yaml", enginetest.Pod("web", "img:1"))
	enginetest.Write(t, dir, "two.yaml", enginetest.Pod("a", "img:1")+"---\n"+enginetest.Pod("b", "img:1"))
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	enginetest.Write(t, filepath.Dir(cfg), "config.yaml", "")
	del := func(args ...string) error {
		return run(append([]string{"delete", "--wait=false", "--manifest-dir", dir, "--config", cfg}, args...), io.Discard, io.Discard)
	}
	if err := del("a"); err == nil || !strings.Contains(err.Error(), "defines pod default/b too") {
		t.Errorf("half a file: %v", err)
	}
	if err := del("nope"); err == nil || !strings.Contains(err.Error(), "no manifest in") {
		t.Errorf("a missing pod: %v", err)
	}
	other := filepath.Join(t.TempDir(), "settings.yaml")
	enginetest.Write(t, filepath.Dir(other), "settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n")
	if err := del("-f", other); err == nil || !strings.Contains(err.Error(), "defines no pod") {
		t.Errorf("a file without pods: %v", err)
	}
	if err := del("web"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "web.yaml")); !os.IsNotExist(err) {
		t.Errorf("web.yaml is still there: %v", err)
	}
	if err := del("-f", filepath.Join(dir, "two.yaml")); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left: %v", entries)
	}
}

func TestDoctorHostChecks(t *testing.T) {
	proc := t.TempDir()
	enginetest.Write(t, filepath.Join(proc, "sys/net/ipv4"), "ip_forward", "0\n")
	enginetest.Write(t, proc, "swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/sda2 partition 1000 0 -2\n")
	d := &doctor{procRoot: proc}
	var out bytes.Buffer
	failed := printFindings(&out, []finding{d.ipForward(), d.swap()})
	if failed != 0 || !strings.Contains(out.String(), "[warn] ip_forward: off") || !strings.Contains(out.String(), "fix: echo net.ipv4.ip_forward=1") ||
		!strings.Contains(out.String(), "[warn] swap: 1 swap device(s) on") {
		t.Errorf("doctor:\n%s", out.String())
	}
	d.cfg.ManifestDir = filepath.Join(proc, "missing")
	out.Reset()
	printFindings(&out, d.manifests())
	if !strings.Contains(out.String(), "fix: mkdir -p "+d.cfg.ManifestDir) {
		t.Errorf("a missing manifest directory:\n%s", out.String())
	}
	d.cniConfDir = t.TempDir()
	out.Reset()
	if printFindings(&out, []finding{d.network(t.Context())}) != 1 || !strings.Contains(out.String(), "no CNI network configuration") {
		t.Errorf("no network:\n%s", out.String())
	}
	// The Services' range against the pods' network.
	enginetest.Write(t, d.cniConfDir, "10-wide.conflist", `{"cniVersion":"1.0.0","name":"wide","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/8"}]]}}]}`)
	d.configPath = "/etc/podunit/config.yaml"
	out.Reset()
	if printFindings(&out, []finding{d.services()}) != 1 || !strings.Contains(out.String(), "[fail] Services: serviceClusterIPRange: 10.96.0.0/12 overlaps the pods' network 10.0.0.0/8") ||
		!strings.Contains(out.String(), "fix: set serviceClusterIPRange (and clusterDNS) in /etc/podunit/config.yaml") {
		t.Errorf("an overlapping range:\n%s", out.String())
	}
	d.cfg.ServiceClusterIPRange = "172.20.0.0/16"
	out.Reset()
	if printFindings(&out, []finding{d.services()}) != 0 || !strings.Contains(out.String(), "[ok]   Services: ClusterIPs from 172.20.0.0/16, node ports 30000-32767, cluster DNS 172.20.0.10 (cluster.local)") {
		t.Errorf("a range clear of it:\n%s", out.String())
	}
}

func TestLogsFromCRIFiles(t *testing.T) {
	root := t.TempDir()
	p := statusPod("web", corev1.PodRunning, corev1.ContainerStatus{Name: "c", RestartCount: 1})
	p.UID = "u1"
	p.Spec.Containers = []corev1.Container{{Name: "c"}}
	enginetest.Write(t, filepath.Join(root, "default_web_u1", "c"), "0.log", "2026-11-23T12:00:00Z stdout F from the first attempt\n")
	enginetest.Write(t, filepath.Join(root, "default_web_u1", "c"), "1.log",
		"2026-11-23T12:01:00Z stdout F one\n2026-11-23T12:02:00Z stderr P tw\n2026-11-23T12:02:00Z stderr F o\n2026-11-23T12:03:00Z stdout F three\n2026-11-23T12:04:00Z stdout F half-writ")
	var out bytes.Buffer
	now := time.Date(2026, 11, 23, 12, 5, 0, 0, time.UTC)
	printCRILogs(&out, root, &p, "", -1, 0, false, now)
	if out.String() != "one\ntwo\nthree\n" {
		t.Errorf("all: %q", out.String())
	}
	out.Reset()
	printCRILogs(&out, root, &p, "c", 1, 0, true, now)
	if out.String() != "2026-11-23T12:03:00Z three\n" {
		t.Errorf("--tail 1 --timestamps: %q", out.String())
	}
	out.Reset()
	printCRILogs(&out, root, &p, "", -1, 150*time.Second, false, now)
	if out.String() != "three\n" {
		t.Errorf("--since 150s: %q", out.String())
	}
}

func TestStreamExitCode(t *testing.T) {
	for msg, want := range map[string]int{
		`{"metadata":{},"status":"Success"}`: 0,
		`{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 5], exit code 5","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"5"}]}}`: 5,
	} {
		var st streamStatus
		if err := json.Unmarshal([]byte(msg), &st); err != nil {
			t.Fatal(err)
		}
		if code, err := st.exitCode(); code != want || err != nil {
			t.Errorf("%s: %d, %v", msg, code, err)
		}
	}
	st := streamStatus{Status: "Failure", Message: "container not running"}
	if _, err := st.exitCode(); err == nil || err.Error() != "container not running" {
		t.Errorf("a failure without an exit code: %v", err)
	}
}
