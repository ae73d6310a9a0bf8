package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podunit/podunit/units/engine/enginetest"
)

// appDir is a directory as people keep an app's manifests: two manifests
// that refer to each other (a pod and the ConfigMap it uses), a README, an
// editor's backup and a subdirectory, which sync would skip.
func appDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	enginetest.Write(t, dir, "web.yaml", `apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: web
    image: nginx:1
    envFrom: [{configMapRef: {name: web-env}}]
`)
	enginetest.Write(t, dir, "env.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-env}\ndata: {MODE: prod}\n")
	enginetest.Write(t, dir, "README.md", "# the web app\n")
	enginetest.Write(t, dir, "web.yaml~", "not: a manifest\n")
	if err := os.Mkdir(filepath.Join(dir, "old.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// `podunit validate DIR` reads the directory as sync reads a manifest
// directory: its manifests, resolved against each other, and the entries
// sync skips named with why, as kubectl reads a directory.
func TestValidateDirectory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		out   []string // lines, in order, with DIR for the directory
		err   string
	}{
		{name: "an app's directory",
			out: []string{
				"DIR/README.md: skipped: not a manifest: only .yaml, .yml, .json files are read",
				"DIR/old.yaml: skipped: a directory: manifest directories are not read recursively, as the kubelet's are not",
				"DIR/web.yaml~: skipped: editor or package-manager backup file (~)",
				"DIR/web.yaml: pod default/web is valid (config ",
				"DIR/env.yml: defines ConfigMap default/web-env",
			}},
		{name: "an invalid file among them",
			setup: func(t *testing.T, dir string) {
				enginetest.Write(t, dir, "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers: [{name: c, image: i, ttty: true}]\n")
			},
			out: []string{"DIR/README.md: skipped", "DIR/old.yaml: skipped", "DIR/web.yaml~: skipped", "DIR/web.yaml: pod default/web is valid", "DIR/env.yml: defines ConfigMap default/web-env"},
			err: "1 of 3 file(s) invalid"},
		{name: "no manifest in it",
			setup: func(t *testing.T, dir string) {
				for _, f := range []string{"web.yaml", "env.yml"} {
					os.Remove(filepath.Join(dir, f))
				}
			},
			err: "DIR: no manifest (.yaml, .yml or .json file) in the directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := appDir(t)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			var out, errOut bytes.Buffer
			err := validateFiles(&out, &errOut, defaultConfig(), []string{dir})
			got := strings.Split(strings.TrimSpace(strings.ReplaceAll(out.String(), dir, "DIR")), "\n")
			if len(tc.out) == 0 {
				got = nil
			}
			if len(got) != len(tc.out) {
				t.Fatalf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.out, "\n"))
			}
			for i := range tc.out {
				if !strings.HasPrefix(got[i], tc.out[i]) {
					t.Errorf("line %d: %q, want %q…", i+1, got[i], tc.out[i])
				}
			}
			var ee *exitError
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("error: %v\n%s", err, errOut.String())
			case tc.err != "" && (!errors.As(err, &ee) || ee.code != exitInvalid || !strings.Contains(strings.ReplaceAll(err.Error(), dir, "DIR"), tc.err)):
				t.Errorf("error %v, want exit %d with %q", err, exitInvalid, tc.err)
			}
			if tc.name == "an invalid file among them" && !strings.Contains(errOut.String(), filepath.Join(dir, "bad.yaml")+":5: spec.containers[0].ttty: unknown field") {
				t.Errorf("errors: %s", errOut.String())
			}
		})
	}
}

// `podunit apply -f DIR` writes each manifest of the directory into the
// manifest directory by its name, only when every one is valid and none
// defines a pod another file defines.
func TestApplyDirectory(t *testing.T) {
	manifests := t.TempDir()
	none := filepath.Join(t.TempDir(), "none.yaml")
	enginetest.Write(t, filepath.Dir(none), "none.yaml", "")
	apply := func(dir string) (string, error) {
		var out bytes.Buffer
		err := run([]string{"apply", "--manifest-dir", manifests, "--config", none, "-f", dir}, &out, io.Discard)
		return strings.ReplaceAll(out.String(), manifests, "M"), err
	}
	names := func() string {
		entries, _ := os.ReadDir(manifests)
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return strings.Join(out, " ")
	}

	app := appDir(t)
	out, err := apply(app)
	if err != nil || out != "M/env.yml created\npod/web created (M/web.yaml)\n" {
		t.Fatalf("apply -f DIR: %q, %v", out, err)
	}
	if got := names(); got != "env.yml web.yaml" {
		t.Errorf("manifest directory holds %q", got)
	}
	if out, err := apply(app); err != nil || out != "M/env.yml unchanged\npod/web unchanged (M/web.yaml)\n" {
		t.Errorf("again: %q, %v", out, err)
	}

	// One invalid file: nothing is written.
	enginetest.Write(t, app, "web.yaml", enginetest.Pod("web", "img:2"))
	enginetest.Write(t, app, "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers: [{name: c, image: i, ttty: true}]\n")
	var ee *exitError
	if _, err := apply(app); !errors.As(err, &ee) || ee.code != exitInvalid || !strings.Contains(err.Error(), "bad.yaml:5: spec.containers[0].ttty: unknown field") {
		t.Errorf("an invalid file: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(manifests, "web.yaml")); strings.Contains(string(b), "img:2") || names() != "env.yml web.yaml" {
		t.Errorf("written although a file was invalid: %s; %s", names(), b)
	}

	// Two files of the directory defining one pod: nothing is written.
	os.Remove(filepath.Join(app, "bad.yaml"))
	enginetest.Write(t, app, "web2.yaml", enginetest.Pod("web", "img:3"))
	if _, err := apply(app); err == nil || !strings.Contains(err.Error(), "pod default/web is defined twice") {
		t.Errorf("a pod twice: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(manifests, "web.yaml")); strings.Contains(string(b), "img:2") {
		t.Errorf("written although a pod was defined twice: %s", b)
	}

	// The files without pods are written first, whatever their names: a
	// sync between two writes finds the ConfigMap before the pod using it.
	ordered := t.TempDir()
	enginetest.Write(t, ordered, "a-api.yaml", enginetest.Pod("api", "img:1"))
	enginetest.Write(t, ordered, "z-config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api-config}\ndata: {k: v}\n")
	if out, err := apply(ordered); err != nil || out != "M/z-config.yaml created\npod/api created (M/a-api.yaml)\n" {
		t.Errorf("apply -f DIR with the ConfigMap's file last by name: %q, %v", out, err)
	}
}
