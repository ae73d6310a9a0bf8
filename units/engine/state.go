package engine

import (
	"encoding/json"
	"os"
	"time"

	"github.com/podunit/podunit/podshim/atomicfile"
)

// DefaultStatePath is where each sync records how it went, for healthz and
// the pods' conditions.
const DefaultStatePath = "/run/podunit/sync.json"

// State is what the last sync recorded.
type State struct {
	Time time.Time `json:"time"`
	// Failed counts the pod units the sync could not bring to their state.
	Failed int `json:"failed"`
	// Invalid maps each invalid manifest file to its first error.
	Invalid map[string]string `json:"invalid,omitempty"`
	// Conflicts maps a pod (namespace/name) to the other files defining it.
	Conflicts map[string][]string `json:"conflicts,omitempty"`
	// NotAdmitted maps a pod (namespace/name) that does not fit this node
	// to why, with its spec file.
	NotAdmitted map[string]NotAdmitted `json:"notAdmitted,omitempty"`
	// Notices maps each usable manifest file to its notices, one a line
	// (generator.Notice), so that a sync reports them once per change.
	Notices map[string][]string `json:"notices,omitempty"`
	// CronJobs are the CronJobs the sync read (namespace/name), suspended
	// ones too, for the status server's /cronjobs.
	CronJobs map[string]CronJobRecord `json:"cronJobs,omitempty"`
	// RolledBack maps a pod (namespace/name) that runs its last ready
	// generation after a failed replacement to the generation that
	// failed, so that a sync reports it once per change.
	RolledBack map[string]string `json:"rolledBack,omitempty"`
	// ServiceProblems are the errors of each Service (namespace/name) the
	// sync could not serve as its manifest says: not served, or served
	// as its record says (its last good definition).
	ServiceProblems map[string][]ServiceProblem `json:"serviceProblems,omitempty"`
	// Duration is how long the sync took, in seconds.
	Duration float64 `json:"duration"`
	// Syncs and FailedSyncs count the syncs since boot (/run is a tmpfs).
	Syncs       int `json:"syncs"`
	FailedSyncs int `json:"failedSyncs"`
}

// NotAdmitted is a pod that the last sync did not run because it does not
// fit this node.
type NotAdmitted struct {
	Spec    string `json:"spec"` // its spec file
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// CronJobRecord is a CronJob as the last sync read it.
type CronJobRecord struct {
	Schedule          string `json:"schedule"`
	TimeZone          string `json:"timeZone,omitempty"`
	Suspend           bool   `json:"suspend,omitempty"`
	ConcurrencyPolicy string `json:"concurrencyPolicy"`
	// Manifest is the file it is defined in.
	Manifest string `json:"manifest"`
}

// ReadState reads what the last sync recorded at path.
func ReadState(path string) (State, error) {
	var st State
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

func writeState(path string, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}
