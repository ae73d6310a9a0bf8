package engine

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/atomicfile"
	"github.com/podunit/podunit/units"
)

// The wanted file is how a sync tells the hand-offs under way what the
// manifests ask for now: every pod the sync wants run, by namespace/name,
// with the generation (config hash) its unit is to run. A hand-off reads
// it at each of its waits: a pod whose generation changed is superseded
// (the hand-off goes on with the newest one), and one that is missing is
// gone (the hand-off starts nothing for it). It is rewritten at each sync
// that changes it, before the sync acts, and lives beside the spec files
// (under /run: hand-offs do not outlive a boot either).
//
// The sync owns the file and the hand-offs only read it, so no two
// processes ever write it; a hand-off that finds none (a sync of an older
// podunit) takes every generation as wanted.

// WantedPath is the wanted file of the spec files of cfg: beside their
// directory (/run/podunit/wanted.json), not in it.
func WantedPath(cfg generator.UnitConfig) string {
	if cfg.SpecDir == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(filepath.Clean(cfg.SpecDir)), "wanted.json")
}

// Wanted is the content of the wanted file.
type Wanted struct {
	// Pods maps namespace/name to the generation the pod's unit is to run.
	Pods map[string]string `json:"pods"`
}

// writeWanted records desired in the wanted file, unless it says so
// already.
func writeWanted(path string, desired []*units.Unit) error {
	if path == "" {
		return nil
	}
	w := Wanted{Pods: make(map[string]string, len(desired))}
	for _, u := range desired {
		w.Pods[u.Namespace+"/"+u.PodName] = u.ConfigHash
	}
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
		return nil
	}
	return atomicfile.Write(path, b, 0o644)
}

// readWanted reads the wanted file.
func readWanted(path string) (*Wanted, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var w Wanted
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// wantedReader reads the wanted file again only when it changed.
type wantedReader struct {
	path string

	mu sync.Mutex
	// The file last read: a sync replaces it (a new inode) whenever it
	// changes, so its identity says whether to read it again.
	ino     uint64
	mtime   time.Time
	size    int64
	wanted  *Wanted
	checked bool
}

func inode(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// lookup returns the generation the last sync wants pod key to run, and
// whether it wants the pod at all. known is false when no sync said
// anything (no wanted file): every generation counts as wanted then.
func (w *wantedReader) lookup(key string) (hash string, wanted, known bool) {
	if w == nil || w.path == "" {
		return "", true, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	info, err := os.Stat(w.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		w.wanted = nil
	case err != nil:
		// Unreadable now: what was read last stands.
	case !w.checked || inode(info) != w.ino || !info.ModTime().Equal(w.mtime) || info.Size() != w.size:
		if next, err := readWanted(w.path); err == nil {
			w.wanted, w.ino, w.mtime, w.size = next, inode(info), info.ModTime(), info.Size()
		}
	}
	w.checked = true
	if w.wanted == nil {
		return "", true, false
	}
	hash, wanted = w.wanted.Pods[key]
	return hash, wanted, true
}
