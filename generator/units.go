package generator

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/podunit/podunit/units"
)

// UnitConfig says how pods become units on this machine.
type UnitConfig struct {
	PodshimPath  string // absolute path of the podshim binary
	SpecDir      string // where the pod spec files live, e.g. /run/podunit/specs
	CRIEndpoint  string // e.g. unix:///run/containerd/containerd.sock
	CgroupDriver string // units.CgroupDriverSystemd or units.CgroupDriverCgroupfs
}

// Timing of every pod unit.
const (
	// restartDelay is how long systemd waits before running podshim again
	// after it exited with a failure (a container exited, the runtime was
	// unreachable). The new podshim adopts the pod's sandbox.
	restartDelay = 10 * time.Second
	// startTimeout bounds sandbox creation, image pulls and container starts.
	startTimeout = 5 * time.Minute
	// stopMargin is added to the grace period for stopping and removing the
	// sandbox after the containers are gone.
	stopMargin = 30 * time.Second
)

// runtimeUnits are ordered before every pod so that at shutdown pods stop
// before the runtime does. Ordering against a unit that does not exist is a
// no-op, so both runtimes can be named.
var runtimeUnits = []string{"containerd.service", "crio.service"}

// SpecPath is where the spec file of pod namespace/name with the given config
// hash lives. The hash in the name means a file never changes once written:
// a new config is a new file.
func SpecPath(cfg UnitConfig, namespace, name, hash string) string {
	return filepath.Join(cfg.SpecDir, fmt.Sprintf("%s_%s-%s.json", namespace, name, hash))
}

// SpecFile is the content of the pod's spec file, which podshim reads: the
// defaulted pod as JSON.
func SpecFile(p *Pod) ([]byte, error) {
	b, err := json.MarshalIndent(p.Spec, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("pod %s: encode spec: %w", p.Key(), err)
	}
	return append(b, '\n'), nil
}

// Unit translates a pod into its service unit.
func Unit(cfg UnitConfig, p *Pod) (*units.Unit, error) {
	ns, name := p.Namespace(), p.Name()
	parent, err := units.CgroupParent(cfg.CgroupDriver, ns, name)
	if err != nil {
		return nil, err
	}
	grace := time.Duration(*p.Spec.Spec.TerminationGracePeriodSeconds) * time.Second
	return &units.Unit{
		Name:       units.ServiceName(ns, name),
		Namespace:  ns,
		PodName:    name,
		ConfigHash: p.Hash,
		Source:     p.Source,

		After:              runtimeUnits,
		StartLimitInterval: 0, // never give up on a pod: the restart delay paces retries
		CollectMode:        "inactive-or-failed",

		Type:         "notify",
		NotifyAccess: "main",
		ExecStart: []string{cfg.PodshimPath,
			"--spec", SpecPath(cfg, ns, name, p.Hash),
			"--cri-endpoint", cfg.CRIEndpoint,
			"--cgroup-parent", parent,
		},
		Slice:           units.SliceName(ns, name),
		Restart:         "on-failure",
		RestartSec:      restartDelay,
		TimeoutStartSec: startTimeout,
		TimeoutStopSec:  grace + stopMargin,
		// podshim alone gets SIGTERM and stops the containers through the
		// runtime; anything of the unit still running at the timeout is killed.
		KillMode: "mixed",
	}, nil
}
