package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/units/engine"
)

// newCronRunCommand is what a CronJob's timer runs at each scheduled time.
// It is not for people, and hidden from the help.
func newCronRunCommand() *cobra.Command {
	var (
		configPath, specDir string
		c                   generator.CronJob
		concurrency         string
		deadline            int64
		successful, failed  int32
	)
	cmd := &cobra.Command{
		Use:    "cron-run [flags] TEMPLATE-SPEC",
		Short:  "start a CronJob's run (run by its timer's service)",
		Hidden: true,
		Long: `Run by a CronJob's timer (cronjob-<name>.timer starts cronjob-<name>.service),
never by hand. It starts the run for the latest scheduled time as a Job's
pod of its own, pod-<name>-<minutes>.service, unless that run started
already, its start is past startingDeadlineSeconds, or the previous run
still runs and concurrencyPolicy is Forbid (Replace stops it). Then it
removes the finished runs beyond the history limits.`,
		Args: exactArgs(1, "the CronJob template's spec file"),
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", DefaultConfigPath, "configuration file")
	f.StringVar(&specDir, "spec-dir", DefaultSpecDir, "where pod spec files are")
	f.StringVar(&c.Name, "cronjob", "", "the CronJob's name")
	f.StringVar(&c.Schedule, "schedule", "", "its schedule")
	f.StringVar(&c.TimeZone, "time-zone", "", "its time zone (default: local time)")
	f.StringVar(&concurrency, "concurrency-policy", string(batchv1.AllowConcurrent), "Allow, Forbid or Replace")
	f.Int64Var(&deadline, "starting-deadline-seconds", -1, "skip a run this late (-1: never)")
	f.Int32Var(&successful, "successful-jobs-history-limit", 3, "finished runs to keep")
	f.Int32Var(&failed, "failed-jobs-history-limit", 1, "failed runs to keep")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c.Concurrency = batchv1.ConcurrencyPolicy(concurrency)
		c.SuccessfulJobsHistoryLimit, c.FailedJobsHistoryLimit = successful, failed
		if deadline >= 0 {
			c.StartingDeadlineSeconds = &deadline
		}
		cfg, err := loadConfig(configPath, f.Changed("config"))
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
		return engine.CronRun(ctx, conn, cfg.unitConfig(specDir, conn), args[0], &c, time.Now(), newReporter(cmd.ErrOrStderr(), false))
	}
	return cmd
}
