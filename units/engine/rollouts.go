package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/atomicfile"
	"github.com/podunit/podunit/podshim/podspec"
)

// DefaultRolloutDir holds what the hand-offs record of the replacements
// they carry out: a record per pod under way or rolled back, the pins and
// the spec of the generation a rollback runs, and the counters /metrics
// serves. On disk, not in /run: a pod rolled back stays rolled back across
// a reboot, until its manifest changes.
const DefaultRolloutDir = "/var/lib/podunit/rollouts"

// The phases of a replacement (docs: "Updating pods safely"): the new
// generation's images are pulled while the old one runs (Pulling, and
// ImagePullBackOff between failed attempts), then the old one stops and
// the new one starts (Starting) and must be ready within its deadline; a
// record is removed once it is, and says RolledBack when it was not and
// the last ready generation runs again.
const (
	PhasePulling          = "Pulling"
	PhaseImagePullBackOff = "ImagePullBackOff"
	PhaseStarting         = "Starting"
	PhaseRolledBack       = "RolledBack"
	// PhaseReady: replaced and ready, in a rollout that goes on (its
	// replicas come back to their old generations if a later one fails).
	PhaseReady = "Ready"
)

// Triggers of a replacement.
const (
	TriggerManifest   = "manifest"    // the manifest or an object it uses changed
	TriggerAutoUpdate = "auto-update" // a tag of the pod's names a new digest
)

// Rollout is a pod's replacement, as its hand-off records it.
type Rollout struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Phase     string `json:"phase"`
	Trigger   string `json:"trigger"`
	// Generation is the config hash being rolled out; after a rollback,
	// the one that failed. Previous is the generation it replaces (ready
	// when the replacement began); PreviousImages the image IDs that one
	// ran, by the references its spec names, which a rollback pins.
	Generation     string            `json:"generation"`
	Previous       string            `json:"previous,omitempty"`
	PreviousImages map[string]string `json:"previousImages,omitempty"`
	// FailedImages are the image IDs of a failed auto-update: a later
	// check that finds the tag still there does not try them again.
	FailedImages map[string]string `json:"failedImages,omitempty"`
	// Reason and Message say why, in Kubernetes' words where there are
	// some (ErrImagePull, CrashLoopBackOff, ProgressDeadlineExceeded).
	Reason   string    `json:"reason,omitempty"`
	Message  string    `json:"message,omitempty"`
	Attempts int       `json:"attempts,omitempty"` // pulls tried
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
}

// Key is the pod's namespace/name.
func (r *Rollout) Key() string { return r.Namespace + "/" + r.Name }

// Rollouts is the directory of rollout records (DefaultRolloutDir); a zero
// one records nothing and reads none.
type Rollouts struct{ Dir string }

func (rs Rollouts) stem(namespace, name string) string {
	return filepath.Join(rs.Dir, namespace+"_"+name)
}

// PinsPath is the pins file of pod namespace/name's rolled-back generation
// (podspec.Pins), which its podshim is given.
func (rs Rollouts) PinsPath(namespace, name string) string {
	return rs.stem(namespace, name) + ".pins.json"
}

// savedSpec is where a replacement keeps the spec of the generation it
// replaces: a sync removes spec files no unit refers to, and the old unit
// is gone while the new one starts.
func (rs Rollouts) savedSpec(namespace, name, hash string) string {
	return generator.SpecPath(generator.UnitConfig{SpecDir: filepath.Join(rs.Dir, "specs")}, namespace, name, hash)
}

// Read reads pod namespace/name's record; nil when there is none.
func (rs Rollouts) Read(namespace, name string) (*Rollout, error) {
	if rs.Dir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(rs.stem(namespace, name) + ".json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Rollout
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("rollout record of %s/%s: %w", namespace, name, err)
	}
	return &r, nil
}

// All reads every record, by namespace/name; unreadable ones are left out.
func (rs Rollouts) All() map[string]*Rollout {
	out := map[string]*Rollout{}
	if rs.Dir == "" {
		return out
	}
	entries, _ := os.ReadDir(rs.Dir)
	for _, e := range entries {
		stem, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasSuffix(stem, ".pins") || stem == "counters" {
			continue
		}
		ns, name, ok := strings.Cut(stem, "_")
		if !ok {
			continue
		}
		if r, err := rs.Read(ns, name); err == nil && r != nil {
			out[r.Key()] = r
		}
	}
	return out
}

// Write records r, atomically and on disk.
func (rs Rollouts) Write(r *Rollout) error {
	if rs.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(rs.Dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteSync(rs.stem(r.Namespace, r.Name)+".json", append(b, '\n'), 0o644)
}

// Remove removes pod namespace/name's record, its pins and saved specs.
func (rs Rollouts) Remove(namespace, name string) error {
	if rs.Dir == "" {
		return nil
	}
	var errs []error
	for _, p := range []string{rs.stem(namespace, name) + ".json", rs.PinsPath(namespace, name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	saved, _ := filepath.Glob(filepath.Join(rs.Dir, "specs", namespace+"_"+name+"-*"))
	for _, p := range saved {
		if hash := strings.TrimPrefix(filepath.Base(p), namespace+"_"+name+"-"); strings.Contains(hash, "-") {
			continue // pod name-1's (<namespace>_<name>-1-<hash>.json), not this one's
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SaveSpec keeps a copy of a generation's spec files (SpecPath in specDir)
// with the record: the generation a rollback returns to.
func (rs Rollouts) SaveSpec(spec, namespace, name, hash string) error {
	pod, err := podspec.ReadSpec(spec)
	if err != nil {
		return err
	}
	objects, err := podspec.ReadObjects(spec)
	if err != nil {
		return err
	}
	dst := rs.savedSpec(namespace, name, hash)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := podspec.WriteSpecFiles(dst, pod, objects); err != nil {
		return err
	}
	// On disk before the old generation stops: a rollback's record,
	// written (and synced) later, must never name a spec a power cut lost.
	return syncFiles(dst, podspec.BinarySpecPath(dst), podspec.DataPath(dst), filepath.Dir(dst))
}

// syncFiles flushes each path that exists (files and directories) to disk.
func syncFiles(paths ...string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", p, err)
		}
	}
	return nil
}

// RestoreSpec makes sure the spec files of a saved generation are at spec
// (a reboot empties the spec directory) and returns its pod.
func (rs Rollouts) RestoreSpec(spec, namespace, name, hash string) (*generator.Pod, error) {
	if p, err := generator.FromSpec(podspec.ReadSpec(spec)); err == nil {
		return p, nil
	}
	saved := rs.savedSpec(namespace, name, hash)
	pod, err := podspec.ReadSpec(saved)
	if err != nil {
		return nil, err
	}
	objects, err := podspec.ReadObjects(saved)
	if err != nil {
		return nil, err
	}
	if err := podspec.WriteSpecFiles(spec, pod, objects); err != nil {
		return nil, err
	}
	return generator.FromSpec(pod, nil)
}

// Counters of what hand-offs and auto-update did, for /metrics.
const (
	CounterRolloutsReady        = "rollouts_ready"
	CounterRolloutsRolledBack   = "rollouts_rolled_back"
	CounterImagePullsFailed     = "image_pulls_failed"
	CounterAutoUpdateChecks     = "auto_update_checks"
	CounterAutoUpdatesAvailable = "auto_updates_available"
)

// Count adds one to a counter. Hand-offs run side by side: the counters
// file is changed under an exclusive lock.
func (rs Rollouts) Count(counter string) error {
	if rs.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(rs.Dir, 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(rs.Dir, "counters.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	c := rs.Counters()
	c[counter]++
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(rs.Dir, "counters.json"), b, 0o644)
}

// Counters are the counters' values; an unreadable file counts as none.
func (rs Rollouts) Counters() map[string]uint64 {
	c := map[string]uint64{}
	if b, err := os.ReadFile(filepath.Join(rs.Dir, "counters.json")); err == nil {
		_ = json.Unmarshal(b, &c)
	}
	return c
}
