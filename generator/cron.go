package generator

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// cronMacros are the schedules Kubernetes' CronJob takes by name.
var cronMacros = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// cronField is one of the five fields of a cron schedule.
type cronField struct {
	name     string
	min, max int
	names    []string // month and weekday names, from min
}

var cronFields = []cronField{
	{name: "minute", max: 59},
	{name: "hour", max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{name: "day of week", max: 7, names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}},
}

// systemd's weekday names, Sunday first as cron counts (7 is Sunday too).
var systemdWeekdays = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

var timeZoneName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$`)

// CalendarSpecs turns a CronJob's schedule (five fields, as Kubernetes
// reads them, or a macro such as @hourly) into systemd OnCalendar=
// expressions, in timeZone when given (default the machine's local time,
// as the kube-controller-manager's). Cron runs a job when either day field
// matches if both are restricted; systemd's calendar needs both, so that
// case is two expressions, which a timer ORs.
func CalendarSpecs(schedule, timeZone string) ([]string, error) {
	s := strings.TrimSpace(schedule)
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return nil, fmt.Errorf("%q: a time zone in the schedule is not supported (as in Kubernetes): use spec.timeZone", schedule)
	}
	if m, ok := cronMacros[s]; ok {
		s = m
	}
	parts := strings.Fields(s)
	if len(parts) != 5 {
		return nil, fmt.Errorf("%q: must have five fields (minute hour day-of-month month day-of-week) or be @hourly, @daily, @weekly, @monthly or @yearly", schedule)
	}
	values := make([][]int, 5) // nil: any
	for i, f := range cronFields {
		v, err := f.parse(parts[i])
		if err != nil {
			return nil, fmt.Errorf("%q: %s: %w", schedule, f.name, err)
		}
		values[i] = v
	}
	tz := ""
	if timeZone != "" {
		if !timeZoneName.MatchString(timeZone) {
			return nil, fmt.Errorf("%q: not a time zone name such as Europe/Berlin", timeZone)
		}
		tz = " " + timeZone
	}
	list := func(v []int, width int) string {
		if v == nil {
			return "*"
		}
		out := make([]string, len(v))
		for i, n := range v {
			out[i] = fmt.Sprintf("%0*d", width, n)
		}
		return strings.Join(out, ",")
	}
	weekdays := func(v []int) string {
		seen := map[string]bool{}
		var out []string
		for _, n := range v {
			if d := systemdWeekdays[n]; !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
		return strings.Join(out, ",") + " "
	}
	spec := func(dom, dow []int) string {
		prefix := ""
		if dow != nil {
			prefix = weekdays(dow)
		}
		return fmt.Sprintf("%s*-%s-%s %s:%s:00%s", prefix, list(values[3], 2), list(dom, 2), list(values[1], 2), list(values[0], 2), tz)
	}
	dom, dow := values[2], values[4]
	if dom != nil && dow != nil {
		return []string{spec(dom, nil), spec(nil, dow)}, nil
	}
	return []string{spec(dom, dow)}, nil
}

// parse reads one cron field: *, n, a-b, */s, a-b/s and lists of those;
// nil means any value.
func (f cronField) parse(field string) ([]int, error) {
	if field == "*" || field == "?" {
		return nil, nil
	}
	set := map[int]bool{}
	for _, item := range strings.Split(field, ",") {
		rng, step := item, 1
		if r, s, ok := strings.Cut(item, "/"); ok {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%q: the step must be a whole number of 1 or more", item)
			}
			rng, step = r, n
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*" || rng == "?":
			if f.name == "day of week" {
				hi = 6
			}
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return nil, err
			}
			if hi, err = f.value(b); err != nil {
				return nil, err
			}
			if lo > hi {
				return nil, fmt.Errorf("%q: the range ends before it starts", item)
			}
		default:
			v, err := f.value(rng)
			if err != nil {
				return nil, err
			}
			lo, hi = v, v
			if step > 1 { // "5/10": from 5 to the end
				hi = f.max
			}
		}
		for v := lo; v <= hi; v += step {
			set[v] = true
		}
	}
	out := make([]int, 0, len(set))
	for v := f.min; v <= f.max; v++ {
		if set[v] {
			out = append(out, v)
		}
	}
	return out, nil
}

// value reads a number or a name (JAN, MON) of the field.
func (f cronField) value(s string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < f.min || v > f.max {
		return 0, fmt.Errorf("%q: must be a number from %d to %d%s", s, f.min, f.max, map[bool]string{true: " or a name such as " + strings.Join(f.names[:min(3, len(f.names))], ", "), false: ""}[len(f.names) > 0])
	}
	return v, nil
}
