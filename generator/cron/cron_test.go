package cron

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestOnCalendar(t *testing.T) {
	for _, tc := range []struct {
		schedule, tz string
		want         []string
	}{
		{"* * * * *", "", []string{"*-*-* *:*:00"}},
		{"*/1 * * * *", "", []string{"*-*-* *:*:00"}},
		{"*/15 * * * *", "", []string{"*-*-* *:00,15,30,45:00"}},
		{"0 3 * * *", "", []string{"*-*-* 03:00:00"}},
		{"@hourly", "", []string{"*-*-* *:00:00"}},
		{"@weekly", "", []string{"Sun *-*-* 00:00:00"}},
		{"@yearly", "UTC", []string{"*-01-01 00:00:00 UTC"}},
		{"30 2 * * mon-fri", "Europe/Berlin", []string{"Mon,Tue,Wed,Thu,Fri *-*-* 02:30:00 Europe/Berlin"}},
		{"5 4 1,15 JAN,Jul *", "", []string{"*-01,07-01,15 04:05:00"}},
		{"0 0-23/6 * * *", "", []string{"*-*-* 00,06,12,18:00:00"}},
		{"10-50/20 * * * *", "", []string{"*-*-* *:10,30,50:00"}},
		// Both day fields restricted: either matches, as in cron.
		{"0 12 13 * 5", "", []string{"*-*-13 12:00:00", "Fri *-*-* 12:00:00"}},
		{"0 0 */2 * 1", "", []string{"*-*-01,03,05,07,09,11,13,15,17,19,21,23,25,27,29,31 00:00:00", "Mon *-*-* 00:00:00"}},
		{"0 0 ? * 1", "", []string{"Mon *-*-* 00:00:00"}},
	} {
		s, err := Parse(tc.schedule)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.schedule, err)
			continue
		}
		if got := s.OnCalendar(tc.tz); !slices.Equal(got, tc.want) {
			t.Errorf("%q: OnCalendar = %q, want %q", tc.schedule, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for schedule, want := range map[string]string{
		"* * * *":                  "expected 5 fields",
		"* * * * * *":              "expected 5 fields",
		"60 * * * *":               "minute \"60\": 60 is above the maximum, 59",
		"* 24 * * *":               "hour \"24\": 24 is above the maximum, 23",
		"* * 0 * *":                "day of month \"0\": 0 is below the minimum, 1",
		"* * * 13 *":               "month \"13\": 13 is above the maximum, 12",
		"* * * * 7":                "day of week \"7\": 7 is above the maximum, 6",
		"* * * foo *":              "month \"foo\": not a number or a month's name",
		"*/0 * * * *":              "the step must be a positive number",
		"5-1 * * * *":              "the range starts after it ends",
		"*-5 * * * *":              "* cannot start a range",
		"@every 5m":                "@every has no calendar form",
		"@fortnightly":             "unknown shorthand",
		"CRON_TZ=UTC * * * * *":    "set spec.timeZone",
		"TZ=Europe/Rome 0 * * * *": "set spec.timeZone",
		"0 0 30 2 *":               "never comes",
	} {
		if _, err := Parse(schedule); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", schedule, err, want)
		}
	}
}

func TestNextAndPrev(t *testing.T) {
	s, err := Parse("30 2 * * mon-fri")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 4, 2, 30, 0, 0, time.UTC) // a Friday, on the schedule
	if got, want := s.Next(base, time.UTC), time.Date(2026, 12, 7, 2, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next after a scheduled time = %v, want the Monday after, %v", got, want)
	}
	if got := s.Prev(base, time.UTC); !got.Equal(base) {
		t.Errorf("Prev at a scheduled time = %v, want that time", got)
	}
	if got, want := s.Prev(base.Add(-time.Second), time.UTC), time.Date(2026, 12, 3, 2, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Prev just before = %v, want the day before's, %v", got, want)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	if got, want := s.Next(base, berlin), time.Date(2026, 12, 7, 1, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next in Berlin = %v, want %v", got.UTC(), want)
	}
}

// systemd is the oracle: for each schedule, the elapse times that
// `systemd-analyze calendar` computes from the OnCalendar= expressions are
// exactly the times Next steps through, so the timer fires when Kubernetes'
// CronJob controller would.
func TestOnCalendarMatchesSystemd(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	const n = 12
	base := time.Date(2026, 2, 26, 23, 58, 0, 0, time.UTC) // across a month's end, before a leap-free February's end
	for _, schedule := range []string{
		"* * * * *", "*/7 * * * *", "0 */5 * * *", "15 10 * * 1-5", "0 0 29 * *", "0 12 13 * 5",
		"0 0 */10 * 0", "5 4 1,15 jan,mar,jul *", "@weekly", "@monthly", "0 22 * * sun", "59 23 31 * *",
	} {
		s, err := Parse(schedule)
		if err != nil {
			t.Fatalf("Parse(%q): %v", schedule, err)
		}
		for _, tz := range []string{"UTC", "Europe/Berlin"} {
			loc, err := time.LoadLocation(tz)
			if err != nil {
				t.Fatal(err)
			}
			checkWithSystemd(t, analyze, s, schedule, base, loc, n)
		}
	}
}

func checkWithSystemd(t *testing.T, analyze string, s *Schedule, schedule string, base time.Time, loc *time.Location, n int) {
	t.Helper()
	var want []time.Time
	at := base
	for range n {
		at = s.Next(at, loc)
		want = append(want, at)
	}
	var got []time.Time
	for _, expr := range s.OnCalendar(loc.String()) {
		cmd := exec.Command(analyze, "calendar", "--iterations", strconv.Itoa(n), "--base-time", base.Format("2006-01-02 15:04:05 UTC"), expr)
		cmd.Env = []string{"TZ=UTC", "SYSTEMD_COLORS=0"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze calendar %q: %v\n%s", expr, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			_, value, ok := strings.Cut(line, ": ")
			if !ok || !(strings.Contains(line, "Next elapse") || strings.Contains(line, "Iter. #")) {
				continue
			}
			tm, err := time.Parse("Mon 2006-01-02 15:04:05 MST", strings.TrimSpace(value))
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			got = append(got, tm)
		}
	}
	slices.SortFunc(got, func(a, b time.Time) int { return a.Compare(b) })
	got = slices.CompactFunc(got, func(a, b time.Time) bool { return a.Equal(b) })
	if len(got) < n || !slices.EqualFunc(got[:n], want, func(a, b time.Time) bool { return a.Equal(b) }) {
		t.Errorf("%q → %q:\nsystemd: %v\nNext:    %v", schedule, s.OnCalendar(loc.String()), got, want)
	}
}
