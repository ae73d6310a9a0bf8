package units

import (
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
)

// Unit is one pod's service. It is the single model behind both renderings:
// Options (unit-file text, `podunit render`) and Properties (D-Bus, for
// StartTransientUnit). A test checks that both carry every field.
type Unit struct {
	// Name is the service name, pod-<stem>.service.
	Name string
	// Namespace, PodName and ConfigHash identify the pod and its content.
	// They are written into the Description, where the reconciler reads them
	// back from ListUnits without another call per unit.
	Namespace, PodName, ConfigHash string
	// Group is the workload the pod is a replica of ("Deployment/web",
	// "StatefulSet/db"); its replicas are replaced one at a time by a
	// rollout unit (a StatefulSet's highest ordinal first). Not a unit
	// setting.
	Group string
	// StartAfter are pod units that must be active (ready) before this one
	// starts (podunit.io/after): a hand-off waits for them. Not a unit
	// setting: an ordering dependency between transient units keeps the
	// other unit loaded, and its name could then never take a new
	// generation.
	StartAfter []string
	// Ordered pods of a Group are started one at a time too, each ready
	// before the next (a StatefulSet's under OrderedReady), by the same
	// rollout unit. Not a unit setting.
	Ordered bool
	// Resume: this generation's replacement was cut short (its hand-off
	// killed, the machine down) before the generation was proven ready. A
	// hand-off takes it through the readiness gate again, against the last
	// ready generation the replacement's record keeps, however the unit
	// runs now (started, crash-looping, or not loaded after a boot). Not a
	// unit setting.
	Resume bool
	// Source is the manifest file, shown as the unit's SourcePath. systemd
	// takes only an absolute path there; a relative one is not rendered.
	Source string

	// [Unit]
	After              []string
	Before             []string
	Wants              []string
	StartLimitInterval time.Duration // 0 disables the start-rate limit
	CollectMode        string

	// [Service]
	Type         string
	NotifyAccess string
	ExecStart    []string
	// Environment is the main process's environment beyond the manager's,
	// as NAME=VALUE.
	Environment     []string
	Slice           string
	RemainAfterExit bool
	Restart         string
	RestartSec      time.Duration
	// RestartSteps and RestartMaxDelay (systemd 254+) lengthen RestartSec
	// with each automatic restart; 0: not set (an older manager refuses
	// them).
	RestartSteps             int
	RestartMaxDelay          time.Duration
	RestartPreventExitStatus []int
	TimeoutStartSec          time.Duration
	TimeoutStopSec           time.Duration
	WatchdogSec              time.Duration
	KillMode                 string

	// Limits go on the pod's Slice (SliceOptions, SliceProperties).
	Limits SliceLimits
}

// Description is the unit's description: "Pod <ns>/<name> (podunit config <hash>)".
func (u *Unit) Description() string {
	return fmt.Sprintf("Pod %s/%s (podunit config %s)", u.Namespace, u.PodName, u.ConfigHash)
}

var descriptionRE = regexp.MustCompile(`^Pod ([a-z0-9-]+)/([a-z0-9.-]+) \(podunit config ([0-9a-f]+)\)$`)

// ParseDescription reads back what Description wrote. ok is false for a unit
// podunit did not create.
func ParseDescription(desc string) (namespace, name, hash string, ok bool) {
	m := descriptionRE.FindStringSubmatch(desc)
	if m == nil {
		return "", "", "", false
	}
	return m[1], m[2], m[3], true
}

// Options renders the unit as unit-file options, in file order.
func (u *Unit) Options() []*unit.UnitOption {
	opt := func(section, name, value string) *unit.UnitOption {
		return &unit.UnitOption{Section: section, Name: name, Value: value}
	}
	opts := []*unit.UnitOption{
		opt("Unit", "Description", u.Description()),
	}
	if filepath.IsAbs(u.Source) {
		opts = append(opts, opt("Unit", "SourcePath", u.Source))
	}
	if len(u.After) > 0 {
		opts = append(opts, opt("Unit", "After", strings.Join(u.After, " ")))
	}
	if len(u.Before) > 0 {
		opts = append(opts, opt("Unit", "Before", strings.Join(u.Before, " ")))
	}
	if len(u.Wants) > 0 {
		opts = append(opts, opt("Unit", "Wants", strings.Join(u.Wants, " ")))
	}
	opts = append(opts,
		opt("Unit", "StartLimitIntervalSec", seconds(u.StartLimitInterval)),
		opt("Unit", "CollectMode", u.CollectMode),
		opt("Service", "Type", u.Type),
		opt("Service", "NotifyAccess", u.NotifyAccess),
		opt("Service", "ExecStart", QuoteCommand(u.ExecStart)),
	)
	for _, e := range u.Environment {
		opts = append(opts, opt("Service", "Environment", QuoteCommand([]string{e})))
	}
	opts = append(opts,
		opt("Service", "Slice", u.Slice),
		opt("Service", "RemainAfterExit", yesNo(u.RemainAfterExit)),
		opt("Service", "Restart", u.Restart),
		opt("Service", "RestartSec", seconds(u.RestartSec)),
	)
	if u.RestartSteps > 0 {
		opts = append(opts,
			opt("Service", "RestartSteps", strconv.Itoa(u.RestartSteps)),
			opt("Service", "RestartMaxDelaySec", seconds(u.RestartMaxDelay)))
	}
	opts = append(opts,
		opt("Service", "TimeoutStartSec", seconds(u.TimeoutStartSec)),
		opt("Service", "TimeoutStopSec", seconds(u.TimeoutStopSec)),
		opt("Service", "WatchdogSec", seconds(u.WatchdogSec)),
		opt("Service", "KillMode", u.KillMode),
		opt("Service", "CPUAccounting", "yes"),
		opt("Service", "MemoryAccounting", "yes"),
	)
	if len(u.RestartPreventExitStatus) > 0 {
		codes := make([]string, len(u.RestartPreventExitStatus))
		for i, c := range u.RestartPreventExitStatus {
			codes[i] = strconv.Itoa(c)
		}
		opts = append(opts, opt("Service", "RestartPreventExitStatus", strings.Join(codes, " ")))
	}
	return opts
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Render is the unit as unit-file text, what `podunit render` prints. Placed
// in a unit directory it behaves as the transient unit does.
func (u *Unit) Render() (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: generated by podunit", u.Name)
	if u.Source != "" {
		fmt.Fprintf(&b, " from %s", u.Source)
	}
	b.WriteString("\n")
	if _, err := io.Copy(&b, unit.Serialize(u.Options())); err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "\n# %s: the pod's slice, holding podshim and the containers\n", u.Slice)
	if _, err := io.Copy(&b, unit.Serialize(u.SliceOptions())); err != nil {
		return "", err
	}
	return b.String(), nil
}

func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// QuoteCommand renders an argv as a unit-file command line that systemd parses
// back into the same argv: words with spaces, quotes, backslashes or
// specifiers are double-quoted with C escapes, '%' doubled and '$' doubled.
func QuoteCommand(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = quoteWord(a)
	}
	return strings.Join(words, " ")
}

func quoteWord(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\%$;") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '%':
			b.WriteString("%%")
		case '$':
			b.WriteString("$$")
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
