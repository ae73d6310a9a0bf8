package bus

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type fakePathManager struct{ calls []string }

func (f *fakePathManager) ReloadContext(context.Context) error {
	f.calls = append(f.calls, "reload")
	return nil
}

func (f *fakePathManager) RestartUnitContext(_ context.Context, name, _ string, _ chan<- string) (int, error) {
	f.calls = append(f.calls, "restart "+name)
	return 1, nil
}

// A manifest directory other than the packaged one gets podunit.path's
// attention through a drop-in, written (and systemd reloaded) only when it
// changes.
// packaged are the directories podunit.path watches as packaged.
var packaged = []string{"/etc/podunit/manifests", "/var/cache/podunit/url"}

func TestWatchManifestDir(t *testing.T) {
	m := &fakePathManager{}
	dropIn := filepath.Join(t.TempDir(), "podunit.path.d", "50-manifest-dir.conf")
	ctx := context.Background()
	step := func(dir string, wantChanged bool) {
		t.Helper()
		m.calls = nil
		w := ManifestWatch(packaged)
		w.DropIn, w.Paths = dropIn, []string{dir}
		units, err := Watch(ctx, m, w)
		changed := len(units) > 0
		if err != nil || changed != wantChanged {
			t.Fatalf("%s: changed %v err %v, want changed %v", dir, changed, err, wantChanged)
		}
		if changed && strings.Join(m.calls, ",") != "reload,restart podunit.path" {
			t.Errorf("%s: calls %v", dir, m.calls)
		}
		if !changed && len(m.calls) > 0 {
			t.Errorf("%s: systemd touched without a change: %v", dir, m.calls)
		}
	}
	step("/etc/podunit/manifests", false)
	step("/etc/kubernetes/manifests", true)
	if b, _ := os.ReadFile(dropIn); !strings.Contains(string(b), "[Path]\nPathChanged=/etc/kubernetes/manifests\n") {
		t.Errorf("drop-in:\n%s", b)
	}
	step("/etc/kubernetes/manifests", false)
	step("/etc/podunit/manifests", true)
	if _, err := os.Stat(dropIn); !os.IsNotExist(err) {
		t.Errorf("drop-in left for the default directory: %v", err)
	}
}

// A symlinked manifest's target directory is watched too.
func TestWatchPathsFollowSymlinks(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(elsewhere, "web.yaml"), []byte("x"), 0o644)
	os.Symlink(filepath.Join(elsewhere, "web.yaml"), filepath.Join(dir, "web.yaml"))
	os.WriteFile(filepath.Join(dir, "plain.yaml"), []byte("x"), 0o644)
	got := WatchPaths([]string{dir})
	real, _ := filepath.EvalSymlinks(elsewhere)
	if len(got) != 2 || got[0] != dir || got[1] != real {
		t.Errorf("watch %v, want %s and %s", got, dir, real)
	}
}

// A path with a '%' is written escaped: in a unit file '%' starts a
// specifier.
func TestWatchDropInEscapesSpecifiers(t *testing.T) {
	dropIn := filepath.Join(t.TempDir(), "podunit.path.d", "50-manifest-dir.conf")
	m := &fakePathManager{}
	w := ManifestWatch(packaged)
	w.DropIn, w.Paths = dropIn, []string{"/srv/100%pods"}
	if _, err := Watch(context.Background(), m, w); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dropIn); !strings.Contains(string(b), "PathChanged=/srv/100%%pods\n") {
		t.Errorf("drop-in:\n%s", b)
	}
}

// An imagesDir other than the packaged one is watched by
// podunit-images.path through its own drop-in; both path units' drop-ins
// changing cost one reload, and only the changed unit is restarted.
func TestWatchImagesDir(t *testing.T) {
	tmp := t.TempDir()
	m := &fakePathManager{}
	manifests := ManifestWatch(packaged)
	manifests.DropIn, manifests.Paths = filepath.Join(tmp, "podunit.path.d", "50-manifest-dir.conf"), []string{"/etc/podunit/manifests"}
	images := ImagesWatch([]string{"/var/lib/podunit/images"})
	images.DropIn, images.Paths = filepath.Join(tmp, "podunit-images.path.d", "50-images-dir.conf"), []string{"/srv/images"}
	units, err := Watch(context.Background(), m, manifests, images)
	if err != nil || strings.Join(units, ",") != "podunit-images.path" || strings.Join(m.calls, ",") != "reload,restart podunit-images.path" {
		t.Fatalf("changed %v, calls %v, err %v", units, m.calls, err)
	}
	if b, _ := os.ReadFile(images.DropIn); !strings.Contains(string(b), "[Path]\nPathChanged=/srv/images\n") || !strings.HasPrefix(string(b), "# Written by podunit sync: the image archive directory") {
		t.Errorf("drop-in:\n%s", b)
	}
	m.calls = nil
	images.Paths = []string{"/var/lib/podunit/images"}
	if units, err := Watch(context.Background(), m, manifests, images); err != nil || len(units) != 1 {
		t.Fatalf("back to the default: changed %v, err %v", units, err)
	}
	if _, err := os.Stat(images.DropIn); !os.IsNotExist(err) {
		t.Errorf("drop-in left for the default directory: %v", err)
	}
}
