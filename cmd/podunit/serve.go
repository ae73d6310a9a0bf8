package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units/engine"
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
hand, and on readOnlyPort when the configuration sets one.`,
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
	status := &statusServer{
		specDir: specDir, stateDir: podshim.DefaultStateDir, syncState: engine.DefaultStatePath,
		manager: conn, runtime: rt, statsMaxAge: statsMaxAge, maxAge: snapshotMaxAge,
	}
	if err := status.watch(ctx); err != nil {
		// Correct, only slower: every answer is built anew.
		fmt.Fprintf(os.Stderr, "podunit serve: %v; every answer reads the pods anew\n", err)
	}
	srv := &http.Server{Handler: status, ReadHeaderTimeout: 10 * time.Second}
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

// versioner is the runtime's liveness check.
type versioner interface {
	Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error)
}

func (s *statusServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "read-only API: GET only", http.StatusMethodNotAllowed)
		return
	}
	switch path := strings.Trim(r.URL.Path, "/"); {
	case path == "pods":
		snap, err := s.snapshot(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(snap.list)))
		w.Write(snap.list)
	case strings.HasPrefix(path, "pods/"):
		ns, name, ok := strings.Cut(strings.TrimPrefix(path, "pods/"), "/")
		if !ok {
			http.Error(w, "GET /pods/NAMESPACE/NAME", http.StatusNotFound)
			return
		}
		snap, err := s.snapshot(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for _, c := range snap.pods {
			if c.pod.Namespace == ns && c.pod.Name == name {
				w.Header().Set("Content-Type", "application/json")
				w.Write(c.json)
				io.WriteString(w, "\n")
				return
			}
		}
		http.Error(w, fmt.Sprintf("pod %s/%s not found", ns, name), http.StatusNotFound)
	case path == "healthz", path == "healthz/ping":
		s.healthz(w, r, path == "healthz/ping")
	case path == "metrics":
		s.metrics().ServeHTTP(w, r)
	default:
		http.Error(w, "not found: the read-only API serves /pods, /pods/NAMESPACE/NAME, /healthz and /metrics", http.StatusNotFound)
	}
}

// healthz answers as the kubelet's: "ok", or with ?verbose a line a check
// ([+]name ok / [-]name failed: reason) and HTTP 500 when one failed.
func (s *statusServer) healthz(w http.ResponseWriter, r *http.Request, pingOnly bool) {
	type check struct {
		name string
		err  error
	}
	checks := []check{{"ping", nil}}
	if !pingOnly {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		_, err := s.runtime.Version(ctx, "")
		checks = append(checks, check{"runtime", err})
		checks = append(checks, check{"syncloop", syncHealth(s.syncState, time.Now())})
	}
	healthy := true
	var b strings.Builder
	for _, c := range checks {
		if c.err != nil {
			healthy = false
			fmt.Fprintf(&b, "[-]%s failed: %v\n", c.name, c.err)
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", c.name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !healthy {
		w.WriteHeader(http.StatusInternalServerError)
		b.WriteString("healthz check failed\n")
	} else {
		b.WriteString("healthz check passed\n")
	}
	if _, verbose := r.URL.Query()["verbose"]; verbose || !healthy {
		io.WriteString(w, b.String())
		return
	}
	io.WriteString(w, "ok")
}

// syncStale is how old the last sync may be: the timer runs one every 20 s.
const syncStale = 2 * time.Minute

// syncHealth tells whether syncs run and succeed.
func syncHealth(path string, now time.Time) error {
	st, err := engine.ReadState(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no sync has run yet (systemctl start podunit-sync)")
	case err != nil:
		return err
	case now.Sub(st.Time) > syncStale:
		return fmt.Errorf("the last sync ran %s ago (is podunit-sync.timer running?)", now.Sub(st.Time).Round(time.Second))
	case st.Failed > 0:
		return fmt.Errorf("%d pod unit(s) could not be synced (journalctl -u podunit-sync)", st.Failed)
	}
	return nil
}
