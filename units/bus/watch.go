package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/podunit/podunit/podshim/atomicfile"
)

// A PathWatch is one of podunit's path units and what it must watch beyond
// the paths its packaged unit file watches, through a runtime drop-in, so
// that changes there are picked up at once.
type PathWatch struct {
	Unit     string   // the path unit
	DropIn   string   // its runtime drop-in
	What     string   // what the extra paths are, for the drop-in's comment
	Packaged []string // what its unit file watches
	Paths    []string // what it must watch
}

// WatchDropIn is the runtime drop-in of podunit.path with the directories
// it watches beyond the packaged ones (a manifestDir elsewhere, a kubelet's
// staticPodPath), so that their changes are picked up at once rather than
// by the 20 s relist.
const WatchDropIn = "/run/systemd/system/podunit.path.d/50-manifest-dir.conf"

// ManifestWatch is podunit.path's PathWatch but for its Paths: the
// manifest directories and the directories their symlinks point into.
func ManifestWatch(packaged []string) PathWatch {
	return PathWatch{Unit: "podunit.path", DropIn: WatchDropIn, Packaged: packaged,
		What: "manifest directories beyond the packaged one\n# (manifestDir, manifestDirs, a kubelet's staticPodPath) and the directories\n# their symlinked manifests point into"}
}

// ImagesWatch is podunit-images.path's PathWatch but for its Paths: an
// imagesDir of config.yaml other than the packaged directory.
func ImagesWatch(packaged []string) PathWatch {
	return PathWatch{Unit: "podunit-images.path", DropIn: "/run/systemd/system/podunit-images.path.d/50-images-dir.conf",
		Packaged: packaged, What: "the image archive directory of config.yaml\n# (imagesDir), beyond the packaged one"}
}

// PathManager is what WatchManifestDirs needs of systemd.
type PathManager interface {
	ReloadContext(ctx context.Context) error
	RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
}

// WatchPaths are what podunit.path must watch for the sync reading dirs:
// the directories themselves (or files: a kubelet's staticPodPath may be
// one) and the directories that their symlinked manifests point into, so
// that a change to a symlink's target is noticed at once.
func WatchPaths(dirs []string) []string {
	var out []string
	add := func(p string) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, dir := range dirs {
		add(dir)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.Type()&fs.ModeSymlink == 0 {
				continue
			}
			if target, err := filepath.EvalSymlinks(filepath.Join(dir, e.Name())); err == nil {
				add(filepath.Dir(target))
			}
		}
	}
	return out
}

// Watch makes each path unit watch its paths beyond the packaged ones: it
// writes (or removes) their drop-ins and, when any changed, reloads systemd
// once and restarts the path units whose drop-in changed, which it returns.
func Watch(ctx context.Context, m PathManager, watches ...PathWatch) ([]string, error) {
	var changed []string
	for _, w := range watches {
		c, err := w.writeDropIn()
		if err != nil {
			return changed, fmt.Errorf("%s: %w", w.Unit, err)
		}
		if c {
			changed = append(changed, w.Unit)
		}
	}
	if len(changed) == 0 {
		return nil, nil
	}
	if err := m.ReloadContext(ctx); err != nil {
		return changed, fmt.Errorf("reload systemd for %s: %w", strings.Join(changed, ", "), err)
	}
	for _, u := range changed {
		if _, err := m.RestartUnitContext(ctx, u, "replace", nil); err != nil {
			return changed, fmt.Errorf("restart %s: %w", u, err)
		}
	}
	return changed, nil
}

// writeDropIn writes w's drop-in, or removes it when there is nothing
// beyond the packaged paths, and reports whether it changed.
func (w PathWatch) writeDropIn() (bool, error) {
	var extra []string
	for _, p := range w.Paths {
		if !slices.Contains(w.Packaged, p) && !slices.Contains(extra, p) {
			extra = append(extra, p)
		}
	}
	slices.Sort(extra)
	var want []byte
	if len(extra) > 0 {
		opts := make([]*unit.UnitOption, len(extra))
		for i, p := range extra {
			// A '%' would start a specifier in a unit file.
			opts[i] = unit.NewUnitOption("Path", "PathChanged", strings.ReplaceAll(p, "%", "%%"))
		}
		body, err := io.ReadAll(unit.Serialize(opts))
		if err != nil {
			return false, err
		}
		want = append([]byte("# Written by podunit sync: "+w.What+". Removed when there are none.\n"), body...)
	}
	have, err := os.ReadFile(w.DropIn)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if bytes.Equal(have, want) {
		return false, nil
	}
	if want == nil {
		if err := os.Remove(w.DropIn); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		return true, nil
	}
	// systemd may read it at any time (a reload by someone else).
	return true, atomicfile.Write(w.DropIn, want, 0o644)
}
