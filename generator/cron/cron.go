// Package cron reads a CronJob's schedule as Kubernetes reads it (the
// standard five-field cron syntax of robfig/cron's parser, which the
// CronJob controller uses) and turns it into what systemd's timers run on:
// OnCalendar= expressions with the same elapse times, and the scheduled
// times themselves, so that a run knows which schedule it serves.
package cron

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed cron schedule.
type Schedule struct {
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	// domStar and dowStar are the day fields written as * or ? (without a
	// step): then a day matches when both fields match; otherwise when
	// either does (cron's rule, which robfig/cron follows).
	domStar, dowStar bool
}

type field struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	minuteField = field{name: "minute", min: 0, max: 59}
	hourField   = field{name: "hour", min: 0, max: 23}
	domField    = field{name: "day of month", min: 1, max: 31}
	monthField  = field{name: "month", min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}}
	dowField = field{name: "day of week", min: 0, max: 6, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}}
)

// descriptors are the @-shorthands the standard parser takes.
var descriptors = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// Parse reads a schedule: five fields (minute, hour, day of month, month,
// day of week) of values, names (jan, mon), ranges (1-5), lists (1,3),
// steps (*/15, 10-50/10, 5/10) and * or ?, or one of the @yearly, @monthly,
// @weekly, @daily, @midnight and @hourly shorthands. A time zone belongs in
// the CronJob's timeZone, not in the schedule, as the API server requires.
func Parse(spec string) (*Schedule, error) {
	spec = strings.TrimSpace(spec)
	if strings.Contains(spec, "TZ") {
		return nil, fmt.Errorf("a time zone (TZ= or CRON_TZ=) is not allowed in the schedule: set spec.timeZone")
	}
	if strings.HasPrefix(spec, "@") {
		if strings.HasPrefix(spec, "@every") {
			return nil, fmt.Errorf("%q: @every has no calendar form; write the interval as a five-field schedule (e.g. */5 * * * * for every five minutes)", spec)
		}
		d, ok := descriptors[strings.ToLower(spec)]
		if !ok {
			return nil, fmt.Errorf("%q: unknown shorthand (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)", spec)
		}
		spec = d
	}
	parts := strings.Fields(spec)
	if len(parts) != 5 {
		return nil, fmt.Errorf("%q: expected 5 fields (minute hour day-of-month month day-of-week), found %d", spec, len(parts))
	}
	s := &Schedule{}
	var err error
	for i, f := range []struct {
		field
		bits *uint64
		star *bool
	}{
		{minuteField, &s.minute, nil},
		{hourField, &s.hour, nil},
		{domField, &s.dom, &s.domStar},
		{monthField, &s.month, nil},
		{dowField, &s.dow, &s.dowStar},
	} {
		var star bool
		if *f.bits, star, err = f.parse(parts[i]); err != nil {
			return nil, err
		}
		if f.star != nil {
			*f.star = star
		}
	}
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC).IsZero() {
		return nil, fmt.Errorf("%q never comes: no month has that day", spec)
	}
	return s, nil
}

// parse reads one field: its bits, and whether it is * or ? (with no step).
func (f field) parse(expr string) (uint64, bool, error) {
	var set uint64
	star := false
	for _, r := range strings.Split(expr, ",") {
		b, s, err := f.parseRange(r)
		if err != nil {
			return 0, false, err
		}
		set |= b
		star = star || s
	}
	return set, star, nil
}

func (f field) parseRange(expr string) (uint64, bool, error) {
	rangePart, stepPart, hasStep := strings.Cut(expr, "/")
	low, high, hasHigh := strings.Cut(rangePart, "-")
	var (
		start, end int
		star       bool
		err        error
	)
	if low == "*" || low == "?" {
		if hasHigh {
			return 0, false, fmt.Errorf("%s %q: * cannot start a range", f.name, expr)
		}
		start, end, star = f.min, f.max, true
	} else {
		if start, err = f.value(low); err != nil {
			return 0, false, err
		}
		end = start
		if hasHigh {
			if end, err = f.value(high); err != nil {
				return 0, false, err
			}
		}
	}
	step := 1
	if hasStep {
		if step, err = strconv.Atoi(stepPart); err != nil || step <= 0 {
			return 0, false, fmt.Errorf("%s %q: the step must be a positive number", f.name, expr)
		}
		if !hasHigh && !star {
			end = f.max // "5/10" is "5-max/10"
		}
		if step > 1 {
			star = false
		}
	}
	switch {
	case start < f.min:
		return 0, false, fmt.Errorf("%s %q: %d is below the minimum, %d", f.name, expr, start, f.min)
	case end > f.max:
		return 0, false, fmt.Errorf("%s %q: %d is above the maximum, %d", f.name, expr, end, f.max)
	case start > end:
		return 0, false, fmt.Errorf("%s %q: the range starts after it ends", f.name, expr)
	}
	var set uint64
	for v := start; v <= end; v += step {
		set |= 1 << v
	}
	return set, star, nil
}

func (f field) value(s string) (int, error) {
	if v, ok := f.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s %q: not a number%s", f.name, s, f.nameHint())
	}
	return v, nil
}

func (f field) nameHint() string {
	switch f.name {
	case "month":
		return " or a month's name (jan … dec)"
	case "day of week":
		return " or a day's name (sun … sat)"
	}
	return ""
}

// OnCalendar is the schedule as systemd timer expressions (one
// OnCalendar= each), in the time zone tz ("" for the machine's). A
// schedule that restricts both the day of the month and the day of the
// week fires on either (cron's rule) and needs two expressions: systemd
// requires both.
func (s *Schedule) OnCalendar(tz string) []string {
	clock := fmt.Sprintf("%s:%s:00", render(s.hour, hourField, 2), render(s.minute, minuteField, 2))
	months := render(s.month, monthField, 2)
	suffix := ""
	if tz != "" {
		suffix = " " + tz
	}
	days := render(s.dom, domField, 2)
	weekdays := ""
	if s.dow&fullSet(dowField) != fullSet(dowField) {
		weekdays = weekdayNames(s.dow) + " "
	}
	if s.domStar || s.dowStar {
		return []string{fmt.Sprintf("%s*-%s-%s %s%s", weekdays, months, days, clock, suffix)}
	}
	return []string{
		fmt.Sprintf("*-%s-%s %s%s", months, days, clock, suffix),
		fmt.Sprintf("%s*-%s-* %s%s", weekdays, months, clock, suffix),
	}
}

func fullSet(f field) uint64 {
	return (1<<(f.max+1) - 1) &^ (1<<f.min - 1)
}

// render writes a field's set as a calendar component: * or a list. Never
// systemd's a/n repetition: systemd 252 skips the start value after a
// carry into the next hour or day (00/5 hours misses midnight on the 1st),
// which the oracle test caught.
func render(set uint64, f field, width int) string {
	if set == fullSet(f) {
		return "*"
	}
	var words []string
	for v := f.min; v <= f.max; v++ {
		if set&(1<<v) != 0 {
			words = append(words, fmt.Sprintf("%0*d", width, v))
		}
	}
	return strings.Join(words, ",")
}

var weekdays = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

func weekdayNames(set uint64) string {
	var names []string
	for d := range 7 {
		if set&(1<<d) != 0 {
			names = append(names, weekdays[d])
		}
	}
	return strings.Join(names, ",")
}

// searchDays bounds a search for the next or previous scheduled time: the
// rarest schedule that comes at all (29 February on a given weekday) comes
// within 28 years.
const searchDays = 28*366 + 1

// Next is the first scheduled time after t, in loc; zero if there is none.
func (s *Schedule) Next(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	from := t.Truncate(time.Minute).Add(time.Minute)
	y, m, d := from.Date()
	for i := range searchDays {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, loc)
		if !s.dayMatches(day) {
			continue
		}
		for h := range 24 {
			if s.hour&(1<<h) == 0 {
				continue
			}
			for mi := range 60 {
				if s.minute&(1<<mi) == 0 {
					continue
				}
				if at, ok := wall(day, h, mi, loc); ok && !at.Before(from) {
					return at
				}
			}
		}
	}
	return time.Time{}
}

// Prev is the last scheduled time at or before t, in loc; zero if there is
// none.
func (s *Schedule) Prev(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	y, m, d := t.Date()
	for i := range searchDays {
		day := time.Date(y, m, d-i, 0, 0, 0, 0, loc)
		if !s.dayMatches(day) {
			continue
		}
		for h := 23; h >= 0; h-- {
			if s.hour&(1<<h) == 0 {
				continue
			}
			for mi := 59; mi >= 0; mi-- {
				if s.minute&(1<<mi) == 0 {
					continue
				}
				if at, ok := wall(day, h, mi, loc); ok && !at.After(t) {
					return at
				}
			}
		}
	}
	return time.Time{}
}

// wall is h:mi on day's date in loc; not ok when the clock skips that time
// (a daylight-saving change), as systemd skips it too.
func wall(day time.Time, h, mi int, loc *time.Location) (time.Time, bool) {
	y, m, d := day.Date()
	at := time.Date(y, m, d, h, mi, 0, 0, loc)
	return at, at.Hour() == h && at.Minute() == mi
}

func (s *Schedule) dayMatches(day time.Time) bool {
	if s.month&(1<<int(day.Month())) == 0 {
		return false
	}
	domMatch := s.dom&(1<<day.Day()) != 0
	dowMatch := s.dow&(1<<int(day.Weekday())) != 0
	if s.domStar || s.dowStar {
		return domMatch && dowMatch
	}
	return domMatch || dowMatch
}
