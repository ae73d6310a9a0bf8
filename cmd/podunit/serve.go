package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/dbus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

// DefaultStatusSocket is where podunit-status.socket listens.
const DefaultStatusSocket = "/run/podunit/status.sock"

// runServe serves the read-only status API, in the kubelet's shapes: on the
// sockets systemd passes (podunit-status.socket), or on --socket when run by
// hand, and on readOnlyPort when the configuration sets one.
func runServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("podunit serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", DefaultConfigPath, "configuration file")
	socket := fs.String("socket", DefaultStatusSocket, "unix socket to listen on when systemd passes none")
	specDir := fs.String("spec-dir", DefaultSpecDir, "the pods' spec files")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: podunit serve [flags]\n\nServes GET /pods, /pods/NAMESPACE/NAME and /healthz as the kubelet's\nread-only API does, from the pods' units, specs and states.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fs.Usage()
		return &exitError{exitUsage, errors.New("")}
	}
	// A kubelet configuration's readOnlyPort is served too.
	cfg, _, err := loadConfigWithKubelet(*configPath, flagSet(fs, "config"), "")
	if err != nil {
		return err
	}
	listeners, err := activation.Listeners()
	if err != nil {
		return fmt.Errorf("sockets from systemd: %w", err)
	}
	if len(listeners) == 0 {
		os.Remove(*socket)
		l, err := net.Listen("unix", *socket)
		if err != nil {
			return err
		}
		if err := os.Chmod(*socket, 0o660); err != nil {
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
	srv := &http.Server{Handler: &statusServer{
		specDir: *specDir, stateDir: podshim.DefaultStateDir, syncState: DefaultSyncState,
		manager: conn, runtime: rt,
	}, ReadHeaderTimeout: 10 * time.Second}
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

// statusServer answers from what systemd, the spec files, podshim's state
// files and the last sync hold: no database of its own to drift.
type statusServer struct {
	specDir, stateDir, syncState string
	manager                      units.Manager
	runtime                      versioner
}

func (s *statusServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "read-only API: GET only", http.StatusMethodNotAllowed)
		return
	}
	switch path := strings.Trim(r.URL.Path, "/"); {
	case path == "pods":
		pods, err := s.pods(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: pods}
		writeJSON(w, list)
	case strings.HasPrefix(path, "pods/"):
		ns, name, ok := strings.Cut(strings.TrimPrefix(path, "pods/"), "/")
		if !ok {
			http.Error(w, "GET /pods/NAMESPACE/NAME", http.StatusNotFound)
			return
		}
		pods, err := s.pods(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for _, p := range pods {
			if p.Namespace == ns && p.Name == name {
				writeJSON(w, p)
				return
			}
		}
		http.Error(w, fmt.Sprintf("pod %s/%s not found", ns, name), http.StatusNotFound)
	case path == "healthz", path == "healthz/ping":
		s.healthz(w, r, path == "healthz/ping")
	default:
		http.Error(w, "not found: the read-only API serves /pods, /pods/NAMESPACE/NAME and /healthz", http.StatusNotFound)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// pods are the pods of the loaded pod units, each with its last spec and
// the status podshim recorded, sorted by namespace and name.
func (s *statusServer) pods(ctx context.Context) ([]corev1.Pod, error) {
	loaded, err := units.List(ctx, s.manager)
	if err != nil {
		return nil, err
	}
	last, _ := readSyncState(s.syncState)
	var out []corev1.Pod
	for _, r := range loaded {
		path := generator.SpecPath(generator.UnitConfig{SpecDir: s.specDir}, r.Namespace, r.PodName, r.ConfigHash)
		p, err := generator.ReadSpecFile(path)
		if err != nil {
			continue // not yet written, or a unit of another tool's making
		}
		pod := *p.Spec
		pod.Annotations = maps.Clone(pod.Annotations)
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations["podunit.io/unit"] = r.Name
		pod.Annotations["podunit.io/unit-state"] = r.ActiveState + " (" + r.SubState + ")"
		st, err := podshim.ReadState(s.stateDir, r.Namespace, r.PodName)
		if err == nil && st.UID == string(pod.UID) {
			pod.Status = st.Status
		} else {
			pod.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			}}
		}
		if msg, bad := last.Invalid[p.Source]; bad {
			pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
				Type: ConditionManifestValid, Status: corev1.ConditionFalse, Reason: "InvalidManifest",
				Message: "running on its last good spec: " + msg,
			})
		}
		out = append(out, pod)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// ConditionManifestValid is false on a pod whose manifest became invalid:
// it runs on its last good spec.
const ConditionManifestValid corev1.PodConditionType = "podunit.io/ManifestValid"

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

// DefaultSyncState is where each sync records how it went, for healthz and
// the pods' conditions.
const DefaultSyncState = "/run/podunit/sync.json"

// syncState is what the last sync recorded.
type syncState struct {
	Time time.Time `json:"time"`
	// Failed counts the pod units the sync could not bring to their state.
	Failed int `json:"failed"`
	// Invalid maps each invalid manifest file to its first error.
	Invalid map[string]string `json:"invalid,omitempty"`
}

func readSyncState(path string) (syncState, error) {
	var st syncState
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

func writeSyncState(path string, st syncState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeFile0600(path, b)
}

// syncStale is how old the last sync may be: the timer runs one every 20 s.
const syncStale = 2 * time.Minute

// syncHealth tells whether syncs run and succeed.
func syncHealth(path string, now time.Time) error {
	st, err := readSyncState(path)
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
