package units

import (
	"path/filepath"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
)

// Properties renders the unit as the properties of StartTransientUnit, the
// same settings Options renders as text.
func (u *Unit) Properties() []dbus.Property {
	props := []dbus.Property{
		dbus.PropDescription(u.Description()),
	}
	if filepath.IsAbs(u.Source) {
		props = append(props, prop("SourcePath", u.Source))
	}
	if len(u.After) > 0 {
		props = append(props, dbus.PropAfter(u.After...))
	}
	if len(u.Before) > 0 {
		props = append(props, dbus.PropBefore(u.Before...))
	}
	if len(u.Wants) > 0 {
		props = append(props, dbus.PropWants(u.Wants...))
	}
	props = append(props,
		prop("StartLimitIntervalUSec", usec(u.StartLimitInterval)),
		prop("CollectMode", u.CollectMode),
		dbus.PropType(u.Type),
		prop("NotifyAccess", u.NotifyAccess),
		dbus.PropExecStart(u.ExecStart, false),
		dbus.PropSlice(u.Slice),
		dbus.PropRemainAfterExit(u.RemainAfterExit),
		prop("Restart", u.Restart),
		prop("RestartUSec", usec(u.RestartSec)),
		prop("TimeoutStartUSec", usec(u.TimeoutStartSec)),
		prop("TimeoutStopUSec", usec(u.TimeoutStopSec)),
		prop("WatchdogUSec", usec(u.WatchdogSec)),
		prop("KillMode", u.KillMode),
		// The figures the status API shows (CPUUsageNSec, MemoryCurrent).
		prop("CPUAccounting", true),
		prop("MemoryAccounting", true),
	)
	if len(u.RestartPreventExitStatus) > 0 {
		// (status codes, signals), as systemd's D-Bus API has it.
		codes := make([]int32, len(u.RestartPreventExitStatus))
		for i, c := range u.RestartPreventExitStatus {
			codes[i] = int32(c)
		}
		props = append(props, prop("RestartPreventExitStatus", struct {
			Codes   []int32
			Signals []int32
		}{codes, []int32{}}))
	}
	return props
}

func usec(d time.Duration) uint64 { return uint64(d / time.Microsecond) }
