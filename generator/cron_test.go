package generator

import (
	"slices"
	"strings"
	"testing"
)

// Cron schedules become systemd calendar expressions that fire at the same
// times (checked against systemd-analyze calendar by hand for these).
func TestCalendarSpecs(t *testing.T) {
	for schedule, want := range map[string][]string{
		"* * * * *":          {"*-*-* *:*:00"},
		"*/1 * * * *":        {"*-*-* *:00,01,02,03,04,05,06,07,08,09,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59:00"},
		"*/15 * * * *":       {"*-*-* *:00,15,30,45:00"},
		"0 3 * * *":          {"*-*-* 03:00:00"},
		"30 2 * * 1-5":       {"Mon,Tue,Wed,Thu,Fri *-*-* 02:30:00"},
		"0 0 1,15 * *":       {"*-*-01,15 00:00:00"},
		"0 0 * JAN,jul 0":    {"Sun *-01,07-* 00:00:00"},
		"0 12 * * 7":         {"Sun *-*-* 12:00:00"},
		"5 4 1 * MON":        {"*-*-01 04:05:00", "Mon *-*-* 04:05:00"},
		"@hourly":            {"*-*-* *:00:00"},
		"@daily":             {"*-*-* 00:00:00"},
		"10-20/5 8-10 * * *": {"*-*-* 08,09,10:10,15,20:00"},
	} {
		got, err := CalendarSpecs(schedule, "")
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %q %v, want %q", schedule, got, err, want)
		}
	}
	if got, _ := CalendarSpecs("0 9 * * *", "Europe/Berlin"); !slices.Equal(got, []string{"*-*-* 09:00:00 Europe/Berlin"}) {
		t.Errorf("time zone: %q", got)
	}
	for schedule, msg := range map[string]string{
		"* * * *":               "five fields",
		"60 * * * *":            "minute: \"60\": must be a number from 0 to 59",
		"* * * FOO *":           "month",
		"*/0 * * * *":           "step",
		"CRON_TZ=UTC 0 * * * *": "spec.timeZone",
		"5-1 * * * *":           "ends before it starts",
	} {
		if _, err := CalendarSpecs(schedule, ""); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", schedule, err, msg)
		}
	}
}
