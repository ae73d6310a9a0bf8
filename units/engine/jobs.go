package engine

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/atomicfile"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

// JobRecords are the finished Job pods, a file each
// (podspec.JobRecordPath) holding Succeeded or Failed. podshim writes a
// Job pod's record when it finishes (podspec.Args.FinishedRecord); a sync
// writes any that is missing and forgets those of Jobs no longer desired.
type JobRecords struct {
	Dir string // "": not recorded (podspec.DefaultJobDir on a machine)
}

func (j JobRecords) path(namespace, name, hash string) string {
	return podspec.JobRecordPath(j.Dir, namespace, name, hash)
}

func isJobPod(p *generator.Pod) bool {
	return strings.HasPrefix(p.Spec.Annotations[generator.AnnotationOwner], "Job/")
}

// completed is how the Job pod p finished ("Succeeded", "Failed") when it
// did and has no unit any more (or a stopped one); "" otherwise: run it
// (or leave its unit).
func (j JobRecords) completed(p *generator.Pod, loaded map[string]bus.Running) string {
	if j.Dir == "" || !isJobPod(p) {
		return ""
	}
	// Its unit, loaded, is left to the reconcile; but one stopped and not
	// unloaded yet (systemctl stop) is not run again.
	if r, ok := loaded[units.ServiceName(p.Namespace(), p.Name())]; ok && r.ActiveState != "inactive" {
		return ""
	}
	b, err := os.ReadFile(j.path(p.Namespace(), p.Name(), p.Hash))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// record writes down the Job pods whose units finished, and forgets those
// whose Job is no longer desired as it was.
func (j JobRecords) record(loaded map[string]bus.Running, cfg generator.UnitConfig, desired []*generator.Pod, report Reporter) {
	if j.Dir == "" {
		return
	}
	keep := map[string]bool{}
	for _, p := range desired {
		if isJobPod(p) {
			keep[filepath.Base(j.path(p.Namespace(), p.Name(), p.Hash))] = true
		}
	}
	for _, r := range loaded {
		result := ""
		switch {
		case r.ActiveState == "active" && r.SubState == "exited":
			result = "Succeeded"
		case r.ActiveState == "failed":
			result = "Failed"
		default:
			continue
		}
		path := j.path(r.Namespace, r.PodName, r.ConfigHash)
		if _, err := os.Stat(path); err == nil || !keep[filepath.Base(path)] {
			continue
		}
		p, err := generator.FromSpec(podspec.ReadSpec(generator.SpecPath(cfg, r.Namespace, r.PodName, r.ConfigHash)))
		if err != nil || !isJobPod(p) {
			continue
		}
		if err := atomicfile.WriteSync(path, []byte(result+"\n"), 0o644); err != nil {
			report.Errorf("job pod %s/%s %s, but it could not be recorded (it may run again after a reboot): %v", r.Namespace, r.PodName, strings.ToLower(result), err)
		}
	}
	entries, err := os.ReadDir(j.Dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			report.Errorf("job records: %v", err)
		}
		return
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			os.Remove(filepath.Join(j.Dir, e.Name()))
		}
	}
}
