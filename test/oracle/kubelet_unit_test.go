package oracle

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/podunit/podunit/generator"
)

// Every behaviour is a valid Pod, read strictly as the API server would:
// a typo in the catalogue would compare two refusals.
func TestBehavioursAreValidPods(t *testing.T) {
	names := map[string]bool{}
	short := 0
	for _, b := range Behaviours {
		if names[b.Name] {
			t.Errorf("%s: two behaviours of that name", b.Name)
		}
		names[b.Name] = true
		if b.Short {
			short++
		}
		if b.Done == nil {
			t.Errorf("%s: no Done", b.Name)
		}
		m := b.Manifest()
		var p corev1.Pod
		if err := yaml.UnmarshalStrict([]byte(m), &p); err != nil {
			t.Errorf("%s: %v\n%s", b.Name, err, m)
			continue
		}
		if p.Name != b.PodName() {
			t.Errorf("%s: pod named %q", b.Name, p.Name)
		}
		file := b.PodName() + ".yaml"
		v, err := Podunit(generator.Reader{}, file, []byte(m), Split(file, []byte(m)))
		if err != nil {
			t.Fatal(err)
		}
		if !v[0].Accepted() {
			// A difference the catalogue shows (docs/kubelet-oracle.md).
			t.Logf("%s: podunit refuses it: %v", b.Name, v[0].Errors)
		}
	}
	if len(Behaviours) < 30 || short != 10 {
		t.Errorf("%d behaviours, %d short; the catalogue has at least 30, ten of them short", len(Behaviours), short)
	}
}

// The kubelet's static pod "<name>-<node>" and podunit's "<name>" read
// alike, addresses and the UID too; a difference in what a container saw
// is a finding.
func TestObserveNormalisesAndCompares(t *testing.T) {
	b := Behaviour{Name: "x"}
	status := func(name, ip, msg string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("u-" + name)},
			Spec:       corev1.PodSpec{NodeName: "node1"},
			Status: corev1.PodStatus{Phase: corev1.PodFailed, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error", Message: msg}}}}},
		}
	}
	k := b.Observe(status("kb-x-node1", "10.88.0.5", "I am kb-x-node1 at 10.88.0.5 on node1, uid u-kb-x-node1\n"), true)
	p := b.Observe(status("kb-x", "10.88.0.9", "I am kb-x at 10.88.0.9 on node1, uid u-kb-x"), true)
	if f := CompareObservations("x", k, p); len(f) != 0 {
		t.Errorf("findings %+v; want none\nkubelet %v\npodunit %v", f, k, p)
	}
	if got := k["container[c].message"]; got != "I am <pod> at <pod IP> on <node>, uid <uid>" {
		t.Errorf("normalised message %q", got)
	}
	p = b.Observe(status("kb-x", "10.88.0.9", "I am someone else"), true)
	f := CompareObservations("x", k, p)
	if len(f) != 1 || f[0].Key != "container[c].message" {
		t.Errorf("findings %+v; want the message", f)
	}
	late := b.Observe(nil, false)
	if late["done"] == "" || late["pod"] == "" {
		t.Errorf("a pod never listed: %v", late)
	}
}

func TestKubeletTableRoundTrip(t *testing.T) {
	fs := []KubeletFinding{{Behaviour: "env", Key: "container[c].message", Kubelet: "a | b", Podunit: "c", Reason: "because | why"}}
	var buf bytes.Buffer
	if err := RenderKubeletTable(&buf, KubeletTable{Version: "v1", Runtime: "containerd", Ran: []string{"env"}, Agree: map[string]int{"env": 3}, Findings: fs}, Behaviours); err != nil {
		t.Fatal(err)
	}
	reasons, err := ParseKubeletTable(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"env | container[c].message": "because | why"}; !reflect.DeepEqual(reasons, want) {
		t.Errorf("reasons %v, want %v\n%s", reasons, want, buf.String())
	}
}

// An ended pod is observed once its sandbox is down, or after a while if
// it stays up; a running one after the settle alone.
func TestSettled(t *testing.T) {
	pod := func(phase corev1.PodPhase, sandbox corev1.ConditionStatus) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{Phase: phase, Conditions: []corev1.PodCondition{{Type: corev1.PodReadyToStartContainers, Status: sandbox}}}}
	}
	for _, c := range []struct {
		p     *corev1.Pod
		since time.Duration
		want  bool
	}{
		{pod(corev1.PodRunning, corev1.ConditionTrue), time.Second, false},
		{pod(corev1.PodRunning, corev1.ConditionTrue), 3 * time.Second, true},
		{pod(corev1.PodSucceeded, corev1.ConditionTrue), 3 * time.Second, false},
		{pod(corev1.PodSucceeded, corev1.ConditionFalse), 3 * time.Second, true},
		{pod(corev1.PodFailed, corev1.ConditionTrue), 20 * time.Second, true},
	} {
		if got := Settled(c.p, c.since); got != c.want {
			t.Errorf("%s, sandbox %s, %s after Done: settled %v, want %v", c.p.Status.Phase, c.p.Status.Conditions[0].Status, c.since, got, c.want)
		}
	}
}
