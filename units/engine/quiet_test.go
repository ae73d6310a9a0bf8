package engine

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// A directory is read at once only when nothing in it is on its way: no
// editor's or tool's temporary or backup file, no file open for writing.
func TestQuietAlready(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		open  string // held open for writing during the check
		quiet bool
	}{
		{name: "empty", quiet: true},
		{name: "manifests written and closed", files: []string{"a.yaml", "b.json", "README"}, quiet: true},
		{name: "a manifest being written", files: []string{"a.yaml", "b.yaml"}, open: "b.yaml", quiet: false},
		{name: "a tool's temporary file being written (sed -i)", files: []string{"a.yaml", "sedAb12Cd"}, open: "sedAb12Cd", quiet: false},
		{name: "vim's backup: the manifest renamed away", files: []string{"a.yaml~"}, quiet: false},
		{name: "vim's test file", files: []string{"a.yaml", "4913"}, quiet: false},
		{name: "a swap file", files: []string{"a.yaml", ".a.yaml.swp"}, quiet: false},
		{name: "emacs' auto-save", files: []string{"a.yaml", "#a.yaml#"}, quiet: false},
		{name: "a package manager's leftover", files: []string{"a.yaml", "a.yaml.dpkg-new"}, quiet: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(pod("a", "busybox")), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.open != "" {
				f, err := os.OpenFile(filepath.Join(dir, tc.open), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
			}
			if got := quietAlready(dir, filepath.Join(dir, "missing")); got != tc.quiet {
				t.Errorf("quietAlready = %v, want %v", got, tc.quiet)
			}
		})
	}
}

// A new manifest written and closed is read at once, and the sync says
// where the time to its unit went, with the pass's start on systemd's
// clock (make bench's start trace reads that line).
func TestSyncReadsAQuietDirectoryAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name         string
		alwaysSettle bool
		atOnce       bool
	}{
		{name: "quiet", atOnce: true},
		{name: "always settle (make bench's before)", alwaysSettle: true, atOnce: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, m, _, out := newSyncer(t)
			s.Quiet, s.AlwaysSettle, s.Main = 50*time.Millisecond, tc.alwaysSettle, time.Now()
			dir := s.Sources[0].Dir
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(pod("web", "busybox")), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := runSync(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			if len(m.Units) != 1 || s.readAtOnce != tc.atOnce {
				t.Errorf("%d units, read at once %v; want 1, %v", len(m.Units), s.readAtOnce, tc.atOnce)
			}
			line := regexp.MustCompile(`started 1 unit\(s\) [\d.]+ ms into the pass: settled [\d.]+ ms, read [\d.]+ ms, planned [\d.]+ ms, units changed [\d.]+ ms \(the pass began at CLOCK_MONOTONIC [1-9]\d* µs, [\d.]+ ms after the process's main\)`)
			if !line.MatchString(out.String()) {
				t.Errorf("no timings line:\n%s", out.String())
			}
		})
	}
}
