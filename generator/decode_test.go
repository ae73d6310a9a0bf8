package generator

import (
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podunit/podunit/units"
)

var update = flag.Bool("update", false, "rewrite golden files and docs/manifest-reference.md")

// Every file in testdata/invalid says, in "# want:" lines, each error it must
// produce; it must produce no other.
func TestDecodeInvalid(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			name := strings.TrimPrefix(path, "testdata/")
			pods, err := Decode(name, data)
			if err == nil {
				t.Fatalf("decoded %d pod(s), want errors %q", len(pods), want)
			}
			got := strings.Split(err.Error(), "\n")
			for _, w := range want {
				if !containsPrefix(got, w) {
					t.Errorf("missing error %q", w)
				}
			}
			for _, g := range got {
				if !hasPrefixIn(g, want) {
					t.Errorf("unexpected error %q", g)
				}
			}
			for _, e := range flattenErrs(err) {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Errorf("error %v is not a *FieldError", e)
				}
			}
		})
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func hasPrefixIn(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func flattenErrs(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErrs(e)...)
		}
		return out
	}
	return []error{err}
}

func TestDecodeDefaults(t *testing.T) {
	pods, err := Decode("minimal.json", mustRead(t, "testdata/valid/minimal.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := pods[0].Spec
	if p.Namespace != "default" || p.Spec.RestartPolicy != corev1.RestartPolicyAlways ||
		*p.Spec.TerminationGracePeriodSeconds != 30 || p.Spec.Containers[0].ImagePullPolicy != corev1.PullAlways {
		t.Errorf("defaults not applied: ns=%q restart=%q grace=%d pull=%q", p.Namespace, p.Spec.RestartPolicy,
			*p.Spec.TerminationGracePeriodSeconds, p.Spec.Containers[0].ImagePullPolicy)
	}
	if string(p.UID) != pods[0].Hash || p.Annotations[AnnotationConfigHash] != pods[0].Hash ||
		p.Annotations[AnnotationConfigSource] != "file" || p.Annotations[AnnotationManifest] != "minimal.json" {
		t.Errorf("identity annotations: uid=%q annotations=%v", p.UID, p.Annotations)
	}
}

func TestDefaultPullPolicy(t *testing.T) {
	for image, want := range map[string]corev1.PullPolicy{
		"busybox":                        corev1.PullAlways,
		"busybox:latest":                 corev1.PullAlways,
		"busybox:1.35":                   corev1.PullIfNotPresent,
		"registry.example:5000/app":      corev1.PullAlways,
		"registry.example:5000/app:v1":   corev1.PullIfNotPresent,
		"app@sha256:0123456789abcdef":    corev1.PullIfNotPresent,
		"localhost/podunit/pause:1":      corev1.PullIfNotPresent,
		"registry.example:5000/a:latest": corev1.PullAlways,
	} {
		if got := defaultPullPolicy(image); got != want {
			t.Errorf("%s: %s, want %s", image, got, want)
		}
	}
}

// The hash is over the defaulted pod: formatting, comments, key order and
// restated defaults do not change it; a real change does.
func TestHashIgnoresFormAndDefaults(t *testing.T) {
	base := `apiVersion: v1
kind: Pod
metadata: {name: a}
spec:
  containers: [{name: c, image: "img:1"}]
`
	same := []string{
		"# a comment\n" + base,
		`{"kind": "Pod", "apiVersion": "v1", "spec": {"containers": [{"image": "img:1", "name": "c"}]}, "metadata": {"name": "a"}}`,
		`apiVersion: v1
kind: Pod
metadata: {name: a, namespace: default}
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 30
  containers:
  - name: c
    image: img:1
    imagePullPolicy: IfNotPresent
`,
	}
	want := hashOf(t, base)
	for i, s := range same {
		if got := hashOf(t, s); got != want {
			t.Errorf("variant %d: hash %s, want %s", i, got, want)
		}
	}
	if hashOf(t, strings.Replace(base, "img:1", "img:2", 1)) == want {
		t.Error("changing the image did not change the hash")
	}
}

func hashOf(t *testing.T, manifest string) string {
	t.Helper()
	pods, err := Decode("x.yaml", []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	return pods[0].Hash
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(name string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n  containers: [{name: c, image: \"i:1\"}]\n"
	}
	write("a.yaml", pod("web"))
	write("b.yml", pod("web")) // same name: a.yaml keeps it
	write("c.json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"api"},"spec":{"containers":[{"name":"c","image":"i:1"}]}}`)
	write("d.yaml", "kind: Pod\napiVersion: v1\nmetadata: {name: broken}\nspec: {containers: [{name: c}]}\n")
	write(".hidden.yaml", pod("hidden"))
	write("notes.txt", "not a manifest")
	write("a.yaml.swp", pod("swap"))
	write("a.yaml~", pod("backup"))
	write("a.yaml.dpkg-old", pod("old"))
	write("4913", "")
	write("#a.yaml#", pod("autosave"))
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "c.json"), filepath.Join(dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}

	set, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range set.Pods {
		keys = append(keys, p.Key()+"@"+filepath.Base(p.Source))
	}
	if got, want := strings.Join(keys, " "), "default/web@a.yaml default/api@c.json"; got != want {
		t.Errorf("pods: %s, want %s", got, want)
	}
	var errs []string
	for _, e := range set.Errors {
		errs = append(errs, strings.TrimPrefix(e.Error(), dir+"/"))
	}
	wantErrs := []string{
		"b.yml: metadata.name: pod default/web is already defined in " + filepath.Join(dir, "a.yaml") + ", which keeps it; this definition is not run",
		"d.yaml:4: spec.containers[0].image: required",
		"link.yaml: metadata.name: pod default/api is already defined in " + filepath.Join(dir, "c.json") + ", which keeps it; this definition is not run",
	}
	if strings.Join(errs, "\n") != strings.Join(wantErrs, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(wantErrs, "\n"))
	}
	skipped := map[string]string{}
	for _, s := range set.Skipped {
		skipped[filepath.Base(s.Path)] = s.Reason
	}
	for _, name := range []string{".hidden.yaml", "notes.txt", "a.yaml.swp", "sub.yaml", "a.yaml~", "a.yaml.dpkg-old", "4913", "#a.yaml#"} {
		if skipped[name] == "" {
			t.Errorf("%s not skipped (skipped: %v)", name, skipped)
		}
	}

	empty, err := ReadDir(filepath.Join(dir, "missing"))
	if err != nil || len(empty.Pods)+len(empty.Errors) != 0 {
		t.Errorf("missing directory: %v %+v", err, empty)
	}
}

func FuzzDecode(f *testing.F) {
	for _, dir := range []string{"testdata/valid", "testdata/invalid", "testdata/services", "../test/testdata/real", "../test/testdata/bad"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.*"))
		for _, path := range files {
			b, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pods, err := Decode("fuzz.yaml", data)
		// A file may hold no pod (only ConfigMaps, an empty List, a
		// Deployment of 0 replicas), but an error means no pod.
		if err != nil && len(pods) > 0 {
			t.Fatalf("pods=%d with err=%v: an invalid file yields no pod", len(pods), err)
		}
		for _, e := range flattenErrs(err) {
			var fe *FieldError
			if e != nil && !errors.As(e, &fe) {
				t.Fatalf("error %v is not a *FieldError", e)
			}
		}
		for _, p := range pods {
			if len(p.Hash) != 32 || p.Spec.Namespace == "" || p.Spec.Name == "" {
				t.Fatalf("decoded pod without identity: %+v", p)
			}
			// A valid pod always translates into a unit, whose names and
			// text nothing in the manifest can break out of.
			u, err := Unit(testUnitConfig, p)
			if err != nil {
				t.Fatalf("valid pod does not translate: %v", err)
			}
			checkUnitText(t, u)
		}
		// A valid Service always has a model for the node, whose ports
		// and addresses are what the manifest says.
		m, err := DecodeManifest("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, s := range m.Services {
			model, _ := s.Model(), s.Summary()
			if model.Key() == "/" || len(model.Ports) != len(s.Spec.Spec.Ports) || len(model.Ports) > MaxServicePorts ||
				model.ClusterIP.IsValid() && !model.ClusterIP.Is4() {
				t.Fatalf("Service model %+v of %+v", model, s.Spec.Spec)
			}
		}
	})
}

var (
	unitNameRE  = regexp.MustCompile(`^pod-[a-z0-9][a-z0-9._-]*\.service$`)
	sliceNameRE = regexp.MustCompile(`^podunit-[a-z0-9_.\\x-]+\.slice$`)
	unitLineRE  = regexp.MustCompile(`^(#.*|\[(Unit|Service|Slice)\]|[A-Za-z]+=.*|)$`)
)

// checkUnitText checks what a pod's manifest can reach in its unit: the
// unit and slice names are podunit's own, every line of the unit-file
// text is a comment, a section or one setting, and podshim's spec file is
// in the spec directory.
func checkUnitText(t *testing.T, u *units.Unit) {
	t.Helper()
	if !unitNameRE.MatchString(u.Name) || !sliceNameRE.MatchString(u.Slice) {
		t.Fatalf("unit %q, slice %q", u.Name, u.Slice)
	}
	text, err := u.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(text, "\n") {
		if !unitLineRE.MatchString(line) {
			t.Fatalf("unit text line %q:\n%s", line, text)
		}
	}
	var spec string
	for i, a := range u.ExecStart {
		if a == "--spec" && i+1 < len(u.ExecStart) {
			spec = u.ExecStart[i+1]
		}
	}
	if filepath.Dir(spec) != testUnitConfig.SpecDir || strings.ContainsAny(spec, "\n\x00") {
		t.Fatalf("spec file %q", spec)
	}
}

// YAML merge keys are expanded as the YAML library behind kubectl expands
// them: the mapping's own keys win.
func TestMergeKeys(t *testing.T) {
	pods, err := Decode("merge.yaml", []byte(`apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - &base {name: c, image: busybox, args: [a]}
  - <<: *base
    name: d
  - <<: [*base, {workingDir: /srv}]
    name: e
`))
	if err != nil {
		t.Fatal(err)
	}
	cs := pods[0].Spec.Spec.Containers
	if len(cs) != 3 || cs[1].Name != "d" || cs[1].Image != "busybox" || cs[1].Args[0] != "a" || cs[2].Name != "e" || cs[2].WorkingDir != "/srv" {
		t.Errorf("containers %+v", cs)
	}
}

// A manifest directory with hostile entries: each is reported with its
// file and nothing blocks or takes long (a named pipe is never opened, a
// socket never read, a symlink loop or a dangling symlink never followed
// twice, a file over the size limit never read beyond it, a 100,000-deep
// nesting refused by the YAML parser); the good manifest beside them is read.
func TestHostileDirectoryEntries(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: good}\nspec: {containers: [{name: c, image: i}]}\n")
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(dir, "socket.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Symlink("/nonexistent/pod.yaml", filepath.Join(dir, "dangling.yaml"))
	os.Symlink(filepath.Join(dir, "loop-b.yaml"), filepath.Join(dir, "loop-a.yaml"))
	os.Symlink(filepath.Join(dir, "loop-a.yaml"), filepath.Join(dir, "loop-b.yaml"))
	write("huge.yaml", "# "+strings.Repeat("x", MaxManifestSize)+"\n")
	write("deep.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: deep}\nspec:\n  x: "+strings.Repeat("[", 100000)+strings.Repeat("]", 100000)+"\n")
	start := time.Now()
	set, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("read in %s", time.Since(start))
	if len(set.Pods) != 1 || set.Pods[0].Name() != "good" {
		t.Errorf("pods %v", set.Pods)
	}
	got := map[string]string{}
	for _, e := range set.Errors {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Errorf("not a FieldError: %v", e)
			continue
		}
		got[filepath.Base(fe.File)] = fe.Msg
	}
	for name, want := range map[string]string{
		"fifo.yaml":     "not a regular file (a named pipe)",
		"socket.yaml":   "not a regular file (a socket)",
		"dangling.yaml": "a symlink to /nonexistent/pod.yaml, which does not exist",
		"loop-a.yaml":   "too many levels of symbolic links",
		"loop-b.yaml":   "too many levels of symbolic links",
		"huge.yaml":     "larger than 10485760 bytes",
		"deep.yaml":     "invalid YAML: ",
	} {
		if !strings.Contains(got[name], want) {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
}
