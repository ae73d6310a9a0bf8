//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/test/oracle"
	"github.com/podunit/podunit/units"
)

// The kubelet's read-only port in this test: podunit's status service
// holds 10255.
const kubeletOraclePort = 10265

// TestKubeletOracle runs the catalogue of pod behaviours (test/oracle's
// Behaviours) as static pods under podunit, then under the real kubelet
// (standalone, on this test bed's runtime), and compares what a user sees
// of each (docs/kubelet-oracle.md, which it checks or, with
// PODUNIT_KUBELET_UPDATE=1, rewrites). make test-kubelet runs it, in a
// test bed with its own cgroup namespace (the kubelet's QoS cgroups), with
// PODUNIT_E2E_KUBELET naming the kubelet built by test/k8s/build.sh;
// PODUNIT_KUBELET_SHORT=1 runs the ten short behaviours (make test).
//
// The two never run at once: a kubelet kills the pods on its runtime that
// it does not know.
func TestKubeletOracle(t *testing.T) {
	kubelet := os.Getenv("PODUNIT_E2E_KUBELET")
	if kubelet == "" {
		t.Skip("PODUNIT_E2E_KUBELET is not set (make test-kubelet)")
	}
	table := os.Getenv("PODUNIT_KUBELET_TABLE")
	update := os.Getenv("PODUNIT_KUBELET_UPDATE") != ""
	behaviours := oracle.Behaviours
	if os.Getenv("PODUNIT_KUBELET_SHORT") != "" {
		if update {
			t.Fatal("PODUNIT_KUBELET_UPDATE rewrites the table from the whole catalogue, not the short form")
		}
		behaviours = oracle.ShortBehaviours()
	}
	version, err := exec.Command(kubelet, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", kubelet, err)
	}

	for _, b := range behaviours {
		os.RemoveAll(b.HostDir())
	}
	// podunit first: its pods name the node the kubelet then takes.
	fromPodunit := runBehaviours(t, "podunit", behaviours, func() ([]corev1.Pod, error) { return decodePods(statusAPI(t, "/pods")) },
		manifestDir, func() {
			for _, b := range behaviours {
				waitGone(t, units.ServiceName("default", b.PodName()))
			}
		})
	node := ""
	for _, o := range fromPodunit {
		if o.pod != nil && o.pod.Spec.NodeName != "" {
			node = o.pod.Spec.NodeName
		}
	}
	if node == "" {
		node, _ = os.Hostname()
	}

	stopKubelet := startKubelet(t, kubelet, node)
	fromKubelet := runBehaviours(t, "kubelet", behaviours, kubeletPods, kubeletManifests, func() {
		// Its /pods drops a pod as its file goes; the kill (preStop, the
		// grace period) comes after: done once no sandbox of its is ready.
		waitForWithin(t, 3*time.Minute, "the kubelet's pods stopped", func() (bool, error) {
			pods, err := kubeletPods()
			if err != nil || len(pods) > 0 {
				return false, err
			}
			list, err := cri.ListPodSandbox(context.Background(), &runtimeapi.PodSandboxFilter{})
			if err != nil {
				return false, err
			}
			for _, sb := range list {
				if sb.Labels[podshim.LabelManaged] != "true" && sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
					return false, nil
				}
			}
			return true, nil
		})
	})
	stopKubelet()

	var findings []oracle.KubeletFinding
	agree := map[string]int{}
	var ran []string
	for _, b := range behaviours {
		ran = append(ran, b.Name)
		k, p := fromKubelet[b.Name].obs, fromPodunit[b.Name].obs
		fs := oracle.CompareObservations(b.Name, k, p)
		findings = append(findings, fs...)
		agree[b.Name] = len(k) - len(fs)
		if agree[b.Name] < 0 {
			agree[b.Name] = 0
		}
		t.Logf("%s: kubelet %v\n    podunit %v", b.Name, k, p)
	}
	checkKubeletTable(t, table, update, oracle.KubeletTable{
		Version: strings.TrimSpace(string(version)), Runtime: runtimeName, Ran: ran, Agree: agree, Findings: findings,
	})
}

const kubeletManifests = "/etc/kubernetes/oracle-manifests"

type observed struct {
	pod *corev1.Pod
	obs oracle.Observation
}

// runBehaviours writes every behaviour's manifest (and the objects it
// refers to) into dir at once, watches side's /pods until each
// behaviour's Done holds and its pod has settled (or its Within, or 3
// minutes, pass), observes each at that moment, then removes the files,
// waits with gone for the pods to go, and reads what they wrote as they
// stopped.
func runBehaviours(t *testing.T, side string, bs []oracle.Behaviour, list func() ([]corev1.Pod, error), dir string, gone func()) map[string]observed {
	t.Helper()
	files := func(b oracle.Behaviour) map[string]string {
		f := map[string]string{b.PodName() + ".yaml": b.Manifest()}
		if b.Objects != "" {
			f[b.PodName()+"-objects.yaml"] = b.ObjectsManifest()
		}
		return f
	}
	for _, b := range bs {
		// The objects first, as kubectl apply -f DIR and podunit's own
		// apply would have them.
		for _, name := range []string{b.PodName() + "-objects.yaml", b.PodName() + ".yaml"} {
			if content, ok := files(b)[name]; ok {
				if err := writeFileErr(dir, name, content); err != nil {
					t.Fatalf("%s: %s: %v", side, b.Name, err)
				}
			}
		}
	}
	out := map[string]observed{}
	last := map[string]*corev1.Pod{}
	doneAt := map[string]time.Time{}
	start := time.Now()
	within := func(b oracle.Behaviour) time.Duration {
		if b.Within > 0 {
			return b.Within
		}
		return 3 * time.Minute
	}
	for len(out) < len(bs) {
		pods, err := list()
		if err != nil {
			pods = nil
		}
		for _, b := range bs {
			if _, ok := out[b.Name]; ok {
				continue
			}
			p := findPod(pods, b.PodName())
			if p != nil {
				last[b.Name] = p
			}
			if time.Since(start) >= within(b) {
				t.Logf("%s: %s not done within %s", side, b.Name, within(b))
				out[b.Name] = observed{pod: last[b.Name], obs: b.Observe(last[b.Name], false)}
				continue
			}
			if p == nil || !b.Done(p) {
				continue
			}
			// Observed once settled after Done first held, when each side
			// has acted on it (stopped a finished pod's sandbox, say): what
			// stands, not which side writes its status first.
			if doneAt[b.Name].IsZero() {
				doneAt[b.Name] = time.Now()
			}
			if oracle.Settled(p, time.Since(doneAt[b.Name])) {
				out[b.Name] = observed{pod: p, obs: b.Observe(p, true)}
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, b := range bs {
		for name := range files(b) {
			os.Remove(filepath.Join(dir, name))
		}
	}
	gone()
	for _, b := range bs {
		for _, f := range b.AfterFiles {
			v := "absent"
			if data, err := os.ReadFile(filepath.Join(b.HostDir(), f)); err == nil {
				v = strings.TrimSpace(string(data))
			}
			out[b.Name].obs["after."+f] = v
		}
		os.RemoveAll(b.HostDir())
	}
	return out
}

// findPod is the pod of a behaviour: podunit's "<name>", the kubelet's
// static pod "<name>-<node>".
func findPod(pods []corev1.Pod, name string) *corev1.Pod {
	for i := range pods {
		if n := pods[i].Name; n == name || n == name+"-"+pods[i].Spec.NodeName {
			return &pods[i]
		}
	}
	return nil
}

// kubeletPods is what the kubelet's read-only port lists.
func kubeletPods() ([]corev1.Pod, error) {
	code, body, err := get(fmt.Sprintf("http://127.0.0.1:%d/pods", kubeletOraclePort))
	if err != nil {
		return nil, err
	}
	return decodePods(code, body)
}

func decodePods(code int, body string) ([]corev1.Pod, error) {
	if code != 200 {
		return nil, fmt.Errorf("/pods: %d %s", code, body)
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

func writeFileErr(dir, file, content string) error {
	tmp := filepath.Join(dir, "."+file+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, file))
}

// startKubelet runs the kubelet standalone as a transient unit, as the
// standalone-kubelet tutorial does, on this test bed's runtime, its
// read-only port on kubeletOraclePort. The returned func stops it and
// removes what it left on the runtime.
func startKubelet(t *testing.T, kubelet, node string) func() {
	t.Helper()
	if err := os.MkdirAll(kubeletManifests, 0o755); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication: {webhook: {enabled: false}, anonymous: {enabled: true}}
authorization: {mode: AlwaysAllow}
enableServer: false
address: 127.0.0.1
readOnlyPort: %d
staticPodPath: %s
containerRuntimeEndpoint: %s
cgroupDriver: systemd
# As kubeadm configures every kubelet (the tutorial's has none).
clusterDomain: cluster.local
# The test bed: swap may be on, its hierarchies are cgroup v1.
failSwapOn: false
failCgroupV1: false
`, kubeletOraclePort, kubeletManifests, criEndpoint())
	const configFile = "/etc/kubernetes/oracle-kubelet.yaml"
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	const unit = "kubelet-oracle.service"
	if out, err := exec.Command("systemd-run", "--unit", unit, "--property=KillMode=process",
		kubelet, "--config", configFile, "--hostname-override", node).CombinedOutput(); err != nil {
		t.Fatalf("systemd-run kubelet: %v\n%s", err, out)
	}
	stop := func() {
		exec.Command("systemctl", "stop", unit).Run()
		exec.Command("systemctl", "reset-failed", unit).Run()
		removeKubeletSandboxes(t)
	}
	t.Cleanup(stop)
	waitForWithin(t, time.Minute, "the kubelet's read-only port", func() (bool, error) {
		if activeState(unit) == "failed" {
			out, _ := exec.Command("journalctl", "--no-pager", "-u", unit, "-n", "40").CombinedOutput()
			t.Fatalf("the kubelet failed:\n%s", out)
		}
		_, err := kubeletPods()
		return err == nil, err
	})
	return stop
}

// removeKubeletSandboxes removes the sandboxes the kubelet left (it
// collects them a minute later, and it is stopped): every one that is not
// podunit's.
func removeKubeletSandboxes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cri.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{})
	if err != nil {
		t.Logf("list sandboxes: %v", err)
		return
	}
	for _, sb := range list {
		if sb.Labels[podshim.LabelManaged] == "true" {
			continue
		}
		if err := cri.StopPodSandbox(ctx, sb.Id); err != nil {
			t.Logf("stop sandbox %s: %v", sb.Id, err)
		}
		if err := cri.RemovePodSandbox(ctx, sb.Id); err != nil {
			t.Logf("remove sandbox %s: %v", sb.Id, err)
		}
	}
}

// checkKubeletTable fails on a finding the table does not list, on a
// listed one gone (of the behaviours run), and on a row with no reason;
// with update (a run of the whole catalogue) it rewrites the table,
// keeping the reasons.
func checkKubeletTable(t *testing.T, path string, update bool, run oracle.KubeletTable) {
	t.Helper()
	if path == "" {
		t.Fatal("PODUNIT_KUBELET_TABLE is not set")
	}
	reasons := map[string]string{}
	if f, err := os.Open(path); err == nil {
		reasons, err = oracle.ParseKubeletTable(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	} else if !update {
		t.Fatalf("%v (make test-kubelet KUBELET_FLAGS=-update writes it)", err)
	}
	ran := map[string]bool{}
	for _, n := range run.Ran {
		ran[n] = true
	}
	seen := map[string]bool{}
	for i, f := range run.Findings {
		reason, listed := reasons[f.Row()]
		seen[f.Row()] = true
		run.Findings[i].Reason = reason
		switch {
		case !listed && !update:
			t.Errorf("%s: a difference %s does not list:\n  kubelet: %s\n  podunit: %s\n(fix podunit, or -update and write the reason)", f.Row(), path, f.Kubelet, f.Podunit)
		case listed && reason == "" && !update:
			t.Errorf("%s: listed in %s without a reason", f.Row(), path)
		}
	}
	var gone []string
	for row := range reasons {
		behaviour, _, _ := strings.Cut(row, " | ")
		switch {
		case seen[row]:
		case !ran[behaviour]: // not run (the short form)
		default:
			gone = append(gone, row)
		}
	}
	sort.Strings(gone)
	for _, row := range gone {
		if !update {
			t.Errorf("%s: listed in %s but no longer a difference (-update removes it)", row, path)
		}
	}
	if !update {
		return
	}
	var b bytes.Buffer
	if err := oracle.RenderKubeletTable(&b, run, oracle.Behaviours); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}
