package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of test/testdata/real")

// The corpus of real manifests (test/testdata/real, README.md there says
// where each comes from): `podunit validate` on each file, with the corpus
// as the configured manifest directory (so a pod finds the Secret another
// file defines, as sync would find it), gives exactly its golden result, on
// a node named node1 with no extra labels. Every manifest the kubelet would
// run is accepted, with its notices; the invalid ones stay errors.
func TestValidateRealManifests(t *testing.T) {
	t.Chdir("../../test/testdata") // files are named real/<name>.yaml in the results
	files, _ := filepath.Glob("real/*.yaml")
	if len(files) < 60 {
		t.Fatalf("%d manifests in real/, want at least 60", len(files))
	}
	cfg := defaultConfig()
	cfg.ManifestDir = "real"
	cfg.NodeName = "node1"
	cfg.NodeLabels = map[string]string{"kubernetes.io/arch": "amd64", "beta.kubernetes.io/arch": "amd64"}
	accepted, rejected := 0, 0
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			verr := validateFiles(&out, &out, cfg, []string{path})
			got := out.String()
			var ee *exitError
			switch err := verr; {
			case err == nil:
				got += "exit 0\n"
				accepted++
			case errors.As(err, &ee):
				got += fmt.Sprintf("exit %d: %v\n", ee.code, err)
				rejected++
			default:
				t.Fatal(err)
			}
			golden := filepath.Join("real", "golden", name+".txt")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./cmd/podunit -run TestValidateRealManifests -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("podunit validate %s:\n%s\nwant (%s):\n%s", path, got, golden, want)
			}
			invalid := strings.HasPrefix(name, "invalid-")
			if invalid != (verr != nil) {
				t.Errorf("invalid-* files must fail and others pass; got %v", verr)
			}
		})
	}
	t.Logf("%d accepted, %d rejected", accepted, rejected)
}

// The corpus of hostile and broken manifests (test/testdata/bad, README.md
// there): `podunit validate` rejects each with exit status 3 and errors
// that name the file (and, where there is one, the line and the field), as
// its golden file says; none panics, and each is reported with how long it
// took (none may take long: `make test` would show it).
func TestValidateBadManifests(t *testing.T) {
	t.Chdir("../../test/testdata")
	files, _ := filepath.Glob("bad/*.yaml")
	if len(files) < 40 {
		t.Fatalf("%d manifests in bad/, want at least 40", len(files))
	}
	cfg := defaultConfig()
	cfg.ManifestDir = t.TempDir() // nothing else to resolve against
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			start := time.Now()
			err := validateFiles(&stdout, &stderr, cfg, []string{path})
			took := time.Since(start)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitInvalid {
				t.Fatalf("validate: %v, want exit status %d\n%s%s", err, exitInvalid, stdout.String(), stderr.String())
			}
			for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
				if !strings.HasPrefix(line, path+":") {
					t.Errorf("an error that does not name the file: %q", line)
				}
			}
			got := stdout.String() + stderr.String()
			golden := filepath.Join("bad", "golden", name+".txt")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./cmd/podunit -run TestValidateBadManifests -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("podunit validate %s:\n%s\nwant (%s):\n%s", path, got, golden, want)
			}
			if took > 100*time.Millisecond {
				t.Logf("%s took %s", path, took)
			}
		})
	}
}
