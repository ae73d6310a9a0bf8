// Package cache repairs libcni's cache of a sandbox's network results when
// a power cut has left it unreadable.
//
// libcni writes each attachment's result to Dir/<network>-<sandbox>-<ifname>
// when the runtime sets the network up, without syncing it, and reads it
// back to tear the network down. After a power cut the file can be empty or
// cut short; libcni then refuses the teardown ("failed to get network …
// cached result: … unexpected end of JSON input"), so the runtime's
// StopPodSandbox fails for ever and the sandbox of before the power cut
// blocks its pod's new one. Without the file libcni tears down from the
// network configuration alone, as it does for a sandbox it never cached, and
// the plugins release what they hold (host-local its address). So a file
// that is not JSON is removed, and only such a file.
//
// It imports nothing but the standard library: podshim links it.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Dir is libcni's result cache (libcni.CacheDir + "/results"), which
// containerd and CRI-O use.
const Dir = "/var/lib/cni/results"

// RemoveCorrupt removes the sandbox's cached results in dir that are not
// JSON, and returns their paths.
func RemoveCorrupt(dir, sandboxID string) ([]string, error) {
	if sandboxID == "" || filepath.Base(sandboxID) != sandboxID {
		return nil, fmt.Errorf("sandbox ID %q", sandboxID)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*-"+sandboxID+"-*"))
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || json.Valid(b) {
			continue
		}
		if err := os.Remove(f); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, f)
	}
	return removed, errors.Join(errs...)
}

// Stopper is the runtime's StopPodSandbox.
type Stopper interface {
	StopPodSandbox(ctx context.Context, podSandboxID string) error
}

// StopSandbox stops the sandbox as rt.StopPodSandbox does; when that fails
// and the sandbox's cached results in dir are corrupt, it removes them and
// tries once more. repaired lists what it removed.
func StopSandbox(ctx context.Context, rt Stopper, dir, sandboxID string) (repaired []string, err error) {
	err = rt.StopPodSandbox(ctx, sandboxID)
	if err == nil {
		return nil, nil
	}
	repaired, rerr := RemoveCorrupt(dir, sandboxID)
	if len(repaired) == 0 {
		return nil, errors.Join(err, rerr)
	}
	return repaired, rt.StopPodSandbox(ctx, sandboxID)
}
