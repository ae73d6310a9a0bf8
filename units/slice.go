package units

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/coreos/go-systemd/v22/unit"
	godbus "github.com/godbus/dbus/v5"
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

// sliceDescription is the pod slice's description.
func (u *Unit) sliceDescription() string {
	return fmt.Sprintf("Pod %s/%s", u.Namespace, u.PodName)
}

var sliceDescriptionRE = regexp.MustCompile(`^Pod ([a-z0-9-]+)/([a-z0-9.-]+)$`)

// parseSliceDescription reads back sliceDescription; ok is false for a slice
// podunit did not make.
func parseSliceDescription(desc string) (namespace, name string, ok bool) {
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
		{Section: "Unit", Name: "Description", Value: u.sliceDescription()},
		{Section: "Slice", Name: "MemoryMax", Value: memory},
		{Section: "Slice", Name: "CPUQuota", Value: cpu},
	}
}

// SliceProperties renders the pod's slice as D-Bus properties, the settings
// SliceOptions renders as text.
func (u *Unit) SliceProperties() []dbus.Property {
	memory, cpu := uint64(math.MaxUint64), uint64(math.MaxUint64)
	if u.Limits.MemoryMax > 0 {
		memory = u.Limits.MemoryMax
	}
	if u.Limits.CPUQuotaPerSec > 0 {
		// systemd keeps the quota in whole percent, rounded up.
		cpu = (u.Limits.CPUQuotaPerSec + 9999) / 10000 * 10000
	}
	return []dbus.Property{
		dbus.PropDescription(u.sliceDescription()),
		{Name: "MemoryMax", Value: godbus.MakeVariant(memory)},
		{Name: "CPUQuotaPerSecUSec", Value: godbus.MakeVariant(cpu)},
	}
}

// applySlice sets the pod's limits on its slice before the pod starts:
// a new transient slice, or new values on the one still there.
func applySlice(ctx context.Context, m Manager, u *Unit) error {
	props := u.SliceProperties()
	_, err := m.StartTransientUnitContext(ctx, u.Slice, "fail", props, nil)
	if err == nil {
		return nil
	}
	if !isDBusError(err, "org.freedesktop.systemd1.UnitExists") {
		return fmt.Errorf("slice %q: %w", u.Slice, err)
	}
	// Description cannot change on a loaded unit; the limits can.
	if err := m.SetUnitPropertiesContext(ctx, u.Slice, true, props[1:]...); err != nil {
		return fmt.Errorf("slice %q: set limits: %w", u.Slice, err)
	}
	return nil
}
