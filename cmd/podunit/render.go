package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
	"github.com/podunit/podunit/units/engine"
)

func newRenderCommand() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "render FILE",
		Short: "print the systemd unit a manifest becomes",
		Long: `Prints the systemd unit(s) a manifest becomes, as unit-file text: the same
settings sync gives the transient unit over D-Bus. A CronJob becomes a timer
and its service, and each run a pod unit, shown for the next scheduled time.
FILE "-" is standard input. The units are this machine's: with RestartSteps=
where its systemd (254 and later) takes it.`,
		Args: exactArgs(1, "one manifest file"),
	}
	cmd.Flags().StringVar(&configPath, "config", DefaultConfigPath, "configuration file")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := loadConfig(configPath, cmd.Flags().Changed("config"))
		if err != nil {
			return err
		}
		pods, err := decodeFile(args[0])
		if err != nil {
			return &exitError{exitInvalid, err}
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cronRun := []string{self, "cron-run", "--config", configPath, "--spec-dir", DefaultSpecDir}
		// This machine's systemd, if it answers: what its version takes.
		var manager bus.Inspector
		if conn, err := dbus.NewSystemConnectionContext(cmd.Context()); err == nil {
			defer conn.Close()
			manager = conn
		}
		return renderUnits(cmd.OutOrStdout(), cfg.unitConfig(DefaultSpecDir, manager), pods, cronRun, time.Now())
	}
	return cmd
}

func renderUnits(stdout io.Writer, ucfg generator.UnitConfig, pods []*generator.Pod, cronRun []string, now time.Time) error {
	for i, p := range pods {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if p.Cron != nil {
			var err error
			if p, err = renderTimer(stdout, ucfg, p, cronRun, now); err != nil {
				return err
			}
			if p == nil {
				continue
			}
		}
		u, err := generator.Unit(ucfg, p)
		if err != nil {
			return err
		}
		text, err := u.Render()
		if err != nil {
			return err
		}
		io.WriteString(stdout, text)
	}
	return nil
}

// renderTimer prints a CronJob's timer and its service, and returns the
// pod of its next run (nil when there is none), for the caller to print.
func renderTimer(stdout io.Writer, ucfg generator.UnitConfig, p *generator.Pod, cronRun []string, now time.Time) (*generator.Pod, error) {
	hash, err := generator.CronHash(p)
	if err != nil {
		return nil, err
	}
	calendar, err := p.Cron.OnCalendar()
	if err != nil {
		return nil, err
	}
	t := &units.Timer{Namespace: p.Namespace(), CronJob: p.Name(), ConfigHash: hash, Source: p.Source, OnCalendar: calendar,
		ExecStart: engine.CronRunArgv(cronRun, p.Cron, generator.CronSpecPath(ucfg, p.Namespace(), p.Name(), hash))}
	text, err := t.Render()
	if err != nil {
		return nil, err
	}
	io.WriteString(stdout, text)
	if p.Cron.Suspend {
		fmt.Fprintf(stdout, "\n# CronJob %s is suspended: sync starts no timer for it.\n", p.Key())
		return nil, nil
	}
	next, err := p.Cron.Next(now)
	if err != nil || next.IsZero() {
		return nil, nil
	}
	fmt.Fprintf(stdout, "\n# Each run is a pod unit of its own; the next, for %s:\n", next.Format(time.RFC3339))
	return p.Run(next)
}
