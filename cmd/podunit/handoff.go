package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/criclient/archive"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/registry"
	"github.com/podunit/podunit/units/bus"
	"github.com/podunit/podunit/units/engine"
)

// handoffTimeout bounds a hand-off: a rollout waits for each replica to be
// ready (each unit's own start timeout bounds that wait too).
const handoffTimeout = time.Hour

// newHandoffCommand is what sync's hand-off units run: sync never waits for
// a pod, so the second half of a replacement is theirs. It is not for
// people, and hidden from the help.
func newHandoffCommand() *cobra.Command {
	var (
		configPath, specDir, gone string
		ready                     []string
		rolling, resume, stopped  bool
		trigger                   string
	)
	cmd := &cobra.Command{
		Use:    "handoff [SPEC...]",
		Short:  "start pods' new generations once the old ones stopped (run by sync's hand-off units)",
		Hidden: true,
		Long: `Run by the hand-off units podunit sync queues (podunit-handoff-*.service,
podunit-rollout-*.service), never by hand. Without --rolling it pulls the
images of the spec files given while their old generations run,
then stops those and starts the new ones; a new generation that replaced a
ready one must be ready within its rollout deadline, or the old one runs
again (RolledBack). With --rolling it replaces a workload's replicas (or starts a
StatefulSet's pods) one at a time: each stopped, started and ready before
the next. A spec file that a later sync removed is skipped, and a sync is
queued to carry on. With --gone UNIT (a removed pod's hand-off) it waits
for UNIT to stop, then queues a sync, which collects the pod's slice and
spec files. With --ready UNIT it first waits for UNIT to be active (a pod
annotated podunit.io/after). With --resume it carries on replacements that
were cut short (a hand-off killed, the machine down): the generation wanted
goes through the readiness gate again, running or not, against the last
ready generation the replacement's record keeps.`,
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", DefaultConfigPath, "configuration file")
	f.StringVar(&specDir, "spec-dir", DefaultSpecDir, "where pod spec files are")
	f.BoolVar(&rolling, "rolling", false, "replace the pods one at a time, each ready before the next")
	f.BoolVar(&resume, "resume", false, "carry on replacements that were cut short (a hand-off killed, the machine down) from their records")
	f.BoolVar(&stopped, strings.TrimPrefix(bus.StoppedFlag, "--"), false, "run as the hand-off's ExecStopPost=: queue a sync unless the hand-off ended as it should ($SERVICE_RESULT)")
	f.StringVar(&gone, "gone", "", "a removed pod's unit: wait for it to stop, then queue a sync")
	f.StringVar(&trigger, "trigger", engine.TriggerManifest, "why the pods are replaced: manifest or auto-update")
	f.StringArrayVar(&ready, "ready", nil, "a unit to wait for to be active (ready) before starting (podunit.io/after)")
	cmd.RunE = func(cmd *cobra.Command, specs []string) error {
		ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer cancel()
		if stopped {
			// Before the configuration: a broken one must not keep the
			// sync from carrying on.
			return queueSyncAfterKill(ctx, cmd)
		}
		cfg, _, err := loadConfigWithKubelet(configPath, cmd.Flags().Changed("config"), "")
		if err != nil {
			return err
		}
		ctx, cancelTimeout := context.WithTimeout(ctx, handoffTimeout)
		defer cancelTimeout()
		conn, err := dbus.NewSystemConnectionContext(ctx)
		if err != nil {
			return fmt.Errorf("connect to systemd: %w", err)
		}
		defer conn.Close()
		report := newReporter(cmd.ErrOrStderr(), false)
		if gone != "" {
			if err := bus.WaitStopped(ctx, conn, gone); err != nil {
				return err
			}
			return bus.QueueStart(ctx, conn, engine.SyncUnit)
		}
		rt, err := criclient.New(cfg.CRIEndpoint)
		if err != nil {
			return err
		}
		defer rt.Close()
		r := &engine.Replacer{
			Manager:    conn,
			Images:     rt,
			Containers: rt,
			UnitConfig: cfg.unitConfig(specDir, conn),
			Rollouts:   engine.Rollouts{Dir: engine.DefaultRolloutDir},
			StateDir:   podshim.DefaultStateDir,
			Report:     report,
		}
		// Which runtime pins a rollback's images, asked briefly: a runtime
		// that does not answer now is waited for by the pulls.
		vctx, vcancel := context.WithTimeout(ctx, 3*time.Second)
		if v, err := rt.Version(vctx, ""); err == nil {
			r.Pin = archive.Importer{Runtime: v.RuntimeName, Address: strings.TrimPrefix(cfg.CRIEndpoint, "unix://")}.Pin
		}
		vcancel()
		if r.Node, err = registry.ReadNode(cfg.authFile(), registry.DefaultProvidersPath); err != nil {
			report.Errorf("the node's registry credentials are not used: %v", err)
		}
		return engine.Handoff(ctx, r, engine.Job{Specs: specs, Rolling: rolling, Trigger: trigger, Resume: resume, After: ready})
	}
	return cmd
}

// queueSyncAfterKill is a hand-off's ExecStopPost=: a hand-off that ended
// on its own queued its sync; one killed (SIGKILL, the OOM killer) could
// not, and its replacement, cut short, waits for the sync to carry it on.
func queueSyncAfterKill(ctx context.Context, cmd *cobra.Command) error {
	if os.Getenv("SERVICE_RESULT") == "success" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to systemd: %w", err)
	}
	defer conn.Close()
	fmt.Fprintf(cmd.ErrOrStderr(), "the hand-off ended with %s (%s %s): a sync carries on what it left\n", os.Getenv("SERVICE_RESULT"), os.Getenv("EXIT_CODE"), os.Getenv("EXIT_STATUS"))
	return bus.QueueStart(ctx, conn, engine.SyncUnit)
}
