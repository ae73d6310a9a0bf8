package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/registry"
	"github.com/podunit/podunit/units/engine"
)

func newAutoUpdateCommand() *cobra.Command {
	var configPath, specDir string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "auto-update",
		Short: "update the pods whose images' tags name new images",
		Long: `Checks the running pods annotated podunit.io/auto-update (or podman's
io.containers.autoupdate; per container: auto-update.podunit.io/NAME,
io.containers.autoupdate/NAME):

  registry  asks the image's registry for the digest its tag names now
            (with the pod's image pull Secrets and /etc/podunit/auth.json);
  local     compares with the image the tag names on this machine (an
            archive imported from the images directory, a pull by hand).

For each pod with a changed image, the new image is pulled while the pod
runs, then a hand-off replaces the pod through the same gate as a manifest
edit: the new pod must be ready within podunit.io/rollout-deadline and stay
ready for podunit.io/min-ready-seconds, or the pod runs again on the image
IDs it ran before (RolledBack), until its manifest changes or its tag names
yet another image. podunit-auto-update.timer runs it daily.

With --dry-run nothing is pulled or replaced: it lists what would change.

Output: one line a container: POD, CONTAINER, IMAGE, POLICY and UPDATED
(false, pending with --dry-run, true, rolled back, failed, skipped).
Exit status: 0, or 1 when a check, pull or replacement failed.`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&configPath, "config", DefaultConfigPath, "configuration file")
	cmd.Flags().StringVar(&specDir, "spec-dir", DefaultSpecDir, "where pod spec files are")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be updated, change nothing")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, _, err := loadConfigWithKubelet(configPath, cmd.Flags().Changed("config"), "")
		if err != nil {
			return err
		}
		ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer cancel()
		conn, err := dbus.NewSystemConnectionContext(ctx)
		if err != nil {
			return fmt.Errorf("connect to systemd: %w", err)
		}
		defer conn.Close()
		rt, err := criclient.New(cfg.CRIEndpoint)
		if err != nil {
			return err
		}
		defer rt.Close()
		self, err := os.Executable()
		if err != nil {
			return err
		}
		report := newReporter(cmd.ErrOrStderr(), false)
		a := &engine.AutoUpdater{
			Manager:    conn,
			Images:     rt,
			Resolver:   registry.Resolver{},
			UnitConfig: cfg.unitConfig(specDir, conn),
			Rollouts:   engine.Rollouts{Dir: engine.DefaultRolloutDir},
			StateDir:   podshim.DefaultStateDir,
			HandoffCmd: []string{self, "handoff", "--config", configPath, "--spec-dir", specDir},
			Report:     report,
		}
		if a.Node, err = registry.ReadNode(cfg.authFile(), registry.DefaultProvidersPath); err != nil {
			report.Errorf("the node's registry credentials are not used: %v", err)
		}
		updates, err := a.Run(ctx, dryRun)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, "POD\tCONTAINER\tIMAGE\tPOLICY\tUPDATED")
		failed := 0
		for _, u := range updates {
			word := "false"
			switch {
			case u.Err != nil:
				word, failed = "failed: "+u.Err.Error(), failed+1
			case u.Skipped != "":
				word = "skipped: " + u.Skipped
			case u.Changed && dryRun:
				word = "pending"
			case u.Changed && u.Result == "updated":
				word = "true"
			case u.Changed && u.Result == "unchanged":
				word = "false"
			case u.Changed:
				word = u.Result
				if len(word) >= 7 && word[:7] == "failed:" {
					failed++
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Pod, u.Container, u.Image, u.Policy, word)
		}
		tw.Flush()
		if failed > 0 {
			return &exitError{exitFailure, fmt.Errorf("%d auto-update(s) failed", failed)}
		}
		return nil
	}
	return cmd
}
