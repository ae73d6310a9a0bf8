//go:build e2e

package e2e

import (
	_ "embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The guestbook of kubernetes.io ("Deploying PHP Guestbook application
// with Redis"), in its real shape — three Deployments, two ClusterIP
// Services found by name, a LoadBalancer Service in front — with busybox
// standing in for its images: the "redis" pods answer who they are on
// 6379, the frontend's page asks both by Service name.
//
// test/vm/story.sh runs the same file in its VMs.
//
//go:embed testdata/guestbook.yaml
var guestbook string

// httpGet sends a GET for path to addr (host:port) and returns the body.
func httpGet(addr, path string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr)
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	// A CGI's own headers end in a bare "\n\n" (busybox httpd passes them on).
	resp := strings.ReplaceAll(b.String(), "\r\n", "\n")
	_, body, _ := strings.Cut(resp, "\n\n")
	return strings.TrimSpace(body), nil
}

// serviceIP is a Service's ClusterIP as `podunit get services` shows it.
func serviceIP(t *testing.T, name string) string {
	t.Helper()
	out, _ := exec.Command(podunitBin, "get", "services").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == name {
			return f[2]
		}
	}
	return ""
}

// outside is a network namespace standing for another machine: a veth
// pair joins it to the test bed, the node's end 192.0.2.1/24 (TEST-NET-1,
// inside the namespaces the test made), its own 192.0.2.2. It is held by a
// process of its own, not by `ip netns add`: that makes /run/netns a shared
// mount, and the runtime's own network namespaces there could not be
// unmounted any more ("device or resource busy").
func outside(t *testing.T) (run func(args ...string) (string, error)) {
	t.Helper()
	holder := exec.Command("unshare", "--net", "sleep", "600")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	pid := fmt.Sprint(holder.Process.Pid)
	t.Cleanup(func() {
		exec.Command("ip", "link", "delete", "e2e-out").Run()
		holder.Process.Kill()
		holder.Wait()
	})
	in := func(args ...string) []string { return append([]string{"nsenter", "-t", pid, "-n", "--"}, args...) }
	cmds := [][]string{
		{"ip", "link", "add", "e2e-out", "type", "veth", "peer", "name", "e2e-out-p"},
		{"ip", "link", "set", "e2e-out-p", "netns", pid},
		{"ip", "addr", "add", "192.0.2.1/24", "dev", "e2e-out"},
		{"ip", "link", "set", "e2e-out", "up"},
		in("ip", "addr", "add", "192.0.2.2/24", "dev", "e2e-out-p"),
		in("ip", "link", "set", "e2e-out-p", "up"),
		in("ip", "link", "set", "lo", "up"),
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, c := range cmds {
		for {
			out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
			if err == nil {
				break
			}
			if time.Now().After(deadline) { // the holder's namespace may take a moment
				t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return func(args ...string) (string, error) {
		out, err := exec.Command("nsenter", append([]string{"-t", pid, "-n", "--"}, args...)...).CombinedOutput()
		return string(out), err
	}
}

// User story (#24): "I copy the guestbook from kubernetes.io into my
// manifest directory. Its frontend answers on port 80 of my machine,
// from the machine itself and from my laptop, and shows the data its
// backends serve, which it finds by their Service names." Before, podunit
// skipped every Service: the pods ran, and nothing answered.
func TestGuestbookAnswersThroughItsLoadBalancer(t *testing.T) {
	writeManifest(t, "e2e-guestbook.yaml", guestbook)
	for _, name := range []string{"redis-leader-0", "redis-follower-0", "redis-follower-1", "frontend-0", "frontend-1", "frontend-2"} {
		waitActive(t, "default", name)
	}
	var page string
	waitFor(t, "the guestbook's page on 127.0.0.1:80 with both backends", func() (bool, error) {
		var err error
		page, err = httpGet("127.0.0.1:80", "/cgi-bin/guestbook")
		return strings.Contains(page, "leader-redis-leader-0") && strings.Contains(page, "follower-redis-follower-"), fmt.Errorf("%q, %v", page, err)
	})
	t.Logf("page: %s", page)

	// Spread over the three frontends, through the ClusterIP too.
	ip := serviceIP(t, "frontend")
	if net.ParseIP(ip) == nil {
		t.Fatalf("podunit get services shows no ClusterIP for frontend: %q", ip)
	}
	seen := map[string]int{}
	for range 30 {
		page, err := httpGet(ip+":80", "/cgi-bin/guestbook")
		if err != nil {
			t.Fatalf("ClusterIP %s: %v", ip, err)
		}
		seen[strings.Fields(page + " x")[0]]++
	}
	if len(seen) != 3 {
		t.Errorf("30 requests through the ClusterIP reached %v: want all three frontends", seen)
	}

	// From another machine, to the node's address.
	run := outside(t)
	waitFor(t, "the page from another machine", func() (bool, error) {
		out, err := run("busybox", "sh", "-c", "printf 'GET /cgi-bin/guestbook HTTP/1.0\\r\\n\\r\\n' | nc -w 3 192.0.2.1 80")
		return strings.Contains(out, "leader-redis-leader-0"), fmt.Errorf("%v: %s", err, out)
	})

	// A frontend made unready leaves rotation at once.
	if out, err := exec.Command(podunitBin, "exec", "frontend-1", "--", "rm", "/www/ready").CombinedOutput(); err != nil {
		t.Fatalf("podunit exec: %v\n%s", err, out)
	}
	start := time.Now()
	waitFor(t, "frontend-1 out of rotation", func() (bool, error) {
		for range 12 {
			page, err := httpGet(ip+":80", "/cgi-bin/guestbook")
			if err != nil || strings.HasPrefix(page, "frontend-frontend-1 ") {
				return false, err
			}
		}
		return true, nil
	})
	t.Logf("frontend-1 left rotation within %.1f s of its readiness file's removal (its probe runs every 1 s)", time.Since(start).Seconds())

	// The app removed: its rules go with the last Service, and no other
	// table of the node is touched.
	exec.Command("nft", "add", "table", "ip", "e2e-other").Run()
	defer exec.Command("nft", "delete", "table", "ip", "e2e-other").Run()
	os.Remove(filepath.Join(manifestDir, "e2e-guestbook.yaml"))
	waitFor(t, "podunit's nftables table gone", func() (bool, error) {
		out, _ := exec.Command("nft", "list", "tables").CombinedOutput()
		return !strings.Contains(string(out), "ip podunit") && strings.Contains(string(out), "ip e2e-other"), fmt.Errorf("%s", out)
	})
}
