package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/units/engine"
)

// Versioner is the runtime's liveness check (criclient.Client).
type Versioner interface {
	Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	case path == "cronjobs":
		s.serveCronJobs(w, r)
	case path == "services", strings.HasPrefix(path, "services/"):
		s.serveServices(w, r, path)
	case path == "endpointslices":
		s.serveEndpointSlices(w, r)
	case path == "healthz", path == "healthz/ping":
		s.healthz(w, r, path == "healthz/ping")
	case path == "metrics":
		s.metrics().ServeHTTP(w, r)
	default:
		http.Error(w, "not found: the read-only API serves /pods, /pods/NAMESPACE/NAME, /cronjobs, /services, /services/NAMESPACE/NAME, /endpointslices, /healthz and /metrics", http.StatusNotFound)
	}
}

// healthz answers as the kubelet's: "ok", or with ?verbose a line a check
// ([+]name ok / [-]name failed: reason) and HTTP 500 when one failed.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request, pingOnly bool) {
	type check struct {
		name string
		err  error
	}
	checks := []check{{"ping", nil}}
	if !pingOnly {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		_, err := s.Runtime.Version(ctx, "")
		checks = append(checks, check{"runtime", err})
		checks = append(checks, check{"syncloop", syncHealth(s.SyncState, time.Now())})
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
