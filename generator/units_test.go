package generator

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
)

var testUnitConfig = UnitConfig{
	PodshimPath:  "/usr/libexec/podunit/podshim",
	SpecDir:      "/run/podunit/specs",
	CRIEndpoint:  "unix:///run/containerd/containerd.sock",
	CgroupDriver: units.CgroupDriverSystemd,
	RestartSteps: true, // the goldens are systemd 254+'s units
}

// Each valid fixture renders to its golden unit text (testdata/valid/*.unit;
// `go test ./generator -update` rewrites them).
func TestUnitGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.*")
	for _, path := range files {
		if strings.HasSuffix(path, ".unit") {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			pods, err := Decode(filepath.Base(path), mustRead(t, path))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			for _, p := range pods {
				u, err := Unit(testUnitConfig, p)
				if err != nil {
					t.Fatal(err)
				}
				text, err := u.Render()
				if err != nil {
					t.Fatal(err)
				}
				out.WriteString(text)
				out.WriteString("\n")
			}
			golden := strings.TrimSuffix(path, filepath.Ext(path)) + ".unit"
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := mustRead(t, golden); !bytes.Equal(out.Bytes(), want) {
				t.Errorf("%s differs from the rendered units (-update rewrites it):\n%s", golden, out.String())
			}
		})
	}
}

// What matters in every unit, asserted in code as well as in the goldens.
func TestUnitSettings(t *testing.T) {
	pods, err := Decode("web.yaml", mustRead(t, "testdata/valid/web.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := Unit(testUnitConfig, pods[0])
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "pod-shop_web.service" || u.Slice != `podunit-shop_web.slice` {
		t.Errorf("names: %s %s", u.Name, u.Slice)
	}
	if u.Type != "notify" || u.Restart != "on-failure" || u.StartLimitInterval != 0 {
		t.Errorf("supervision: Type=%s Restart=%s StartLimitInterval=%s", u.Type, u.Restart, u.StartLimitInterval)
	}
	// The stop timeout covers the grace period (10 s in the fixture).
	if u.TimeoutStopSec <= 10*time.Second {
		t.Errorf("TimeoutStopSec %s does not cover a 10 s grace period", u.TimeoutStopSec)
	}
	wantExec := []string{"/usr/libexec/podunit/podshim",
		"--spec", "/run/podunit/specs/shop_web-" + pods[0].Hash + ".json",
		"--cri-endpoint", "unix:///run/containerd/containerd.sock",
		"--cgroup-parent", "podunit-shop_web.slice"}
	if strings.Join(u.ExecStart, " ") != strings.Join(wantExec, " ") {
		t.Errorf("ExecStart = %q, want %q", u.ExecStart, wantExec)
	}

	// systemd paces podshim's restarts (RestartSteps=) where it can; on an
	// older manager the unit has RestartSec= alone and podshim waits out
	// the rest.
	backoff := podspec.DefaultRestartBackoff
	if u.RestartSec != backoff.Sec || u.RestartSteps != backoff.Steps || u.RestartMaxDelay != backoff.MaxDelay {
		t.Errorf("systemd 254+: RestartSec=%s RestartSteps=%d RestartMaxDelaySec=%s, want %+v", u.RestartSec, u.RestartSteps, u.RestartMaxDelay, backoff)
	}
	old := testUnitConfig
	old.RestartSteps = false
	u252, err := Unit(old, pods[0])
	if err != nil {
		t.Fatal(err)
	}
	if u252.RestartSec != backoff.Sec || u252.RestartSteps != 0 || u252.RestartMaxDelay != 0 ||
		strings.Join(u252.ExecStart, " ") != strings.Join(append(wantExec, "--restart-backoff"), " ") {
		t.Errorf("systemd 252: RestartSec=%s RestartSteps=%d RestartMaxDelaySec=%s ExecStart=%q; want RestartSec=%s alone and podshim --restart-backoff",
			u252.RestartSec, u252.RestartSteps, u252.RestartMaxDelay, u252.ExecStart, backoff.Sec)
	}
	for v, want := range map[string]bool{"252.38-1~deb12u1": false, "253": false, "254.1": true, "257.9-1": true, "262~rc1-1": true, "": false} {
		if got := SystemdHasRestartSteps(v); got != want {
			t.Errorf("SystemdHasRestartSteps(%q) = %v", v, got)
		}
	}

	cgfs := testUnitConfig
	cgfs.CgroupDriver = units.CgroupDriverCgroupfs
	u, err = Unit(cgfs, pods[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := u.ExecStart[len(u.ExecStart)-1]; got != "/podunit.slice/podunit-shop_web.slice" {
		t.Errorf("cgroupfs parent = %s", got)
	}
}

func TestSpecFileRoundTrip(t *testing.T) {
	pods, err := Decode("web.yaml", mustRead(t, "testdata/valid/web.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := podspec.EncodeSpec(pods[0].Spec)
	if err != nil {
		t.Fatal(err)
	}
	// podshim decodes the spec file with encoding/json: it must get the
	// very pod that sync decoded.
	var again corev1.Pod
	if err := json.Unmarshal(b, &again); err != nil {
		t.Fatalf("spec file does not decode: %v", err)
	}
	if !reflect.DeepEqual(&again, pods[0].Spec) {
		t.Errorf("spec file round trip changed the pod:\n%s", b)
	}
}

// TestSpecFilesRoundTrip: podshim reads every valid test manifest's pod
// from the files WriteSpecFiles writes (the protobuf twin) as the very pod
// sync decoded, and from the JSON spec file alone as well (a spec written
// before the twin existed).
func TestSpecFilesRoundTrip(t *testing.T) {
	paths, _ := filepath.Glob("testdata/valid/*.*")
	dir := t.TempDir()
	n := 0
	for _, path := range paths {
		if strings.HasSuffix(path, ".unit") {
			continue
		}
		pods, err := Decode(path, mustRead(t, path))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods {
			n++
			spec := filepath.Join(dir, p.Namespace()+"_"+p.Name()+"-"+p.Hash+".json")
			if err := podspec.WriteSpecFiles(spec, p.Spec, p.Objects); err != nil {
				t.Fatal(err)
			}
			got, err := podspec.ReadSpec(spec)
			if err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(got, p.Spec) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(p.Spec)
				t.Errorf("%s: pod %s from the protobuf twin differs:\n got  %s\n want %s", path, p.Key(), g, w)
			}
			if err := os.Remove(podspec.BinarySpecPath(spec)); err != nil {
				t.Fatal(err)
			}
			if got, err = podspec.ReadSpec(spec); err != nil || !equality.Semantic.DeepEqual(got, p.Spec) {
				t.Errorf("%s: pod %s from the JSON spec file differs (%v)", path, p.Key(), err)
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d pods in the test manifests", n)
	}
}

func TestWriteSpecFilesKeepsWhatExists(t *testing.T) {
	pods, err := Decode("web.yaml", mustRead(t, "testdata/valid/web.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(t.TempDir(), "specs", "default_web-1.json")
	if err := podspec.WriteSpecFiles(spec, pods[0].Spec, pods[0].Objects); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{spec, podspec.BinarySpecPath(spec)} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v (want mode 0600)", f, fi, err)
		}
	}
	// The hash in the name means the content never changes: an existing
	// spec file is not written again.
	os.WriteFile(spec, []byte("kept"), 0o600)
	if err := podspec.WriteSpecFiles(spec, pods[0].Spec, pods[0].Objects); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(spec); string(b) != "kept" {
		t.Errorf("spec file rewritten: %q", b)
	}
}

func TestAfterAnnotation(t *testing.T) {
	pods, err := Decode("web.yaml", []byte(`apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations: {podunit.io/after: "db, infra/cache"}
spec:
  containers: [{name: c, image: "i:1"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	u, err := Unit(testUnitConfig, pods[0])
	if err != nil {
		t.Fatal(err)
	}
	// Started once those are ready, by the reconciler; not linked by
	// After=/Wants=, which would pin their units (units.Unit.StartAfter).
	if !slices.Equal(u.StartAfter, []string{"pod-db.service", "pod-infra_cache.service"}) ||
		slices.Contains(u.After, "pod-db.service") || len(u.Wants) != 0 || !slices.Contains(u.After, "containerd.service") {
		t.Errorf("StartAfter %v, After %v, Wants %v", u.StartAfter, u.After, u.Wants)
	}
	_, err = Decode("web.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations: {podunit.io/after: \"web,Bad_Name\"}\nspec:\n  containers: [{name: c, image: \"i:1\"}]\n"))
	for _, want := range []string{"web.yaml:5: metadata.annotations[podunit.io/after]: a pod cannot start after itself", `"default/Bad_Name": a lowercase RFC 1123 subdomain`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

// Pod-level resources: the slice gets the pod's limits (not the sum of its
// containers'); a container's limit above the pod's is an error.
func TestPodLevelResources(t *testing.T) {
	pod := `apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  resources:
    limits: {cpu: "1", memory: 256Mi}
  containers:
  - name: a
    image: busybox:1
    resources: {limits: {memory: 128Mi}}
  - name: b
    image: busybox:1
`
	pods, err := Decode("pod.yaml", []byte(pod))
	if err != nil {
		t.Fatal(err)
	}
	l := sliceLimits(pods[0].Spec)
	if l.MemoryMax != 256<<20+sliceOverhead || l.CPUQuotaPerSec != 1_000_000 {
		t.Errorf("slice limits %+v", l)
	}
	if r := pods[0].Spec.Spec.Resources.Requests; r.Memory().Value() != 256<<20 {
		t.Errorf("pod-level requests not defaulted to the limits: %v", r)
	}
	bad := strings.Replace(pod, "memory: 128Mi", "memory: 512Mi", 1)
	if _, err := Decode("pod.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "spec.containers[0].resources.limits[memory]: 512Mi: must not be more than the pod's limit 256Mi") {
		t.Errorf("container over the pod's limit: %v", err)
	}
}

// At shutdown node-critical pods stop last, as the kubelet's graceful node
// shutdown stops them: their units are ordered before podunit-critical.target,
// every other pod's after it (so it stops before the target, and the
// target before the critical pods).
func TestCriticalPodsStopLast(t *testing.T) {
	for class, critical := range map[string]bool{"system-node-critical": true, "system-cluster-critical": true, "": false, "high": false} {
		manifest := "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: kube-system}\nspec:\n  priorityClassName: \"" + class + "\"\n  containers: [{name: c, image: i}]\n"
		pods, err := Decode("p.yaml", []byte(manifest))
		if err != nil {
			t.Fatal(err)
		}
		u, err := Unit(testUnitConfig, pods[0])
		if err != nil {
			t.Fatal(err)
		}
		before, after := slices.Contains(u.Before, units.CriticalTarget), slices.Contains(u.After, units.CriticalTarget)
		if before != critical || after == critical {
			t.Errorf("priorityClassName %q: Before=%v After=%v", class, u.Before, u.After)
		}
	}
}

// A Job's pod tells its podshim where to record its end, so that the Job
// stays done across a reboot that comes before any sync saw it finish; no
// other pod gets a record.
func TestJobPodRecordsItsEnd(t *testing.T) {
	cfg := testUnitConfig
	cfg.JobDir = "/var/lib/podunit/jobs"
	pods, err := Decode("/etc/podunit/manifests/m.yaml", []byte(`apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: shop}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec: {containers: [{name: c, image: busybox}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		u, err := Unit(cfg, p)
		if err != nil {
			t.Fatal(err)
		}
		argv := strings.Join(u.ExecStart, " ")
		want := "--finished-record /var/lib/podunit/jobs/shop_migrate-" + p.Hash
		if got := strings.Contains(argv, want); got != (p.Name() == "migrate") {
			t.Errorf("%s: ExecStart %s (want the record: %v)", p.Name(), argv, p.Name() == "migrate")
		}
	}
}

// A pod that must pull at its start waits for the network at boot; one
// whose images are here (or never pulled) does not.
func TestNetworkOnlineOnlyWhenPulling(t *testing.T) {
	pod := func(policy corev1.PullPolicy) *Pod {
		pods, err := Decode("p.yaml", []byte(`apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers: [{name: init, image: "localhost/init:1", imagePullPolicy: Never}]
  containers: [{name: c, image: "localhost/app:1", imagePullPolicy: `+string(policy)+`}]
`))
		if err != nil {
			t.Fatal(err)
		}
		return pods[0]
	}
	here := func(image string) bool { return image == "localhost/app:1" }
	gone := func(string) bool { return false }
	for _, c := range []struct {
		policy  corev1.PullPolicy
		present func(string) bool
		waits   bool
	}{
		{corev1.PullAlways, here, true},
		{corev1.PullIfNotPresent, gone, true},
		{corev1.PullIfNotPresent, here, false},
		{corev1.PullIfNotPresent, nil, false},
		{corev1.PullNever, gone, false},
	} {
		cfg := testUnitConfig
		cfg.ImagePresent = c.present
		u, err := Unit(cfg, pod(c.policy))
		if err != nil {
			t.Fatal(err)
		}
		after, wants := slices.Contains(u.After, "network-online.target"), slices.Contains(u.Wants, "network-online.target")
		if after != c.waits || wants != c.waits {
			t.Errorf("%s, image present %v: After=%v Wants=%v, want the network %v", c.policy, c.present != nil && c.present("localhost/app:1"), u.After, u.Wants, c.waits)
		}
	}
}
