package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"

	"github.com/podunit/podunit/cni"
	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/podshim/registry"
	"github.com/podunit/podunit/units/bus"
	"github.com/podunit/podunit/units/engine"
)

// DefaultSpecDir holds the pod spec files that podshim reads.
const DefaultSpecDir = "/run/podunit/specs"

func newSyncCommand() *cobra.Command {
	var (
		configPath, manifestDir, specDir, kubeletConfig, urlCache string
		verbose                                                   bool
		settle, timeout                                           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "reconcile the pod units with the manifest directory",
		Long: `Starts a unit for each new pod, replaces the unit of each changed pod, stops
the units of removed pods and leaves every other unit alone.

podunit.path runs it (as podunit-sync.service) when a manifest changes, and
podunit-sync.timer every 20 s. Exit status 3: some manifests are invalid;
everything valid was synced, and pods of invalid manifests keep their last
good spec.`,
		Args: exactArgs(0, "no arguments"),
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", DefaultConfigPath, "configuration file")
	f.StringVar(&manifestDir, "manifest-dir", "", "manifest directory (default: manifestDir from the configuration, /etc/podunit/manifests)")
	f.StringVar(&specDir, "spec-dir", DefaultSpecDir, "where pod spec files for podshim are written")
	f.BoolVarP(&verbose, "verbose", "v", false, "also report skipped files and unchanged pods")
	f.StringVar(&kubeletConfig, "kubelet-config", "", "a kubelet's KubeletConfiguration whose staticPodPath, staticPodURL, staticPodURLHeader and containerRuntimeEndpoint to use (config key kubeletConfig)")
	f.StringVar(&urlCache, "url-cache", DefaultURLCache, "where 'podunit fetch' keeps manifestURL's answer")
	f.DurationVar(&settle, "settle", engine.SettleQuiet, "read the manifest directory once it held still this long (0: at once)")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long (stopping pods waits for their grace periods)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		debug.SetGCPercent(engine.GCPercent)
		cfg, notes, err := loadConfigWithKubelet(configPath, f.Changed("config"), kubeletConfig)
		if err != nil {
			return err
		}
		report := newReporter(cmd.ErrOrStderr(), verbose)
		for _, n := range notes {
			report.Debugf("%s", n)
		}
		if manifestDir != "" {
			cfg.ManifestDir = manifestDir
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		common := []string{"--config", configPath, "--spec-dir", specDir}
		handoff := append([]string{self, "handoff"}, common...)
		cronRun := append([]string{self, "cron-run"}, common...)
		cfg.path = configPath
		return runSync(cfg, specDir, urlCache, settle, timeout, handoff, cronRun, report)
	}
	return cmd
}

// packagedWatch are the directories podunit.path watches as packaged.
var packagedWatch = []string{"/etc/podunit/manifests", DefaultURLCache}

func runSync(cfg Config, specDir, urlCache string, settle, timeout time.Duration, handoff, cronRun []string, report *reporter) error {
	var err error
	// Absolute, so that every unit's SourcePath names its manifest.
	if cfg.ManifestDir, err = filepath.Abs(cfg.ManifestDir); err != nil {
		return err
	}
	for i, d := range cfg.ManifestDirs {
		if cfg.ManifestDirs[i], err = filepath.Abs(d); err != nil {
			return err
		}
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	defer cancelTimeout()

	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to systemd: %w", err)
	}
	defer conn.Close()
	dirs := append([]string{cfg.ManifestDir}, cfg.ManifestDirs...)
	var watch func(context.Context)
	if os.Getenv("INVOCATION_ID") != "" { // run by systemd (podunit-sync.service), not by hand
		watch = func(ctx context.Context) {
			manifests := bus.ManifestWatch(packagedWatch)
			manifests.Paths = bus.WatchPaths(dirs)
			images := bus.ImagesWatch([]string{DefaultImagesDir})
			if cfg.ImagesDir != "" {
				if dir, err := filepath.Abs(cfg.ImagesDir); err == nil {
					images.Paths = []string{dir}
				}
			}
			changed, err := bus.Watch(ctx, conn, manifests, images)
			if err != nil {
				report.Errorf("changes in %s are picked up by the periodic relist only, and image archives in %s by podunit images import: %v",
					strings.Join(manifests.Paths, ", "), strings.Join(images.Paths, ", "), err)
			}
			for _, w := range []bus.PathWatch{manifests, images} {
				if slices.Contains(changed, w.Unit) {
					report.Infof("%s now watches %s", w.Unit, strings.Join(w.Paths, ", "))
				}
			}
		}
	}

	// The credential provider plugins, for podshim and the hand-offs: a
	// configuration that cannot be read keeps the last one written.
	if providers, err := cfg.providers(); err != nil {
		report.Errorf("%v", err)
	} else if err := registry.WriteProviders(registry.DefaultProvidersPath, providers); err != nil {
		report.Errorf("credential provider plugins: %v", err)
	}

	services, err := cfg.serviceConfig(cni.DefaultConfDir)
	if err != nil {
		return err
	}
	services.NodeIPs = nodeIPv4s(podshim.ReadHost().IPs)
	s := &engine.Syncer{
		Services:   services,
		Watch:      watch,
		HandoffCmd: handoff,
		CronRunCmd: cronRun,
		Sources:    cfg.sources(urlCache),
		Reader:     cfg.reader(),
		PodRoot:    podshim.DefaultPodRoot,
		LogRoot:    podshim.DefaultLogRoot,
		Jobs:       engine.JobRecords{Dir: podspec.DefaultJobDir},
		Rollouts:   engine.Rollouts{Dir: engine.DefaultRolloutDir},
		StatePath:  engine.DefaultStatePath,
		Quiet:      settle,
		Main:       mainStarted,
		// make bench's "before": the sync always waits for the
		// directories to hold still, as it did (docs/benchmarks.md).
		AlwaysSettle: slices.Contains(strings.Split(os.Getenv("PODUNIT_BENCH_BEFORE"), ","), "settle"),
		UnitConfig:   cfg.unitConfig(specDir, conn),
		Manager:      conn,
		Report:       report,
	}
	rt, err := criclient.New(cfg.CRIEndpoint)
	if err != nil {
		return err
	}
	defer rt.Close()
	rt.Timeout = 30 * time.Second
	s.Runtime, s.Images = rt, rt
	// Asked briefly: a runtime that does not answer (restarting) must not
	// hold up the sync; admission then does not check its features.
	vctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	v, err := rt.Version(vctx, "")
	cancel()
	if err == nil {
		// What admission checks of the runtime (hostUsers: false, image
		// volumes).
		s.Reader.Node.Runtime = v.RuntimeName + " " + v.RuntimeVersion
		s.Reader.Node.UserNamespaces = generator.RuntimeSupportsUserNamespaces(v.RuntimeName, v.RuntimeVersion)
		s.Reader.Node.ImageVolumes = generator.RuntimeSupportsImageVolumes(v.RuntimeName, v.RuntimeVersion)
	}
	res, err := s.Run(ctx)
	switch {
	case err != nil:
		return err
	case res.Failed > 0:
		return &exitError{exitFailure, fmt.Errorf("%d pod unit(s) could not be synced", res.Failed)}
	case res.Invalid > 0:
		return &exitError{exitInvalid, fmt.Errorf("%d manifest problem(s); valid pods were synced", res.Invalid)}
	}
	return nil
}

// nodeIPv4s are the node's IPv4 addresses among ips, sorted: where its
// LoadBalancer Services answer (k3s's ServiceLB reports a node's IPv4
// addresses for an IPv4 Service).
func nodeIPv4s(ips []string) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil && a.Is4() {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
