package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"

	"github.com/podunit/podunit/cni/service"
	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units/engine"
	"github.com/podunit/podunit/units/status"
)

// DefaultStatusSocket is where podunit-status.socket listens.
const DefaultStatusSocket = "/run/podunit/status.sock"

// runServe serves the read-only status API, in the kubelet's shapes: on the
// sockets systemd passes (podunit-status.socket), or on --socket when run by
// hand, and on readOnlyPort when the configuration sets one.
func newServeCommand() *cobra.Command {
	var configPath, socket, specDir string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "serve the read-only status API (podunit-status.service)",
		Long: `Serves GET /pods, /pods/NAMESPACE/NAME, /healthz and /metrics as the
kubelet's read-only API does, from the pods' units, specs and states: on the
sockets systemd passes (podunit-status.socket), or on --socket when run by
hand, and on readOnlyPort when the configuration sets one. Also /cronjobs
(a batch/v1 CronJobList), /services and /services/NAMESPACE/NAME (a v1
ServiceList and Services, with the ClusterIP and node ports the sync gave
each) and /endpointslices (a discovery.k8s.io/v1 EndpointSliceList: each
Service's endpoints, the pods its selector matches, ready or not).`,
		Args: exactArgs(0, "no arguments"),
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", DefaultConfigPath, "configuration file")
	f.StringVar(&socket, "socket", DefaultStatusSocket, "unix socket to listen on when systemd passes none")
	f.StringVar(&specDir, "spec-dir", DefaultSpecDir, "the pods' spec files")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		// A kubelet configuration's readOnlyPort is served too.
		cfg, _, err := loadConfigWithKubelet(configPath, f.Changed("config"), "")
		if err != nil {
			return err
		}
		return serve(cfg, socket, specDir)
	}
	return cmd
}

func serve(cfg Config, socket, specDir string) error {
	listeners, err := activation.Listeners()
	if err != nil {
		return fmt.Errorf("sockets from systemd: %w", err)
	}
	if len(listeners) == 0 {
		os.Remove(socket)
		l, err := net.Listen("unix", socket)
		if err != nil {
			return err
		}
		if err := os.Chmod(socket, 0o660); err != nil {
			return err
		}
		listeners = append(listeners, l)
	}
	if cfg.ReadOnlyPort != 0 {
		addr := net.JoinHostPort(cfg.readOnlyAddress(), strconv.Itoa(cfg.ReadOnlyPort))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("readOnlyPort: %w", err)
		}
		listeners = append(listeners, l)
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
	rt.Timeout = 2 * time.Second
	server := &status.Server{
		SpecDir: specDir, StateDir: podshim.DefaultStateDir, SyncState: engine.DefaultStatePath,
		Rollouts:   engine.Rollouts{Dir: engine.DefaultRolloutDir},
		ServiceDir: engine.DefaultServiceDir, ServiceTable: service.DefaultTablePath,
		Manager: conn, Runtime: rt, StatsMaxAge: status.DefaultStatsMaxAge, MaxAge: status.DefaultSnapshotMaxAge,
		NodeName: cfg.reader().Node.Name,
	}
	if err := server.Watch(ctx); err != nil {
		// Correct, only slower: every answer is built anew.
		fmt.Fprintf(os.Stderr, "podunit serve: %v; every answer reads the pods anew\n", err)
	}
	srv := &http.Server{Handler: server, ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { errs <- srv.Serve(l) }()
	}
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	case err := <-errs:
		return err
	}
}
