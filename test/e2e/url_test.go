//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podunit/podunit/units"
)

// urlServer is the manifestURL server of the e2e tests: it wants a token,
// sends ETags and answers what it is told to.
type urlServer struct {
	mu          sync.Mutex
	status      int
	body        string
	delay       time.Duration
	notModified int
}

func (u *urlServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	status, body, delay := u.status, u.body, u.delay
	u.mu.Unlock()
	if r.Header.Get("X-Podunit-Token") != "e2e" {
		http.Error(w, "token", http.StatusForbidden)
		return
	}
	time.Sleep(delay)
	sum := sha256.Sum256([]byte(body))
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	if status == http.StatusOK && r.Header.Get("If-None-Match") == etag {
		u.mu.Lock()
		u.notModified++
		u.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func (u *urlServer) answer(status int, body string, delay time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status, u.body, u.delay = status, body, delay
}

// manifestURL: pods from a URL run; every kind of failed fetch keeps them;
// an empty answer removes them.
func TestManifestURL(t *testing.T) {
	const name, config = "e2e-url", "/etc/podunit/config.yaml"
	srv := &urlServer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, srv)
	defer ln.Close()
	srv.answer(http.StatusOK, webPod(name, "from a URL", 0), 0)

	old, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	restart := func() {
		if out, err := exec.Command("systemctl", "restart", "podunit-fetch.service").CombinedOutput(); err != nil {
			t.Fatalf("restart podunit-fetch: %v\n%s", err, out)
		}
	}
	t.Cleanup(func() {
		os.WriteFile(config, old, 0o644)
		restart()
		os.RemoveAll("/var/lib/podunit/url")
	})
	cfg := string(old) + fmt.Sprintf("\nmanifestURL: http://%s/pods\nmanifestURLHeaders:\n  X-Podunit-Token: [e2e]\nmanifestURLInterval: 500ms\nmanifestURLTimeout: 1s\n", ln.Addr())
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	restart()
	unit := waitActive(t, "default", name)
	invocation := fmt.Sprint(unitProps(t, unit)["InvocationID"])
	if src := unitProps(t, unit)["SourcePath"]; src != "/var/lib/podunit/url/manifests.yaml" {
		t.Errorf("SourcePath %v", src)
	}

	waitFor(t, "If-None-Match answered with 304", func() (bool, error) {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.notModified >= 2, nil
	})
	for _, bad := range []struct {
		what   string
		status int
		body   string
		delay  time.Duration
	}{
		{"HTTP 500", http.StatusInternalServerError, "down", 0},
		{"garbage", http.StatusOK, "<html>not a manifest</html>\n: [", 0},
		{"a timeout", http.StatusOK, webPod(name, "late", 0), 3 * time.Second},
	} {
		srv.answer(bad.status, bad.body, bad.delay)
		time.Sleep(4 * time.Second) // several fetches and syncs
		if p := unitProps(t, unit); p["ActiveState"] != "active" || fmt.Sprint(p["InvocationID"]) != invocation {
			t.Errorf("after %s the URL's pod is %v (invocation %v, was %s)", bad.what, p["ActiveState"], p["InvocationID"], invocation)
		}
	}
	if j := journal(t, "podunit-fetch.service", time.Now().Add(-20*time.Second)); !strings.Contains(j, "HTTP 500") || !strings.Contains(j, "keeping the last good set") {
		t.Errorf("the fetch errors are not in the journal:\n%s", j)
	}

	srv.answer(http.StatusOK, "", 0) // an explicitly empty set
	waitGone(t, units.ServiceName("default", name))
}
