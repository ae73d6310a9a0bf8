package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// The directories podunit.path watches as packaged; a manifest directory
// elsewhere (manifestDir, a kubelet's staticPodPath) is added with a
// runtime drop-in, so that its changes are picked up at once rather than by
// the 20 s relist.
var (
	packagedWatch = []string{"/etc/podunit/manifests", DefaultURLCache}
	watchDropIn   = "/run/systemd/system/podunit.path.d/50-manifest-dir.conf"
)

// pathManager is what watchManifestDir needs of systemd.
type pathManager interface {
	ReloadContext(ctx context.Context) error
	RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error)
}

// watchManifestDir makes podunit.path watch dir: it writes (or removes) the
// drop-in and, when it changed, reloads systemd and restarts podunit.path.
// It reports whether anything changed.
func watchManifestDir(ctx context.Context, m pathManager, dropIn, dir string) (bool, error) {
	var want []byte
	if !slices.Contains(packagedWatch, dir) {
		want = fmt.Appendf(nil, "# Written by podunit sync: its manifest directory is %s (config.yaml\n# manifestDir, or a kubelet's staticPodPath); removed when it is the default.\n[Path]\nPathChanged=%s\n", dir, dir)
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
		if err := os.MkdirAll(filepath.Dir(dropIn), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(dropIn, want, 0o644); err != nil {
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
