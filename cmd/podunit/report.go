package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// reporter writes podunit's messages for people: plain lines on a terminal,
// and under systemd with the journal's priority prefix ("<3>" for errors) so
// that `journalctl -p err -u podunit-sync` shows exactly the problems.
type reporter struct {
	w       io.Writer
	journal bool // stderr is connected to journald
	verbose bool
	errors  int
}

func newReporter(w io.Writer, verbose bool) *reporter {
	return &reporter{w: w, journal: os.Getenv("JOURNAL_STREAM") != "", verbose: verbose}
}

func (r *reporter) print(priority int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, line := range strings.Split(msg, "\n") {
		if r.journal {
			fmt.Fprintf(r.w, "<%d>%s\n", priority, line)
		} else {
			fmt.Fprintln(r.w, line)
		}
	}
}

// Errorf reports a problem the user has to act on.
func (r *reporter) Errorf(format string, args ...any) {
	r.errors++
	r.print(3, "error: "+format, args...)
}

// Noticef reports what podunit accepted without acting on it (journal
// priority notice).
func (r *reporter) Noticef(format string, args ...any) { r.print(5, format, args...) }

// Infof reports a change.
func (r *reporter) Infof(format string, args ...any) { r.print(6, format, args...) }

// Debugf reports what -v asks for: skipped files, unchanged pods.
func (r *reporter) Debugf(format string, args ...any) {
	if r.verbose {
		r.print(7, format, args...)
	}
}
