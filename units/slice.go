package units

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/coreos/go-systemd/v22/unit"
)

// SliceLimits are the pod-wide limits set on the pod's slice, which holds
// podshim, the sandbox and every container, as the kubelet sets them on a
// pod's cgroup. Zero means no limit.
type SliceLimits struct {
	// MemoryMax in bytes.
	MemoryMax uint64
	// CPUQuotaPerSec is CPU time per second of wall time: 1 s is one CPU.
	CPUQuotaPerSec uint64 // µs
}

// SliceDescription is the pod slice's description.
func (u *Unit) SliceDescription() string {
	return fmt.Sprintf("Pod %s/%s", u.Namespace, u.PodName)
}

var sliceDescriptionRE = regexp.MustCompile(`^Pod ([a-z0-9-]+)/([a-z0-9.-]+)$`)

// ParseSliceDescription reads back SliceDescription; ok is false for a
// slice podunit did not make.
func ParseSliceDescription(desc string) (namespace, name string, ok bool) {
	m := sliceDescriptionRE.FindStringSubmatch(desc)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// SliceOptions renders the pod's slice as unit-file options.
func (u *Unit) SliceOptions() []*unit.UnitOption {
	memory, cpu := "infinity", ""
	if u.Limits.MemoryMax > 0 {
		memory = strconv.FormatUint(u.Limits.MemoryMax, 10)
	}
	if u.Limits.CPUQuotaPerSec > 0 {
		// Percent of one CPU, to the precision systemd keeps (1 %).
		cpu = strconv.FormatUint((u.Limits.CPUQuotaPerSec+9999)/10000, 10) + "%"
	}
	return []*unit.UnitOption{
		{Section: "Unit", Name: "Description", Value: u.SliceDescription()},
		{Section: "Slice", Name: "MemoryMax", Value: memory},
		{Section: "Slice", Name: "CPUQuota", Value: cpu},
	}
}
