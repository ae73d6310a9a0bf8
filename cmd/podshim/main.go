// Command podshim runs one pod for its systemd service (Type=notify): it is
// the ExecStart of every pod-*.service that `podunit sync` creates.
//
// Exit status: 0 after a requested stop (SIGTERM) tore the pod down, or when
// the pod finished and succeeded; 4 when the pod finished and failed (the
// unit's RestartPreventExitStatus= keeps it failed); 1 on any other failure,
// which systemd's Restart= answers by running podshim again to adopt the pod;
// 2 on bad usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/cni/service"
	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/hugepages"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/podshim/registry"
)

// steadyGCPercent is podshim's GOGC once its pod is started.
const steadyGCPercent = 50

const (
	exitFailure   = 1
	exitUsage     = 2
	exitPodFailed = podspec.ExitPodFailed // the unit stays failed (RestartPreventExitStatus)
)

func main() {
	// Before anything else: on a kernel that gives every process huge
	// pages, podshim starts over without them (one exec).
	if err := hugepages.Off(); err != nil {
		fmt.Fprintf(os.Stderr, "podshim: transparent huge pages stay on for the memory mapped at start: %v\n", err)
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	trace := &podshim.CallTrace{Main: time.Now(), MainMonotonic: monotonicMicros()}
	// podshim waits on one pod and never needs two CPUs: one P means
	// fewer runtime threads to wake and one set of per-P caches
	// (docs/benchmarks.md). GOMAXPROCS in the environment still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	a := podspec.Args{
		CRIEndpoint:  criclient.DefaultEndpoint,
		StateDir:     podshim.DefaultStateDir,
		LogRoot:      podshim.DefaultLogRoot,
		LogMaxSize:   podshim.DefaultLogMaxSize,
		LogMaxFiles:  podshim.DefaultLogMaxFiles,
		PodRoot:      podshim.DefaultPodRoot,
		VolumeRoot:   podshim.DefaultVolumeRoot,
		ServiceTable: service.DefaultTablePath,
		ResolvConf:   podshim.DefaultResolvConf(),
		AuthFile:     registry.DefaultAuthFile,
	}
	flags := a.Flags("podshim")
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	if a.Spec == "" || flags.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: podshim --spec FILE [flags]")
		flags.PrintDefaults()
		return exitUsage
	}
	// journald stamps every line; the unit name says which pod.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))

	configStart := time.Now()
	cfg := podshim.Config{
		CgroupParent:  a.CgroupParent,
		StateDir:      a.StateDir,
		LogRoot:       a.LogRoot,
		LogMaxSize:    a.LogMaxSize,
		LogMaxFiles:   a.LogMaxFiles,
		PodRoot:       a.PodRoot,
		VolumeRoot:    a.VolumeRoot,
		ServiceTable:  a.ServiceTable,
		ResolvConf:    a.ResolvConf,
		ClusterDomain: a.ClusterDomain,
		Host:          podshim.ReadHost(),

		FinishedRecord:  a.FinishedRecord,
		OfflineFallback: !a.PullOfflineFail,
		Trace:           trace,
		Serial:          benchBefore("podshim"),
	}
	if a.ClusterDNS != "" {
		cfg.ClusterDNS = []string{a.ClusterDNS}
	}
	var err error
	// The node's credentials and a rollback's pins: one that cannot be
	// read is said, and the pod runs without it (a pull that needs the
	// credentials then says why it failed).
	if cfg.Node, err = registry.ReadNode(a.AuthFile, a.CredentialProviders); err != nil {
		log.Error("the node's registry credentials are not used", "err", err)
	}
	if a.Pins != "" {
		if cfg.Pins, err = podspec.ReadPins(a.Pins); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Error("the images of the generation rolled back to are not pinned", "err", err)
		}
	}
	trace.Record("config", configStart)
	err = runPod(log, a.Spec, a.CRIEndpoint, cfg, a.RestartBackoff)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, podshim.ErrPodFailed):
		log.Warn("pod failed", "reason", err)
		return exitPodFailed
	default:
		log.Error("pod failed", "err", err)
		_, _ = daemon.SdNotify(false, "STATUS=Failed: "+err.Error())
		return exitFailure
	}
}

// runtimeWait is how long podshim waits for a runtime that does not answer
// at its start (restarted, or not yet up at boot) before it fails and
// leaves the pacing to systemd's restart back-off: a short outage costs a
// pod's start no more than the outage.
const runtimeWait = time.Minute

// waitRuntime asks the runtime for its version until it answers, once a
// second for up to runtimeWait, saying so in the unit's status.
func waitRuntime(ctx context.Context, rt *criclient.Client, endpoint string, log *slog.Logger, notify func(string) error) (*runtimeapi.VersionResponse, error) {
	deadline := time.Now().Add(runtimeWait)
	for logged := false; ; {
		v, err := rt.Version(ctx, "")
		if err == nil || ctx.Err() != nil {
			return v, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("CRI runtime at %s: %w", endpoint, err)
		}
		if !logged {
			log.Warn("waiting for the CRI runtime", "endpoint", endpoint, "err", err)
			logged = true
		}
		_ = notify(fmt.Sprintf("STATUS=Waiting for the CRI runtime at %s: %v\nEXTEND_TIMEOUT_USEC=%d", endpoint, err, (2 * runtimeWait).Microseconds()))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func runPod(log *slog.Logger, specPath, endpoint string, cfg podshim.Config, restartBackoff bool) (err error) {
	specStart := time.Now()
	pod, err := podspec.ReadSpec(specPath)
	if err != nil {
		return err
	}
	// SIGTERM (systemctl stop) and SIGINT ask for a graceful stop.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// A failure systemd answers with a restart: the next podshim waits
	// out the back-off (waitRestartBackoff). A stop that failed (its
	// teardown: the sync's collector removes what is left) has no next
	// podshim, and leaves no mark.
	defer func() {
		if err != nil && ctx.Err() == nil && !errors.Is(err, podshim.ErrPodFailed) && cfg.StateDir != "" && os.MkdirAll(cfg.StateDir, 0o755) == nil {
			_ = os.WriteFile(podshim.FailedMarkPath(cfg.StateDir, pod.Namespace, pod.Name), nil, 0o600)
		}
	}()
	if cfg.Objects, err = podspec.ReadObjects(specPath); err != nil {
		return err
	}
	cfg.Trace.Record("spec", specStart)
	log = log.With("pod", pod.Namespace+"/"+pod.Name)
	if journal.Enabled() {
		cfg.Logs = newJournalWriter(journalSocket, pod).send
	} else {
		log.Warn("journald is not reachable: container output stays in the runtime's log files only")
	}

	dialStart := time.Now()
	rt, err := criclient.New(endpoint)
	if err != nil {
		return err
	}
	defer rt.Close()
	cfg.Trace.Record("dial", dialStart)

	notify := func(state string) error {
		_, err := daemon.SdNotify(false, state)
		return err
	}
	if restartBackoff {
		waitRestartBackoff(ctx, log, notify, cfg.StateDir, pod.Namespace, pod.Name)
	}
	// A stop during the connection check still goes through Run, which tears
	// down whatever an earlier podshim left.
	versionStart := time.Now()
	v, err := waitRuntime(ctx, rt, endpoint, log, notify)
	cfg.Trace.Record("Version", versionStart)
	if err != nil && ctx.Err() == nil {
		return err
	}
	if v != nil {
		cfg.RuntimeName = v.RuntimeName
	}
	// Go's collector lets the heap grow to 4 MB before its first cycle and
	// between cycles at GOGC=100: podshim's start allocates less than that
	// and never collects, but a running pod's output and keepalives fill it
	// up in the end. Once the pod is up, a target of half the default keeps
	// a long-running podshim's heap at about 2 MB (docs/benchmarks.md).
	// GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		cfg.Started = func() { debug.SetGCPercent(steadyGCPercent) }
	}
	return podshim.New(pod, cfg, podshim.Traced(rt, cfg.Trace), notify, log).Run(ctx)
}

// monotonicMicros is CLOCK_MONOTONIC in microseconds, the clock of
// systemd's *TimestampMonotonic: the start trace's anchor.
func monotonicMicros() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return ts.Nano() / 1000
}

// benchBefore tells whether PODUNIT_BENCH_BEFORE (a comma-separated list)
// names what: make bench's start trace puts a part of the start path back
// as it was before it was made faster (docs/benchmarks.md), to measure
// both in one run. Not for anything else.
func benchBefore(what string) bool {
	return slices.Contains(strings.Split(os.Getenv("PODUNIT_BENCH_BEFORE"), ","), what)
}
