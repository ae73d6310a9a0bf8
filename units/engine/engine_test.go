package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/unitstest"
)

func pod(name, image string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n  containers: [{name: c, image: \"" + image + "\"}]\n"
}

func newSyncer(t testing.TB) (*Syncer, *unitstest.Manager, *critest.FakeRuntimeService, *bytes.Buffer) {
	t.Helper()
	m := unitstest.NewManager()
	rt := critest.NewFakeRuntimeService()
	var out bytes.Buffer
	dir := t.TempDir()
	s := &Syncer{
		HandoffCmd: []string{"/usr/local/bin/podunit", "handoff"},
		Sources:    []generator.Source{{Dir: filepath.Join(dir, "manifests")}},
		UnitConfig: generator.UnitConfig{
			PodshimPath: "/usr/libexec/podunit/podshim", SpecDir: filepath.Join(dir, "specs"),
			CRIEndpoint: "unix:///run/containerd/containerd.sock", CgroupDriver: units.CgroupDriverSystemd,
		},
		Manager: m,
		Runtime: rt,
		Report:  &testReporter{w: &out},
	}
	report := &testReporter{w: io.Discard}
	m.Handoff = func(ctx context.Context, specs []string, rolling bool) error {
		r := &Replacer{Manager: m, UnitConfig: s.UnitConfig, Rollouts: s.Rollouts, Report: report}
		return Handoff(ctx, r, Job{Specs: specs, Rolling: rolling})
	}
	return s, m, rt, &out
}

// Errors runSync returns for a sync that ran, as podunit sync's exit
// statuses tell them apart.
var (
	errInvalid = errors.New("manifest problems; valid pods were synced")
	errFailed  = errors.New("pod units could not be synced")
)

// runSync runs s once and returns how it went as one error.
func runSync(ctx context.Context, s *Syncer) error {
	res, err := s.Run(ctx)
	switch {
	case err != nil:
		return err
	case res.Failed > 0:
		return fmt.Errorf("%w: %d", errFailed, res.Failed)
	case res.Invalid > 0:
		return fmt.Errorf("%w: %d", errInvalid, res.Invalid)
	}
	return nil
}

// testReporter writes a sync's messages as podunit sync does on a terminal.
type testReporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *testReporter) print(prefix, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, prefix+format+"\n", args...)
}

func (r *testReporter) Errorf(format string, args ...any)  { r.print("error: ", format, args...) }
func (r *testReporter) Noticef(format string, args ...any) { r.print("", format, args...) }
func (r *testReporter) Infof(format string, args ...any)   { r.print("", format, args...) }
func (r *testReporter) Debugf(format string, args ...any)  { r.print("", format, args...) }

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
	if err := runSync(ctx, s); err != nil {
		t.Fatalf("sync of a missing directory: %v", err)
	}

	write(t, s.Sources[0].Dir, "web.yaml", pod("web", "img:1"))
	write(t, s.Sources[0].Dir, "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {containers: [{name: c, image: i, ttty: true}]}\n")
	err := runSync(ctx, s)
	if !errors.Is(err, errInvalid) {
		t.Fatalf("sync with an invalid manifest: %v, want %v", err, errInvalid)
	}
	if !strings.Contains(out.String(), "error: "+filepath.Join(s.Sources[0].Dir, "bad.yaml")+":4: spec.containers[0].ttty: unknown field (did you mean \"tty\"?)") {
		t.Errorf("output does not name the bad file, line and field:\n%s", out)
	}
	if _, ok := m.Units["pod-web.service"]; !ok || len(m.Units) != 1 {
		t.Fatalf("units after first sync: %v", m.Units)
	}
	specs := specFiles(t, s.UnitConfig.SpecDir)
	if len(specs) != 1 || !strings.HasPrefix(specs[0], "default_web-") {
		t.Errorf("spec files: %v", specs)
	}
	seen := func(file string) string {
		p, err := generator.FromSpec(podspec.ReadSpec(filepath.Join(s.UnitConfig.SpecDir, file)))
		if err != nil {
			t.Fatal(err)
		}
		return p.Spec.Annotations[generator.AnnotationConfigSeen]
	}
	firstSeen := seen(specs[0])
	if _, err := time.Parse(time.RFC3339Nano, firstSeen); err != nil {
		t.Errorf("kubernetes.io/config.seen %q: %v", firstSeen, err)
	}
	s.Now = func() time.Time { return time.Now().Add(time.Hour) }

	// An edit replaces the unit and the spec file; the old spec file goes.
	os.Remove(filepath.Join(s.Sources[0].Dir, "bad.yaml"))
	write(t, s.Sources[0].Dir, "web.yaml", pod("web", "img:2"))
	out.Reset()
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "replacing pod-web.service") {
		t.Errorf("output:\n%s", out)
	}
	after := specFiles(t, s.UnitConfig.SpecDir)
	if len(after) != 1 || after[0] == specs[0] {
		t.Fatalf("spec files after edit: %v (before %v)", after, specs)
	}
	// The old spec's protobuf twin went with it.
	if twins, _ := filepath.Glob(filepath.Join(s.UnitConfig.SpecDir, "*.pb")); len(twins) != 1 ||
		twins[0] != podspec.BinarySpecPath(filepath.Join(s.UnitConfig.SpecDir, after[0])) {
		t.Errorf("protobuf twins after edit: %v (spec %v)", twins, after)
	}
	if got := seen(after[0]); got != firstSeen {
		t.Errorf("kubernetes.io/config.seen changed over an edit: %s → %s", firstSeen, got)
	}

	// Removing the file stops the unit and removes its spec file.
	os.Remove(filepath.Join(s.Sources[0].Dir, "web.yaml"))
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(s.UnitConfig.SpecDir); len(m.Units) != 0 || len(left) != 0 {
		t.Errorf("after delete: units %v, files in the spec directory %v", m.Units, left)
	}
}

// A sandbox podunit made whose pod has no unit (stopped while podshim was
// not running) is removed; sandboxes of running pods and of other tools stay.
func TestSyncCollectsOrphanedSandboxes(t *testing.T) {
	s, _, rt, out := newSyncer(t)
	write(t, s.Sources[0].Dir, "web.yaml", pod("web", "img:1"))
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

	if err := runSync(context.Background(), s); err != nil {
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
	write(t, s.Sources[0].Dir, "web.yaml", pod("web", "img:1"))
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	before := m.Units["pod-web.service"]

	write(t, s.Sources[0].Dir, "web.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: \"img:2\", imagePullPolcy: Always}]\n")
	out.Reset()
	err := runSync(ctx, s)
	if !errors.Is(err, errInvalid) {
		t.Errorf("sync of an invalid edit: %v", err)
	}
	if got := m.Units["pod-web.service"]; got != before {
		t.Errorf("the running pod was touched: %+v → %+v", before, got)
	}
	if !strings.Contains(out.String(), "keeps running on its last good spec") || !strings.Contains(out.String(), "imagePullPolcy: unknown field") {
		t.Errorf("output:\n%s", out)
	}
	if len(specFiles(t, s.UnitConfig.SpecDir)) != 1 {
		t.Error("the last good spec file was removed")
	}

	write(t, s.Sources[0].Dir, "web.yaml", "")
	if err := runSync(ctx, s); err == nil || m.Units["pod-web.service"] != before {
		t.Errorf("an emptied (half-saved) file: err %v, units %v", err, m.Units)
	}

	os.Remove(filepath.Join(s.Sources[0].Dir, "web.yaml"))
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if len(m.Units) != 0 {
		t.Errorf("removing the invalid file did not stop the pod: %v", m.Units)
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
// tmpfs volumes unmounted, and its log directory with it; a young one (its
// podshim may be starting) stays, and so does a log directory with no pod
// directory (not podunit's).
func TestCollectPodDirs(t *testing.T) {
	root, logRoot := t.TempDir(), t.TempDir()
	logDirs := map[string]bool{"default_web_kept": true, "default_web_orphan": false, "default_web_young": true, "default_other_stranger": true}
	for d := range logDirs {
		if err := os.MkdirAll(filepath.Join(logRoot, d, "c"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
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
	collectPodDirs(root, logRoot, map[string]bool{"kept": true}, time.Now(), &testReporter{w: &out})
	for d, want := range map[string]bool{"kept": true, "orphan": false, "young": true} {
		if _, err := os.Stat(filepath.Join(root, d)); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v (%s)", d, err == nil, want, out.String())
		}
	}
	for d, want := range logDirs {
		if _, err := os.Stat(filepath.Join(logRoot, d)); (err == nil) != want {
			t.Errorf("log directory %s: exists %v, want %v (%s)", d, err == nil, want, out.String())
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
	s.Jobs = JobRecords{Dir: filepath.Join(t.TempDir(), "jobs")}
	ctx := context.Background()
	job := func(image string) string {
		return "apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: \"" + image + "\"}]\n"
	}
	write(t, s.Sources[0].Dir, "job.yaml", job("img:1"))
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	u := m.Units["pod-migrate.service"]
	u.SubState = "exited" // the pod succeeded: active (exited)
	m.Units["pod-migrate.service"] = u
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	delete(m.Units, "pod-migrate.service") // a reboot
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Units["pod-migrate.service"]; ok {
		t.Fatal("a completed Job ran again after its unit was gone")
	}
	write(t, s.Sources[0].Dir, "job.yaml", job("img:2"))
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Units["pod-migrate.service"]; !ok {
		t.Error("a changed Job did not run")
	}
	if records, _ := os.ReadDir(s.Jobs.Dir); len(records) != 0 {
		t.Errorf("the old Job's record was kept: %v", records)
	}
}

// Several manifest directories: read in order, the first definition of a
// name wins.
func TestSyncSeveralManifestDirs(t *testing.T) {
	s, m, _, out := newSyncer(t)
	more := filepath.Join(t.TempDir(), "more")
	s.Sources = append(s.Sources, generator.Source{Dir: more})
	write(t, s.Sources[0].Dir, "web.yaml", pod("web", "img:1"))
	write(t, more, "web.yaml", pod("web", "img:2"))
	write(t, more, "api.yaml", pod("api", "img:1"))
	err := runSync(context.Background(), s)
	if _, ok := m.Units["pod-api.service"]; !ok || err == nil || !strings.Contains(out.String(), filepath.Join(more, "web.yaml")+": metadata.name: pod default/web is already defined in "+filepath.Join(s.Sources[0].Dir, "web.yaml")) {
		t.Errorf("units %v, err %v, output:\n%s", m.Units, err, out)
	}
}

// A pod whose nodeSelector does not match the node is not started, the sync
// says why once, and the status API shows it Failed with the kubelet's
// reason; when the node gets the label, the next sync starts it. Notices
// reach the journal once per change of the file, not at every sync.
func TestSyncAdmissionAndNotices(t *testing.T) {
	s, m, _, out := newSyncer(t)
	s.StatePath = filepath.Join(t.TempDir(), "sync.json")
	s.Reader = generator.Reader{Node: generator.NewNode("node1", nil)}
	ctx := context.Background()
	write(t, s.Sources[0].Dir, "ssd.yaml", strings.Replace(pod("ssd", "img:1"), "spec:\n", "spec:\n  nodeSelector: {disktype: ssd}\n", 1))
	write(t, s.Sources[0].Dir, "web.yaml", strings.Replace(pod("web", "img:1"), "spec:\n", "spec:\n  tolerations: [{operator: Exists}]\n", 1))
	for range 2 {
		if err := runSync(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := m.Units["pod-ssd.service"]; ok {
		t.Error("a pod that does not fit the node was started")
	}
	if _, ok := m.Units["pod-web.service"]; !ok {
		t.Error("the pod with a notice was not started")
	}
	if n := strings.Count(out.String(), "pod default/ssd from "); n != 1 {
		t.Errorf("not-admitted pod reported %d times:\n%s", n, out)
	}
	if n := strings.Count(out.String(), "notice: spec.tolerations: "); n != 1 {
		t.Errorf("notice reported %d times:\n%s", n, out)
	}
	st, err := ReadState(s.StatePath)
	if err != nil || st.NotAdmitted["default/ssd"].Reason != "NodeAffinity" {
		t.Fatalf("sync state: %+v %v", st, err)
	}
	// The node gets the label: the pod starts.
	s.Reader = generator.Reader{Node: generator.NewNode("node1", map[string]string{"disktype": "ssd"})}
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Units["pod-ssd.service"]; !ok {
		t.Error("the pod that now fits was not started")
	}
}
