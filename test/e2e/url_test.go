//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/test/urlserver"
	"github.com/podunit/podunit/units"
)

// manifestURL: pods from a URL run; every kind of failed fetch keeps them;
// an empty answer removes them.
func TestManifestURL(t *testing.T) {
	const name, config = "e2e-url", "/etc/podunit/config.yaml"
	srv := &urlserver.Server{Header: "X-Podunit-Token", Value: "e2e"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, srv)
	defer ln.Close()
	srv.Answer(http.StatusOK, webPod(name, "from a URL", 0), 0)

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
		return srv.NotModified() >= 2, nil
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
		srv.Answer(bad.status, bad.body, bad.delay)
		time.Sleep(4 * time.Second) // several fetches and syncs
		if p := unitProps(t, unit); p["ActiveState"] != "active" || fmt.Sprint(p["InvocationID"]) != invocation {
			t.Errorf("after %s the URL's pod is %v (invocation %v, was %s)", bad.what, p["ActiveState"], p["InvocationID"], invocation)
		}
	}
	if j := journal(t, "podunit-fetch.service", time.Now().Add(-20*time.Second)); !strings.Contains(j, "HTTP 500") || !strings.Contains(j, "keeping the last good set") {
		t.Errorf("the fetch errors are not in the journal:\n%s", j)
	}

	// A server that misbehaves at the HTTP level. Meanwhile the directory
	// changes, and its pods start as if the URL were not there: sync never
	// waits on a fetch.
	srv.Answer(http.StatusOK, webPod(name, "from a URL", 0), 0)
	for i, bad := range []struct {
		what  string
		mode  urlserver.Mode
		error string // in podunit-fetch's journal
	}{
		{"hanging", urlserver.Hang, "Client.Timeout exceeded"},
		{"a half-written body", urlserver.HalfBody, "unexpected EOF"},
		{"a 50 MiB body", urlserver.Huge, "larger than"},
		{"a redirect loop", urlserver.RedirectLoop, "stopped after 10 redirects"},
	} {
		since := time.Now()
		srv.Misbehave(bad.mode)
		dirPod := fmt.Sprintf("e2e-url-dir%d", i)
		writeManifest(t, dirPod+".yaml", webPod(dirPod, "from the directory", 0))
		dirUnit := waitActive(t, "default", dirPod)
		t.Logf("URL server %s: a directory pod active %s after its file was written", bad.what, time.Since(since).Round(time.Millisecond))
		waitFor(t, "podunit-fetch to report "+bad.what, func() (bool, error) {
			j := journal(t, "podunit-fetch.service", since)
			return strings.Contains(j, bad.error) && strings.Contains(j, "keeping the last good set"), nil
		})
		if p := unitProps(t, unit); p["ActiveState"] != "active" || fmt.Sprint(p["InvocationID"]) != invocation {
			t.Errorf("after %s the URL's pod is %v (invocation %v, was %s)", bad.what, p["ActiveState"], p["InvocationID"], invocation)
		}
		os.Remove(filepath.Join(manifestDir, dirPod+".yaml"))
		waitGone(t, dirUnit)
	}
	srv.Misbehave(urlserver.Normal)

	srv.Answer(http.StatusOK, "", 0) // an explicitly empty set
	waitGone(t, units.ServiceName("default", name))
}
