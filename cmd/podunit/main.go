// Command podunit runs Kubernetes Pod manifests as systemd units.
//
// Its commands are cobra commands, one constructor per file (newSyncCommand
// in sync.go, …), so that the help, the man pages (podunit man) and the
// shell completions (podunit completion) come from the same definitions.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
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

// usageError is a command line podunit cannot run: exit status 2, with a
// pointer to the command's help.
func usageError(cmd *cobra.Command, format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf("%s\nRun '%s --help' for usage.", fmt.Sprintf(format, args...), cmd.CommandPath())}
}

// exactArgs and minArgs check positional arguments as usage errors.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError(cmd, "%s takes %s", cmd.CommandPath(), what)
		}
		return nil
	}
}

func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError(cmd, "%s takes %s", cmd.CommandPath(), what)
		}
		return nil
	}
}

// Command groups in the help.
const (
	groupPods     = "pods"
	groupManifest = "manifests"
	groupService  = "services"
)

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "podunit",
		Short: "run Kubernetes Pod manifests as systemd units",
		Long: `podunit runs Kubernetes Pod manifests as systemd units.

Drop a manifest into /etc/podunit/manifests: podunit.path notices, and
'podunit sync' gives the pod a unit, pod-NAME.service, which systemctl starts,
stops and shows, and whose output journalctl -u shows. The status API
(podunit-status.socket) serves the pods in the kubelet's read-only shapes;
'podunit get pods' and 'podunit describe pod' read it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError(cmd, "%v", err) })
	root.AddGroup(
		&cobra.Group{ID: groupPods, Title: "Pods:"},
		&cobra.Group{ID: groupManifest, Title: "Manifests:"},
		&cobra.Group{ID: groupService, Title: "Services (run by podunit's systemd units):"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add(groupPods, newGetCommand(), newDescribeCommand(), newLogsCommand(), newExecCommand(),
		newRestartCommand(), newVolumeCommand())
	add(groupManifest, newApplyCommand(), newDeleteCommand(), newValidateCommand(), newExplainCommand(), newRenderCommand(), newImportCommand())
	add(groupService, newSyncCommand(), newFetchCommand(), newServeCommand(), newProxyCommand(), newDNSCommand(), newImagesCommand(), newAutoUpdateCommand())
	root.AddCommand(newDoctorCommand(), newVersionCommand(), newManCommand(), newHandoffCommand(), newCronRunCommand())
	root.SetHelpCommandGroupID("")
	root.SetCompletionCommandGroupID("")
	return root
}

// mainStarted is when main began (the Go runtime and every package
// initialised): a sync's timings line says how long after it the pass began.
var mainStarted time.Time

func main() {
	mainStarted = time.Now()
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
	root := newRootCommand(stdout, stderr)
	if len(args) == 0 {
		root.Usage()
		return &exitError{exitUsage, errors.New("")}
	}
	root.SetArgs(args)
	err := root.Execute()
	var ee *exitError
	if err != nil && !errors.As(err, &ee) && strings.HasPrefix(err.Error(), "unknown command") {
		return &exitError{exitUsage, err}
	}
	return err
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "podunit %s (commit %s)\n", version, commit)
			return nil
		},
	}
}
