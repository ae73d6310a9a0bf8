package generator

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
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
	for _, dir := range []string{"testdata/valid", "testdata/invalid"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
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
			// A valid pod always translates into a unit.
			if _, err := Unit(testUnitConfig, p); err != nil {
				t.Fatalf("valid pod does not translate: %v", err)
			}
		}
	})
}
