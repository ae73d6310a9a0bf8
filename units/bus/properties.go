package bus

import (
	"path/filepath"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
	"github.com/podunit/podunit/units"
	"math"
)

// Properties renders the unit as the properties of StartTransientUnit, the
// same settings its Options renders as text.
func Properties(u *units.Unit) []dbus.Property {
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
	)
	if len(u.Environment) > 0 {
		props = append(props, prop("Environment", u.Environment))
	}
	props = append(props,
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
	if u.RestartSteps > 0 {
		props = append(props,
			prop("RestartSteps", uint32(u.RestartSteps)),
			prop("RestartMaxDelayUSec", usec(u.RestartMaxDelay)))
	}
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

// SliceProperties renders the pod's slice as D-Bus properties, the settings
// its SliceOptions renders as text.
func SliceProperties(u *units.Unit) []dbus.Property {
	memory, cpu := uint64(math.MaxUint64), uint64(math.MaxUint64)
	if u.Limits.MemoryMax > 0 {
		memory = u.Limits.MemoryMax
	}
	if u.Limits.CPUQuotaPerSec > 0 {
		// systemd keeps the quota in whole percent, rounded up.
		cpu = (u.Limits.CPUQuotaPerSec + 9999) / 10000 * 10000
	}
	return []dbus.Property{
		dbus.PropDescription(u.SliceDescription()),
		{Name: "MemoryMax", Value: godbus.MakeVariant(memory)},
		{Name: "CPUQuotaPerSecUSec", Value: godbus.MakeVariant(cpu)},
	}
}

// TimerProperties renders the timer as StartTransientUnit's properties.
func TimerProperties(t *units.Timer) []dbus.Property {
	calendar := make([]struct{ Base, Spec string }, len(t.OnCalendar))
	for i, c := range t.OnCalendar {
		calendar[i].Base, calendar[i].Spec = "OnCalendar", c
	}
	props := []dbus.Property{dbus.PropDescription(t.Description())}
	if filepath.IsAbs(t.Source) {
		props = append(props, prop("SourcePath", t.Source))
	}
	return append(props,
		prop("TimersCalendar", calendar),
		prop("AccuracyUSec", usec(units.TimerAccuracy)),
		prop("Persistent", true),
	)
}

// ServiceProperties renders the timer's service as the properties of
// StartTransientUnit's auxiliary unit.
func ServiceProperties(t *units.Timer) []dbus.Property {
	return []dbus.Property{
		dbus.PropDescription(t.ServiceDescription()),
		dbus.PropType("oneshot"),
		dbus.PropExecStart(t.ExecStart, false),
		prop("TimeoutStartUSec", usec(units.CronRunTimeout)),
	}
}

func prop(name string, value any) dbus.Property {
	return dbus.Property{Name: name, Value: godbus.MakeVariant(value)}
}
