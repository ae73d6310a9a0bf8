package quadlet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Read is the only I/O of the package: it reads the .kube units that
// paths name (files, or directories searched as Quadlet searches
// /etc/containers/systemd: with their subdirectories, but not *.d
// directories nor rootless users' "users" directory), their drop-ins (in
// every directory searched), and the files their Yaml= and ConfigMap=
// name. A unit that cannot be read is an error of its own in errs; the
// others are read.
func Read(paths []string) (units []*Unit, files map[string][]byte, errs []error) {
	files = map[string][]byte{}
	seen := map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st, err := os.Stat(abs)
		if err == nil {
			abs, err = resolve(abs, st.IsDir())
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		bases := []string{filepath.Dir(abs)}
		unitPaths := []string{abs}
		if st.IsDir() {
			bases = searchDirs(abs)
			unitPaths = nil
			for _, d := range bases {
				found, _ := filepath.Glob(filepath.Join(d, "*.kube"))
				unitPaths = append(unitPaths, found...)
			}
			if len(unitPaths) == 0 {
				errs = append(errs, fmt.Errorf("%s: no .kube unit", p))
			}
		} else if !strings.HasSuffix(abs, ".kube") {
			errs = append(errs, fmt.Errorf("%s: not a .kube unit (podunit imports Quadlet's .kube units only; a .container or .pod unit has no Kubernetes YAML to start from)", p))
			continue
		}
		sort.Strings(unitPaths)
		for _, path := range unitPaths {
			if seen[path] {
				continue
			}
			seen[path] = true
			u, err := readUnit(path, bases, files)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			units = append(units, u)
		}
	}
	return units, files, errs
}

// resolve resolves symbolic links in path as Quadlet does: a directory to
// search wholly (Quadlet resolves its search directories), but of a unit
// file only the directory it is in: a unit file that is a link is read
// where it was found, and its relative Yaml= and ConfigMap= are found
// beside the link, not beside its target.
func resolve(path string, dir bool) (string, error) {
	if dir {
		return filepath.EvalSymlinks(path)
	}
	d, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return "", err
	}
	return filepath.Join(d, filepath.Base(path)), nil
}

// searchDirs are dir and its subdirectories, as Quadlet searches a unit
// directory: symbolic links followed, drop-in (*.d) directories and the
// top "users" directory (rootless users' units) left out.
func searchDirs(dir string) []string {
	var out []string
	visited := map[string]bool{}
	var walk func(string, bool)
	walk = func(d string, top bool) {
		resolved, err := filepath.EvalSymlinks(d)
		if err != nil || visited[resolved] {
			return
		}
		if st, err := os.Stat(resolved); err != nil || !st.IsDir() {
			return
		}
		visited[resolved] = true
		out = append(out, resolved)
		entries, err := os.ReadDir(resolved)
		if err != nil {
			return
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".d") || (top && e.Name() == "users") {
				continue
			}
			walk(filepath.Join(resolved, e.Name()), false)
		}
	}
	walk(dir, true)
	return out
}

func readUnit(path string, bases []string, files map[string][]byte) (*Unit, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	listing := map[string][]string{}
	for _, base := range bases {
		for _, d := range DropInDirs(filepath.Base(path)) {
			dir := filepath.Join(base, d)
			entries, err := os.ReadDir(dir)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			for _, e := range entries {
				if e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0 {
					listing[dir] = append(listing[dir], e.Name())
				}
			}
		}
	}
	var dropIns []File
	for _, p := range DropIns(filepath.Base(path), bases, listing) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		dropIns = append(dropIns, File{p, b})
	}
	u, err := ParseUnit(path, data, dropIns)
	if err != nil {
		return nil, err
	}
	yamls, configMaps, err := u.Sources()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range append(yamls, configMaps...) {
		if _, ok := files[p]; ok {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		files[p] = b
	}
	return u, nil
}
