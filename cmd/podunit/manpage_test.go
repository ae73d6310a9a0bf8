package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podunit/podunit/generator"
)

// podunit-manifest(5) lists every field of every kind with its class, and
// every skipped kind, from the decoder's own table; man renders it without
// a warning.
func TestManifestManPage(t *testing.T) {
	var b bytes.Buffer
	if err := writeManifestPage(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	plain := strings.NewReplacer(`\:`, "", `\-`, "-", `\e`, `\`, `\fB`, "", `\fR`, "", `\&`, "").Replace(page)
	for _, k := range generator.Kinds {
		if !strings.Contains(plain, ".SS "+k.Name+" ("+k.Version()+")") {
			t.Errorf("no section for kind %s", k.Name)
		}
		for _, f := range k.Fields {
			if k.SameAsPod(f) {
				continue
			}
			if !strings.Contains(plain, `"`+f.Path+`" " (`+f.Class.String()+`)"`) {
				t.Errorf("%s: field %s (%s) is not in the page", k.Name, f.Path, f.Class)
			}
		}
	}
	for _, a := range generator.PodAnnotations {
		if !strings.Contains(plain, `"`+a.Pattern()+`" " (`+a.Class.String()+`)"`) {
			t.Errorf("annotation %s (%s) is not in the page", a.Pattern(), a.Class)
		}
	}
	for _, k := range generator.SkippedKinds {
		if !strings.Contains(plain, `"`+k.Name+`"`) {
			t.Errorf("skipped kind %s is not in the page", k.Name)
		}
	}
	for i, r := range page {
		if r > 0x7e {
			t.Errorf("the page is not ASCII at byte %d: %q (man in the C locale cannot render it)", i, r)
			break
		}
	}
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, "'") || (strings.HasPrefix(line, ".") && len(line) > 1 && !strings.ContainsAny(line[1:2], "ABDFINPRSTacfn")) {
			t.Errorf("a text line starts with a control character: %q", line)
		}
	}
	if _, err := exec.LookPath("man"); err != nil {
		t.Log("man is not installed: the page's rendering is not checked")
		return
	}
	path := filepath.Join(t.TempDir(), "podunit-manifest.5")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("man", "--warnings", "-l", path)
	// The C locale, as CI and a minimal system have it.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MANWIDTH=80", "LANG=C", "LC_ALL=C"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 || !bytes.Contains(out, []byte("CronJob (batch/v1)")) {
		t.Errorf("man: %v\n%s", err, stderr.String())
	}
}
