package quadlet

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/podunit/podunit/generator"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestConvertGolden imports each directory of testdata as
// `podunit import quadlet DIR` would and compares the whole result (every
// manifest, every note, every error) with the directory's golden file.
func TestConvertGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			units, files, errs := Read([]string{abs})
			got := describe(abs, Convert(units, files, existing(t, dir)), errs)
			golden := dir + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./generator/quadlet -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("import of %s differs from %s (go test ./generator/quadlet -update rewrites it):\ngot:\n%s", dir, golden, got)
			}
		})
	}
}

// existing are the manifests of a testdata directory's "manifests"
// subdirectory: the manifest directory the import writes beside.
func existing(t *testing.T, dir string) []generator.File {
	paths, err := filepath.Glob(filepath.Join(dir, "manifests", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []generator.File
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		abs, _ := filepath.Abs(p)
		out = append(out, generator.File{Path: abs, Data: data})
	}
	return out
}

func describe(dir string, imports []Import, errs []error) string {
	var b strings.Builder
	for _, err := range errs {
		fmt.Fprintf(&b, "read error: %v\n", err)
	}
	for _, im := range imports {
		fmt.Fprintf(&b, "=== %s -> %s (Quadlet's %s)\n", im.Unit, im.File, im.Service)
		if im.Err != nil {
			fmt.Fprintf(&b, "error: %v\n", im.Err)
		}
		if len(im.Pods) > 0 {
			fmt.Fprintf(&b, "pods: %s\n", strings.Join(im.Pods, " "))
		}
		if len(im.Keepers) > 0 {
			fmt.Fprintf(&b, "keepers: %s\n", strings.Join(im.Keepers, " "))
		}
		for _, n := range im.Notes {
			fmt.Fprintf(&b, "note (%s): %s\n", filepath.Base(n.From), n)
		}
		if im.Manifest != nil {
			fmt.Fprintf(&b, "--- manifest\n%s", im.Manifest)
		}
	}
	return strings.ReplaceAll(b.String(), dir, "TESTDATA")
}

func TestParseUnit(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []Option
	}{
		{"comments and repeated keys", "# c\n[Kube]\n; c\nYaml=a.yaml\nYaml=b.yaml\n",
			[]Option{{"Kube", "Yaml", "a.yaml", "u"}, {"Kube", "Yaml", "b.yaml", "u"}}},
		{"continuation lines join with a space", "[Kube]\nPodmanArgs=--a \\\n  --b\\\n--c\n",
			[]Option{{"Kube", "PodmanArgs", "--a --b --c", "u"}}},
		{"a comment inside a continued value is skipped", "[Kube]\nPodmanArgs=--a \\\n# not this\\\n  --b\n",
			[]Option{{"Kube", "PodmanArgs", "--a --b", "u"}}},
		{"spaces around the key and value", "[Unit]\n After = db.kube  \n",
			[]Option{{"Unit", "After", "db.kube", "u"}}},
		{"an empty assignment is kept (values() resets on it)", "[Kube]\nYaml=a\nYaml=\n",
			[]Option{{"Kube", "Yaml", "a", "u"}, {"Kube", "Yaml", "", "u"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseUnit("u", []byte(tc.text), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(u.Options, tc.want) {
				t.Errorf("got %q, want %q", u.Options, tc.want)
			}
		})
	}
	if _, err := ParseUnit("u", []byte("[Kube\nYaml=a\n"), nil); err == nil {
		t.Error("an unterminated section header parsed")
	}
}

func TestValuesResetOnEmpty(t *testing.T) {
	u, err := ParseUnit("/d/u.kube", []byte("[Kube]\nYaml=a.yaml\nYaml=\nYaml=b.yaml c.yaml\n"), []File{{"/d/u.kube.d/x.conf", []byte("[Kube]\nYaml=/abs/d.yaml\n")}})
	if err != nil {
		t.Fatal(err)
	}
	yamls, _, err := u.Sources()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/d/b.yaml", "/d/c.yaml", "/abs/d.yaml"}; !reflect.DeepEqual(yamls, want) {
		t.Errorf("got %q, want %q", yamls, want)
	}
}

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "a b\tc", want: []string{"a", "b", "c"}},
		{in: `"a b" 'c d' e"f g"`, want: []string{"a b", "c d", "ef g"}},
		{in: `a\ b \x41\s\t`, want: []string{"a b", "A \t"}},
		{in: `--annotation "k=v w"`, want: []string{"--annotation", "k=v w"}},
		{in: `"open`, bad: true},
		{in: `end\`, bad: true},
		{in: `\x4`, bad: true},
	} {
		got, err := splitWords(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("splitWords(%q) = %q, %v; want %q (error: %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestExpandSpecifiers(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		unknown  []string
	}{
		{"%h/app/%N.yaml", "/root/app/web.yaml", nil},
		{"%E/containers/%p-%n 100%%", "/etc/containers/web-web.service 100%", nil},
		{"%S/%i/%H.yaml", "/var/lib/%i/%H.yaml", []string{"%i", "%H"}},
	} {
		got, unknown := expandSpecifiers(tc.in, "web.service")
		if got != tc.want || !reflect.DeepEqual(unknown, tc.unknown) {
			t.Errorf("expandSpecifiers(%q) = %q, %q; want %q, %q", tc.in, got, unknown, tc.want, tc.unknown)
		}
	}
}

func TestDropIns(t *testing.T) {
	if got, want := DropInDirs("foo-bar-baz.kube"), []string{"kube.d", "foo-.kube.d", "foo-bar-.kube.d", "foo-bar-baz.kube.d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("DropInDirs = %q, want %q", got, want)
	}
	got := DropIns("foo-bar.kube", []string{"/etc/q", "/etc/q/sub"}, map[string][]string{
		"/etc/q/kube.d":             {"10-a.conf", "30-c.conf", "README"},
		"/etc/q/foo-.kube.d":        {"20-b.conf"},
		"/etc/q/sub/foo-.kube.d":    {"20-b.conf", "30-c.conf"},
		"/etc/q/sub/foo-bar.kube.d": {"10-a.conf"},
		"/etc/q/unrelated.kube.d":   {"00-z.conf"},
	})
	want := []string{"/etc/q/sub/foo-bar.kube.d/10-a.conf", "/etc/q/foo-.kube.d/20-b.conf", "/etc/q/sub/foo-.kube.d/30-c.conf"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DropIns = %q, want %q", got, want)
	}
}

func TestParsePublishPort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []port
		bad  string
	}{
		{in: "8080:80", want: []port{{"", 8080, 80, "TCP"}}},
		{in: "0.0.0.0:8080:80/tcp", want: []port{{"", 8080, 80, "TCP"}}},
		{in: "127.0.0.1:53:53/udp", want: []port{{"127.0.0.1", 53, 53, "UDP"}}},
		{in: "[::1]:8443:443", want: []port{{"::1", 8443, 443, "TCP"}}},
		{in: "9000-9001:90-91", want: []port{{"", 9000, 90, "TCP"}, {"", 9001, 91, "TCP"}}},
		{in: "80", bad: "no host port"},
		{in: "127.0.0.1::80", bad: "no host port"},
		{in: "8080:80/icmp", bad: "protocol"},
		{in: "9000-9002:90-91", bad: "differ in size"},
		{in: "70000:80", bad: "1-65535"},
		{in: "1-65535:1-65535", bad: "more than 1000 ports"},
		{in: "a:b:c:d", bad: "format"},
	} {
		got, err := parsePublishPort(tc.in)
		switch {
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("parsePublishPort(%q): error %v, want one saying %q", tc.in, err, tc.bad)
		case tc.bad == "" && (err != nil || !reflect.DeepEqual(got, tc.want)):
			t.Errorf("parsePublishPort(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestKubeKeysHandled: every [Kube] key Quadlet knows gets an answer.
func TestKubeKeysHandled(t *testing.T) {
	docs, err := parseDocuments("p.yaml", []byte("kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, ports: [{containerPort: 80}]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{"AutoUpdate": "registry", "PublishPort": "80:80", "Network": "host", "UserNS": "auto", "LogDriver": "journald", "PodmanArgs": "--annotation=a=b"}
	u := &Unit{Path: "/d/u.kube"}
	for _, k := range kubeKeys {
		v := values[k]
		if v == "" {
			v = "x"
		}
		text, _, err := convertKube(u, Option{Section: sectionKube, Key: k, Value: v}, docs, published{})
		if err != nil || text == "" {
			t.Errorf("[Kube] %s=%s: %q, %v", k, v, text, err)
		}
	}
}

// TestGuideListsEveryKey: docs/podman.md's table has a row for every [Kube]
// key Quadlet knows.
func TestGuideListsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../docs/podman.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| `[Kube] ") {
			rows = append(rows, strings.SplitN(line, " | ", 2)[0])
		}
	}
	for _, k := range kubeKeys {
		found := false
		for _, r := range rows {
			if strings.Contains(r, "`[Kube] "+k+"=`") || strings.Contains(r, "`"+k+"=`") {
				found = true
			}
		}
		if !found {
			t.Errorf("docs/podman.md has no row for [Kube] %s=", k)
		}
	}
}

// FuzzConvert: any unit text, with a pod to convert, gives manifests or
// errors, never a panic; a manifest it gives is one sync accepts (Convert
// checks it) and starts with the import's header.
func FuzzConvert(f *testing.F) {
	for _, seed := range []string{
		"[Kube]\nYaml=p.yaml\nPublishPort=8080:80\n",
		"[Unit]\nAfter=x.kube\n[Kube]\nYaml=p.yaml\nAutoUpdate=c/local\nPodmanArgs=--annotation \"a=b c\" --x\n",
		"[Kube]\nYaml=p.yaml\nYaml=\nYaml=%h/p.yaml\nNetwork=host\nUserNS=auto\n[Install]\nWantedBy=default.target\n",
		"[Kube]\nYaml=p.yaml \\\n  q.yaml\n",
	} {
		f.Add(seed)
	}
	pod := []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, ports: [{containerPort: 80}]}]\n")
	f.Fuzz(func(t *testing.T, text string) {
		u, err := ParseUnit("/d/u.kube", []byte(text), nil)
		if err != nil {
			return
		}
		files := map[string][]byte{"/d/p.yaml": pod, "/d/q.yaml": pod, "/root/p.yaml": pod, "/d/v.yaml": []byte(strings.Replace(string(pod), "name: p}", "name: v}", 1))}
		// Beside it, units that order on it and that it may order on,
		// one of them with the same name.
		v, err := ParseUnit("/d/v.kube", []byte("[Unit]\nAfter=u.kube\nBefore=u.service\n[Kube]\nYaml=v.yaml\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		dup := &Unit{Path: "/e/u.kube", Options: u.Options}
		for _, im := range Convert([]*Unit{u, v, dup}, files, nil) {
			if im.Err == nil && !strings.HasPrefix(string(im.Manifest), Header(im.Unit)) {
				t.Errorf("manifest without its header:\n%s", im.Manifest)
			}
		}
	})
}

// A unit file that is a symbolic link is read where it was found, as
// Quadlet reads it: its relative Yaml= is the file beside the link, not
// the one beside the link's target.
func TestSymlinkedUnitReadsBesideTheLink(t *testing.T) {
	units, target := t.TempDir(), t.TempDir()
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(name string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec: {containers: [{name: c, image: busybox}]}\n"
	}
	write(filepath.Join(target, "web.kube"), "[Kube]\nYaml=web.yaml\n")
	write(filepath.Join(target, "web.yaml"), pod("beside-the-target"))
	write(filepath.Join(units, "web.yaml"), pod("beside-the-link"))
	link := filepath.Join(units, "web.kube")
	if err := os.Symlink(filepath.Join(target, "web.kube"), link); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{link, units} {
		got, files, errs := Read([]string{arg})
		if len(errs) > 0 || len(got) != 1 {
			t.Fatalf("Read(%s): %v %v", arg, got, errs)
		}
		yamls, _, err := got[0].Sources()
		if err != nil || len(yamls) != 1 || yamls[0] != filepath.Join(units, "web.yaml") ||
			!strings.Contains(string(files[yamls[0]]), "beside-the-link") {
			t.Errorf("Read(%s): the unit's Yaml= is %v (%v), want %s", arg, yamls, err, filepath.Join(units, "web.yaml"))
		}
	}
}

func TestRootlessUnitIsNoted(t *testing.T) {
	for path, want := range map[string]bool{
		"/home/ann/.config/containers/systemd/web.kube": true,
		"/etc/containers/systemd/users/1000/web.kube":   true,
		"/etc/containers/systemd/web.kube":              false,
		"/etc/containers/systemd/apps/users/web.kube":   false,
	} {
		_, got := rootlessUnit(&Unit{Path: path})
		if got != want {
			t.Errorf("%s: noted as a rootless user's unit: %v, want %v", path, got, want)
		}
	}
}
