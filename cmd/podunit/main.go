// Command podunit runs Kubernetes Pod manifests as systemd units.
//
//	podunit sync      reconcile the pod units with the manifest directory
//	podunit fetch     fetch manifestURL (podunit-fetch.service)
//	podunit validate  check manifests as sync would, without running anything
//	podunit render    print the unit a manifest becomes
//	podunit serve     serve the read-only status API
//	podunit volume    list or remove the claims' directories
//	podunit version   print the version
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Set at build time (Makefile: -ldflags -X).
var (
	version = "dev"
	commit  = "unknown"
	// podshimPath is $(PREFIX)/libexec/podunit/podshim.
	podshimPath = "/usr/local/libexec/podunit/podshim"
)

// exitError carries an exit status out of run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Exit statuses.
const (
	exitFailure = 1
	exitUsage   = 2
	// exitInvalid: some manifests were invalid; everything valid was synced.
	exitInvalid = 3
)

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"sync", "reconcile the pod units with the manifest directory", runSync},
	{"get", "list pods as kubectl does: get pods [-A] [-o wide|json|yaml|name]", runGet},
	{"logs", "a pod's container output from the journal: logs NAME [-c C] [-f] [--tail N]", runLogs},
	{"restart", "restart a pod's unit: restart NAME", runRestart},
	{"fetch", "fetch manifestURL into the set sync runs (podunit-fetch.service)", runFetch},
	{"validate", "check manifests as sync would, without running anything", runValidate},
	{"render", "print the systemd unit a manifest becomes", runRender},
	{"serve", "serve the read-only status API (podunit-status.service)", runServe},
	{"volume", "list or remove the PersistentVolumeClaims' directories", runVolume},
	{"version", "print the version", runVersion},
}

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(os.Stderr, "podunit: %s\n", msg)
	}
	os.Exit(code)
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return &exitError{exitUsage, errors.New("")}
		}
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return &exitError{exitUsage, fmt.Errorf("unknown command %q", args[0])}
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("podunit runs Kubernetes Pod manifests as systemd units.\n\nUsage: podunit COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'podunit COMMAND -h' for a command's flags.\n")
	io.WriteString(w, b.String())
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "podunit %s (commit %s)\n", version, commit)
	return nil
}

// newLogger logs for journald: no timestamps (the journal adds them).
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}
