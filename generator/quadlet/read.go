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
// paths name (files, or directories whose *.kube files are read, as
// Quadlet reads /etc/containers/systemd, without descending), their
// drop-ins, and the files their Yaml= and ConfigMap= name. A unit that
// cannot be read is an error of its own in errs; the others are read.
func Read(paths []string) (units []*Unit, files map[string][]byte, errs []error) {
	files = map[string][]byte{}
	var unitPaths []string
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st, err := os.Stat(abs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !st.IsDir() {
			if !strings.HasSuffix(abs, ".kube") {
				errs = append(errs, fmt.Errorf("%s: not a .kube unit (podunit imports Quadlet's .kube units only; a .container or .pod unit has no Kubernetes YAML to start from)", p))
				continue
			}
			unitPaths = append(unitPaths, abs)
			continue
		}
		found, err := filepath.Glob(filepath.Join(abs, "*.kube"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(found) == 0 {
			errs = append(errs, fmt.Errorf("%s: no .kube unit", p))
		}
		unitPaths = append(unitPaths, found...)
	}
	sort.Strings(unitPaths)
	seen := map[string]bool{}
	for _, path := range unitPaths {
		if seen[path] {
			continue
		}
		seen[path] = true
		u, err := readUnit(path, files)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		units = append(units, u)
	}
	return units, files, errs
}

func readUnit(path string, files map[string][]byte) (*Unit, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	listing := map[string][]string{}
	for _, d := range DropInDirs(filepath.Base(path)) {
		entries, err := os.ReadDir(filepath.Join(dir, d))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0 {
				listing[d] = append(listing[d], e.Name())
			}
		}
	}
	var dropIns []File
	for _, rel := range DropIns(filepath.Base(path), listing) {
		p := filepath.Join(dir, rel)
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
