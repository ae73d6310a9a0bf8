package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
)

// manager is a minimal in-memory systemd: units start active and vanish when
// stopped.
type manager struct {
	mu    sync.Mutex
	units map[string]dbus.UnitStatus
	// unitConfig is the sync's, for the hand-offs the fake runs as soon as
	// they are queued (its stops are done at once).
	unitConfig *generator.UnitConfig
	started    []string // static units started (podunit-sync.service)
}

func (m *manager) ListUnitsByPatternsContext(_ context.Context, _ []string, patterns []string) ([]dbus.UnitStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []dbus.UnitStatus
	for _, u := range m.units {
		for _, p := range patterns {
			if prefix, _, _ := strings.Cut(p, "*"); strings.HasPrefix(u.Name, prefix) {
				out = append(out, u)
				break
			}
		}
	}
	return out, nil
}

func (m *manager) StartTransientUnitContext(ctx context.Context, name, _ string, props []dbus.Property, ch chan<- string) (int, error) {
	if strings.HasPrefix(name, "podunit-handoff-") || strings.HasPrefix(name, "podunit-rollout-") {
		// Run it as `podunit handoff` would: its argv ends with the flags
		// and spec files the sync gave it.
		var argv []string
		for _, p := range props {
			if p.Name == "ExecStart" {
				argv = reflect.ValueOf(p.Value.Value()).Index(0).FieldByName("Args").Interface().([]string)
			}
		}
		for i, a := range argv {
			if a == "--ready" {
				if err := units.WaitActive(ctx, m, argv[i+1]); err != nil {
					return 1, err
				}
			}
		}
		if i := slices.Index(argv, "--gone"); i >= 0 {
			if err := units.WaitStopped(ctx, m, argv[i+1]); err != nil {
				return 1, err
			}
			return 1, units.QueueStart(ctx, m, syncUnit)
		}
		rolling := slices.Contains(argv, "--rolling")
		var specs []string
		for _, a := range argv {
			if strings.HasSuffix(a, ".json") {
				specs = append(specs, a)
			}
		}
		return 1, handoff(ctx, m, *m.unitConfig, specs, rolling, &reporter{w: io.Discard})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if strings.HasSuffix(name, ".slice") {
		return 1, nil // the pod's slice; its limits are tested in units
	}
	if _, ok := m.units[name]; ok {
		return 0, godbus.Error{Name: "org.freedesktop.systemd1.UnitExists"}
	}
	for _, p := range props {
		if p.Name == "Description" {
			m.units[name] = dbus.UnitStatus{Name: name, Description: p.Value.Value().(string), LoadState: "loaded", ActiveState: "active"}
		}
	}
	if ch != nil {
		ch <- "done"
	}
	return 1, nil
}

// StartTransientUnitAux arms a CronJob's timer with its service.
func (m *manager) StartTransientUnitAux(ctx context.Context, name, mode string, props []dbus.Property, aux []dbus.PropertyCollection, ch chan<- string) (int, error) {
	for _, a := range aux {
		if _, err := m.StartTransientUnitContext(ctx, a.Name, mode, a.Properties, nil); err != nil {
			return 0, err
		}
	}
	return m.StartTransientUnitContext(ctx, name, mode, props, ch)
}

func (m *manager) SetUnitPropertiesContext(context.Context, string, bool, ...dbus.Property) error {
	return nil
}

func (m *manager) StopUnitContext(_ context.Context, name, _ string, ch chan<- string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.units, name)
	if ch != nil {
		ch <- "done"
	}
	return 1, nil
}

func (m *manager) StartUnitContext(_ context.Context, name, _ string, ch chan<- string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started = append(m.started, name)
	return 1, nil
}

func (m *manager) ResetFailedUnitContext(context.Context, string) error { return nil }

// GetUnitTypePropertiesContext gives every unit the same figures, and
// systemd's "unknown" for memory.
func (m *manager) GetUnitTypePropertiesContext(_ context.Context, unit, _ string) (map[string]any, error) {
	return map[string]any{"NRestarts": uint32(2), "MemoryCurrent": uint64(math.MaxUint64), "CPUUsageNSec": uint64(1_500_000_000)}, nil
}

func pod(name, image string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n  containers: [{name: c, image: \"" + image + "\"}]\n"
}

func newSyncer(t testing.TB) (*syncer, *manager, *critest.FakeRuntimeService, *bytes.Buffer) {
	t.Helper()
	m := &manager{units: map[string]dbus.UnitStatus{}}
	rt := critest.NewFakeRuntimeService()
	var out bytes.Buffer
	dir := t.TempDir()
	s := &syncer{
		handoffCmd: []string{"/usr/local/bin/podunit", "handoff"},
		sources:    []generator.Source{{Dir: filepath.Join(dir, "manifests")}},
		unitConfig: generator.UnitConfig{
			PodshimPath: "/usr/libexec/podunit/podshim", SpecDir: filepath.Join(dir, "specs"),
			CRIEndpoint: "unix:///run/containerd/containerd.sock", CgroupDriver: units.CgroupDriverSystemd,
		},
		manager: m,
		runtime: rt,
		report:  &reporter{w: &out},
	}
	m.unitConfig = &s.unitConfig
	return s, m, rt, &out
}

func write(t testing.TB, dir, name, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func specFiles(t *testing.T, dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func TestSync(t *testing.T) {
	s, m, _, out := newSyncer(t)
	ctx := context.Background()

	// A missing manifest directory is no pods, not an error.
	if err := s.run(ctx); err != nil {
		t.Fatalf("sync of a missing directory: %v", err)
	}

	write(t, s.sources[0].Dir, "web.yaml", pod("web", "img:1"))
	write(t, s.sources[0].Dir, "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {containers: [{name: c, image: i, ttty: true}]}\n")
	err := s.run(ctx)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitInvalid {
		t.Fatalf("sync with an invalid manifest: %v, want exit status %d", err, exitInvalid)
	}
	if !strings.Contains(out.String(), "error: "+filepath.Join(s.sources[0].Dir, "bad.yaml")+":4: spec.containers[0].ttty: unknown field (did you mean \"tty\"?)") {
		t.Errorf("output does not name the bad file, line and field:\n%s", out)
	}
	if _, ok := m.units["pod-web.service"]; !ok || len(m.units) != 1 {
		t.Fatalf("units after first sync: %v", m.units)
	}
	specs := specFiles(t, s.unitConfig.SpecDir)
	if len(specs) != 1 || !strings.HasPrefix(specs[0], "default_web-") {
		t.Errorf("spec files: %v", specs)
	}
	seen := func(file string) string {
		p, err := generator.ReadSpecFile(filepath.Join(s.unitConfig.SpecDir, file))
		if err != nil {
			t.Fatal(err)
		}
		return p.Spec.Annotations[generator.AnnotationConfigSeen]
	}
	firstSeen := seen(specs[0])
	if _, err := time.Parse(time.RFC3339Nano, firstSeen); err != nil {
		t.Errorf("kubernetes.io/config.seen %q: %v", firstSeen, err)
	}
	s.now = func() time.Time { return time.Now().Add(time.Hour) }

	// An edit replaces the unit and the spec file; the old spec file goes.
	os.Remove(filepath.Join(s.sources[0].Dir, "bad.yaml"))
	write(t, s.sources[0].Dir, "web.yaml", pod("web", "img:2"))
	out.Reset()
	if err := s.run(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "replacing pod-web.service") {
		t.Errorf("output:\n%s", out)
	}
	after := specFiles(t, s.unitConfig.SpecDir)
	if len(after) != 1 || after[0] == specs[0] {
		t.Fatalf("spec files after edit: %v (before %v)", after, specs)
	}
	// The old spec's protobuf twin went with it.
	if twins, _ := filepath.Glob(filepath.Join(s.unitConfig.SpecDir, "*.pb")); len(twins) != 1 ||
		twins[0] != podspec.BinarySpecPath(filepath.Join(s.unitConfig.SpecDir, after[0])) {
		t.Errorf("protobuf twins after edit: %v (spec %v)", twins, after)
	}
	if got := seen(after[0]); got != firstSeen {
		t.Errorf("kubernetes.io/config.seen changed over an edit: %s → %s", firstSeen, got)
	}

	// Removing the file stops the unit and removes its spec file.
	os.Remove(filepath.Join(s.sources[0].Dir, "web.yaml"))
	if err := s.run(ctx); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(s.unitConfig.SpecDir); len(m.units) != 0 || len(left) != 0 {
		t.Errorf("after delete: units %v, files in the spec directory %v", m.units, left)
	}
}

// A sandbox podunit made whose pod has no unit (stopped while podshim was
// not running) is removed; sandboxes of running pods and of other tools stay.
func TestSyncCollectsOrphanedSandboxes(t *testing.T) {
	s, _, rt, out := newSyncer(t)
	write(t, s.sources[0].Dir, "web.yaml", pod("web", "img:1"))
	run := func(name string, labels map[string]string) string {
		id, err := rt.RunPodSandbox(context.Background(), &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: name},
			Labels:   labels,
		}, "")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	managed := func(name string) map[string]string {
		return map[string]string{podshim.LabelManaged: "true", podshim.LabelPodNamespace: "default", podshim.LabelPodName: name}
	}
	web := run("web", managed("web"))
	orphan := run("orphan", managed("orphan"))
	foreign := run("foreign", map[string]string{podshim.LabelPodName: "foreign"})

	if err := s.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rt.Sandboxes[web] == nil || rt.Sandboxes[foreign] == nil || rt.Sandboxes[orphan] != nil {
		t.Errorf("sandboxes after sync: %v", rt.Sandboxes)
	}
	if !strings.Contains(out.String(), "removed sandbox "+orphan+" of pod default/orphan: no unit owns it") {
		t.Errorf("output:\n%s", out)
	}
}

// A manifest that turns invalid (a half-saved file, a typo) keeps its pod
// running on the last good spec; removing the file stops it.
func TestSyncKeepsLastGoodSpec(t *testing.T) {
	s, m, _, out := newSyncer(t)
	ctx := context.Background()
	write(t, s.sources[0].Dir, "web.yaml", pod("web", "img:1"))
	if err := s.run(ctx); err != nil {
		t.Fatal(err)
	}
	before := m.units["pod-web.service"]

	write(t, s.sources[0].Dir, "web.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: \"img:2\", imagePullPolcy: Always}]\n")
	out.Reset()
	err := s.run(ctx)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitInvalid {
		t.Errorf("sync of an invalid edit: %v", err)
	}
	if got := m.units["pod-web.service"]; got != before {
		t.Errorf("the running pod was touched: %+v → %+v", before, got)
	}
	if !strings.Contains(out.String(), "keeps running on its last good spec") || !strings.Contains(out.String(), "imagePullPolcy: unknown field") {
		t.Errorf("output:\n%s", out)
	}
	if len(specFiles(t, s.unitConfig.SpecDir)) != 1 {
		t.Error("the last good spec file was removed")
	}

	write(t, s.sources[0].Dir, "web.yaml", "")
	if err := s.run(ctx); err == nil || m.units["pod-web.service"] != before {
		t.Errorf("an emptied (half-saved) file: err %v, units %v", err, m.units)
	}

	os.Remove(filepath.Join(s.sources[0].Dir, "web.yaml"))
	if err := s.run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(m.units) != 0 {
		t.Errorf("removing the invalid file did not stop the pod: %v", m.units)
	}
}

// settle returns once the directory held still, with its final state.
func TestSettleWaitsForTheDirectoryToHoldStill(t *testing.T) {
	dir := t.TempDir()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 6; i++ {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.yaml", i)), []byte("x"), 0o644)
			time.Sleep(30 * time.Millisecond)
		}
	}()
	time.Sleep(5 * time.Millisecond)
	fp := settle(context.Background(), 100*time.Millisecond, dir)
	<-done
	if fp != fingerprint(dir) {
		t.Errorf("settle returned while the directory was still changing:\n%s\nfinal:\n%s", fp, fingerprint(dir))
	}
}

// A pod directory whose pod has neither a sandbox nor a manifest goes, its
// tmpfs volumes unmounted; a young one (its podshim may be starting) stays.
func TestCollectPodDirs(t *testing.T) {
	root := t.TempDir()
	old := time.Now().Add(-2 * podDirMinAge)
	for _, d := range []string{"kept", "orphan/volumes/kubernetes.io~secret/s", "young"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mounted := false
	if os.Geteuid() == 0 {
		secret := filepath.Join(root, "orphan/volumes/kubernetes.io~secret/s")
		if err := unix.Mount("tmpfs", secret, "tmpfs", 0, "size=1m"); err == nil {
			mounted = true
			t.Cleanup(func() { unix.Unmount(secret, unix.MNT_DETACH) })
		}
	}
	for _, d := range []string{"kept", "orphan"} {
		os.Chtimes(filepath.Join(root, d), old, old)
	}
	var out bytes.Buffer
	collectPodDirs(root, map[string]bool{"kept": true}, time.Now(), &reporter{w: &out})
	for d, want := range map[string]bool{"kept": true, "orphan": false, "young": true} {
		if _, err := os.Stat(filepath.Join(root, d)); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v (%s)", d, err == nil, want, out.String())
		}
	}
	if mounted {
		if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), root) {
			t.Error("the orphan's tmpfs is still mounted")
		}
	}
}

// A Job that completed stays completed: after its unit is gone (a reboot)
// it is not run again, until its manifest changes.
func TestSyncKeepsJobsCompleted(t *testing.T) {
	s, m, _, _ := newSyncer(t)
	s.jobs = jobRecords{dir: filepath.Join(t.TempDir(), "jobs")}
	ctx := context.Background()
	job := func(image string) string {
		return "apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: \"" + image + "\"}]\n"
	}
	write(t, s.sources[0].Dir, "job.yaml", job("img:1"))
	if err := s.run(ctx); err != nil {
		t.Fatal(err)
	}
	u := m.units["pod-migrate.service"]
	u.SubState = "exited" // the pod succeeded: active (exited)
	m.units["pod-migrate.service"] = u
	if err := s.run(ctx); err != nil {
		t.Fatal(err)
	}
	delete(m.units, "pod-migrate.service") // a reboot
	if err := s.run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.units["pod-migrate.service"]; ok {
		t.Fatal("a completed Job ran again after its unit was gone")
	}
	write(t, s.sources[0].Dir, "job.yaml", job("img:2"))
	if err := s.run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.units["pod-migrate.service"]; !ok {
		t.Error("a changed Job did not run")
	}
	if records, _ := os.ReadDir(s.jobs.dir); len(records) != 0 {
		t.Errorf("the old Job's record was kept: %v", records)
	}
}

// Several manifest directories: read in order, the first definition of a
// name wins.
func TestSyncSeveralManifestDirs(t *testing.T) {
	s, m, _, out := newSyncer(t)
	more := filepath.Join(t.TempDir(), "more")
	s.sources = append(s.sources, generator.Source{Dir: more})
	write(t, s.sources[0].Dir, "web.yaml", pod("web", "img:1"))
	write(t, more, "web.yaml", pod("web", "img:2"))
	write(t, more, "api.yaml", pod("api", "img:1"))
	err := s.run(context.Background())
	if _, ok := m.units["pod-api.service"]; !ok || err == nil || !strings.Contains(out.String(), filepath.Join(more, "web.yaml")+": metadata.name: pod default/web is already defined in "+filepath.Join(s.sources[0].Dir, "web.yaml")) {
		t.Errorf("units %v, err %v, output:\n%s", m.units, err, out)
	}
}

// A pod whose nodeSelector does not match the node is not started, the sync
// says why once, and the status API shows it Failed with the kubelet's
// reason; when the node gets the label, the next sync starts it. Notices
// reach the journal once per change of the file, not at every sync.
func TestSyncAdmissionAndNotices(t *testing.T) {
	s, m, _, out := newSyncer(t)
	s.syncState = filepath.Join(t.TempDir(), "sync.json")
	s.reader = generator.Reader{Node: generator.NewNode("node1", nil)}
	ctx := context.Background()
	write(t, s.sources[0].Dir, "ssd.yaml", strings.Replace(pod("ssd", "img:1"), "spec:\n", "spec:\n  nodeSelector: {disktype: ssd}\n", 1))
	write(t, s.sources[0].Dir, "web.yaml", strings.Replace(pod("web", "img:1"), "spec:\n", "spec:\n  tolerations: [{operator: Exists}]\n", 1))
	for range 2 {
		if err := s.run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := m.units["pod-ssd.service"]; ok {
		t.Error("a pod that does not fit the node was started")
	}
	if _, ok := m.units["pod-web.service"]; !ok {
		t.Error("the pod with a notice was not started")
	}
	if n := strings.Count(out.String(), "pod default/ssd from "); n != 1 {
		t.Errorf("not-admitted pod reported %d times:\n%s", n, out)
	}
	if n := strings.Count(out.String(), "notice: spec.tolerations: "); n != 1 {
		t.Errorf("notice reported %d times:\n%s", n, out)
	}
	st, err := readSyncState(s.syncState)
	if err != nil || st.NotAdmitted["default/ssd"].Reason != "NodeAffinity" {
		t.Fatalf("sync state: %+v %v", st, err)
	}
	srv := &statusServer{specDir: s.unitConfig.SpecDir, stateDir: t.TempDir(), syncState: s.syncState, manager: m}
	snap, err := srv.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, c := range snap.pods {
		if c.pod.Name == "ssd" {
			found = true
			if c.pod.Status.Phase != "Failed" || c.pod.Status.Reason != "NodeAffinity" || podStatusWord(&c.pod) != "NodeAffinity" {
				t.Errorf("status %+v, get pods says %s", c.pod.Status, podStatusWord(&c.pod))
			}
		}
	}
	if !found {
		t.Errorf("the not-admitted pod is not served: %s", snap.list)
	}
	// The node gets the label: the pod starts.
	s.reader = generator.Reader{Node: generator.NewNode("node1", map[string]string{"disktype": "ssd"})}
	if err := s.run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.units["pod-ssd.service"]; !ok {
		t.Error("the pod that now fits was not started")
	}
}
