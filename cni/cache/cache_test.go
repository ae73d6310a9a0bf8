package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const id = "e288fda704da1338495d9097deb5947728e2f0459a8aa971634b7560c8403d21"

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// What a power cut leaves, an empty or a truncated result, goes; a good
// result and another sandbox's files stay.
func TestRemoveCorrupt(t *testing.T) {
	dir := t.TempDir()
	empty := write(t, dir, "podunit-"+id+"-eth0", "")
	cut := write(t, dir, "other-"+id+"-eth1", `{"kind":"cniCacheV1","containerId":"`)
	good := write(t, dir, "third-"+id+"-eth2", `{"kind":"cniCacheV1"}`)
	stranger := write(t, dir, "podunit-0123456789abcdef-eth0", "")
	removed, err := RemoveCorrupt(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("removed %v, want the empty and the cut-short file", removed)
	}
	for p, want := range map[string]bool{empty: false, cut: false, good: true, stranger: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	if _, err := RemoveCorrupt(dir, "../x"); err == nil {
		t.Error("a sandbox ID with a path in it was accepted")
	}
}

// runtime fails StopPodSandbox while the sandbox's cache is corrupt, as
// libcni does.
type runtime struct {
	dir   string
	stops int
}

func (r *runtime) StopPodSandbox(_ context.Context, sandbox string) error {
	r.stops++
	files, _ := filepath.Glob(filepath.Join(r.dir, "*-"+sandbox+"-*"))
	for _, f := range files {
		if b, _ := os.ReadFile(f); len(b) == 0 {
			return errors.New(`failed to destroy network for sandbox: failed to get network "podunit" cached result: decoding version from network config: unexpected end of JSON input`)
		}
	}
	return nil
}

func TestStopSandbox(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "podunit-"+id+"-eth0", "")
	rt := &runtime{dir: dir}
	repaired, err := StopSandbox(context.Background(), rt, dir, id)
	if err != nil || len(repaired) != 1 || rt.stops != 2 {
		t.Errorf("repaired %v, err %v, %d stops", repaired, err, rt.stops)
	}
	// A failure that is not the cache's is returned as it is.
	rt.stops = 0
	failing := stopFunc(func() error { return errors.New("plugin type=\"portmap\" failed (delete)") })
	if _, err := StopSandbox(context.Background(), failing, dir, id); err == nil || !strings.Contains(err.Error(), "portmap") {
		t.Errorf("err %v", err)
	}
}

type stopFunc func() error

func (f stopFunc) StopPodSandbox(context.Context, string) error { return f() }
