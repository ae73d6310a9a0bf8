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

// WatchDropIn is the runtime drop-in of podunit.path with the directories
// it watches beyond the packaged ones (a manifestDir elsewhere, a kubelet's
// staticPodPath), so that their changes are picked up at once rather than
// by the 20 s relist.
const WatchDropIn = "/run/systemd/system/podunit.path.d/50-manifest-dir.conf"

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

// WatchManifestDirs makes podunit.path watch paths beyond the ones its
// packaged unit file watches (packaged): it writes (or removes) the drop-in
// and, when it changed, reloads systemd and restarts podunit.path. It
// reports whether anything changed.
func WatchManifestDirs(ctx context.Context, m PathManager, dropIn string, packaged, paths []string) (bool, error) {
	var extra []string
	for _, p := range paths {
		if !slices.Contains(packaged, p) {
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
		want = append([]byte("# Written by podunit sync: manifest directories beyond the packaged one\n# (manifestDir, manifestDirs, a kubelet's staticPodPath) and the directories\n# their symlinked manifests point into. Removed when there are none.\n"), body...)
	}
	have, err := os.ReadFile(dropIn)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if bytes.Equal(have, want) {
		return false, nil
	}
	if want == nil {
		if err := os.Remove(dropIn); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	} else {
		// systemd may read it at any time (a reload by someone else).
		if err := atomicfile.Write(dropIn, want, 0o644); err != nil {
			return false, err
		}
	}
	if err := m.ReloadContext(ctx); err != nil {
		return true, fmt.Errorf("reload systemd for podunit.path: %w", err)
	}
	if _, err := m.RestartUnitContext(ctx, "podunit.path", "replace", nil); err != nil {
		return true, fmt.Errorf("restart podunit.path: %w", err)
	}
	return true, nil
}
