package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"

	"github.com/podunit/podunit/cni/service"
)

// netns is a network namespace a test made (ip netns add): the node, a
// pod or an outside client. Nothing of a test touches the host's own.
type netns string

func (n netns) path() string { return "/run/netns/" + string(n) }

// run runs fn on a thread of its own inside n: sockets it opens and
// programs it starts (nft) live in n. The thread is never given back (it
// ends with fn's goroutine), so nothing else runs in n by accident.
func (n netns) run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(n.path())
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// get is an HTTP GET of / from n to addr: the body, or the dial's error.
func (n netns) get(addr string) (body string, err error) {
	err = n.run(func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: test\r\n\r\n"); err != nil {
			return err
		}
		resp, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		_, b, ok := strings.Cut(string(resp), "\r\n\r\n")
		if !ok {
			return fmt.Errorf("no HTTP response: %q", resp)
		}
		body = strings.TrimSpace(b)
		return nil
	})
	return body, err
}

// udp sends a datagram from n to addr and returns the answer.
func (n netns) udp(addr string) (answer string, err error) {
	err = n.run(func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("who")); err != nil {
			return err
		}
		buf := make([]byte, 64)
		k, err := c.Read(buf)
		answer = string(buf[:k])
		return err
	})
	return answer, err
}

// sh runs a command, failing t with its output.
func sh(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// requireNetns skips t unless it may make network namespaces and has the
// tools: root, ip, nft (1.0.1 or later, for knftables) and busybox.
func requireNetns(t testing.TB) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes network namespaces and applies the rules with nft in them")
	}
	for _, tool := range []string{"ip", "nft", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (test/deps.sh installs iproute2, nftables and busybox-static)", tool)
		}
	}
}

// newNetns makes a network namespace named for the test process, with lo
// up, and deletes it when t ends.
func newNetns(t testing.TB, role string) netns {
	n := netns(fmt.Sprintf("pur%d-%s", os.Getpid(), role))
	if out, err := exec.Command("ip", "netns", "add", string(n)).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", string(n)).Run() })
	sh(t, "ip", "-n", string(n), "link", "set", "lo", "up")
	return n
}

// topology is a node with two pods on a bridge and a client outside, as
// the CNI bridge plugin and a LAN make them:
//
//	pod1 10.88.0.2 ─┐ (hairpin on)
//	                ├─ br0 10.88.0.1/16 [node] 192.0.2.1/24 ── client 192.0.2.2
//	pod2 10.88.0.3 ─┘
//
// The node routes everything else to the client, as to a LAN router.
type topology struct {
	node, pod1, pod2, client netns
}

func newTopology(t *testing.T) *topology {
	tp := &topology{node: newNetns(t, "node"), pod1: newNetns(t, "pod1"), pod2: newNetns(t, "pod2"), client: newNetns(t, "client")}
	node := string(tp.node)
	sh(t, "ip", "-n", node, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", node, "addr", "add", "10.88.0.1/16", "dev", "br0")
	sh(t, "ip", "-n", node, "link", "set", "br0", "up")
	for i, pod := range []netns{tp.pod1, tp.pod2} {
		veth := fmt.Sprintf("veth%d", i+1)
		sh(t, "ip", "-n", node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", string(pod))
		sh(t, "ip", "-n", node, "link", "set", veth, "master", "br0", "up")
		// As the CNI bridge plugin's hairpinMode: with br_netfilter, a pod
		// that reaches itself through its Service is bridged back out of
		// its own port.
		sh(t, "ip", "-n", node, "link", "set", veth, "type", "bridge_slave", "hairpin", "on")
		sh(t, "ip", "-n", string(pod), "addr", "add", fmt.Sprintf("10.88.0.%d/16", i+2), "dev", "eth0")
		sh(t, "ip", "-n", string(pod), "link", "set", "eth0", "up")
		sh(t, "ip", "-n", string(pod), "route", "add", "default", "via", "10.88.0.1")
	}
	sh(t, "ip", "-n", node, "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns", string(tp.client))
	sh(t, "ip", "-n", node, "addr", "add", "192.0.2.1/24", "dev", "uplink")
	sh(t, "ip", "-n", node, "link", "set", "uplink", "up")
	sh(t, "ip", "-n", node, "route", "add", "default", "via", "192.0.2.2")
	sh(t, "ip", "-n", string(tp.client), "addr", "add", "192.0.2.2/24", "dev", "eth0")
	sh(t, "ip", "-n", string(tp.client), "link", "set", "eth0", "up")
	// The node is the client's way to the external IPs.
	sh(t, "ip", "-n", string(tp.client), "route", "add", "198.51.100.0/24", "via", "192.0.2.1")
	return tp
}

// serve starts a pod's listeners: busybox httpd on port, answering its
// name, and a UDP responder on 5353 that answers its name and the address
// it sees the datagram come from.
func serve(t *testing.T, pod netns, name string, port int) {
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte(name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	httpd := exec.Command("ip", "netns", "exec", string(pod), "busybox", "httpd", "-f", "-p", fmt.Sprint(port), "-h", www)
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = httpd.Process.Kill(); _ = httpd.Wait() })

	var conn net.PacketConn
	if err := pod.run(func() (err error) { conn, err = net.ListenPacket("udp", ":5353"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = conn.WriteTo([]byte(name+" "+from.(*net.UDPAddr).IP.String()), from)
		}
	}()
	// busybox forks its listener: wait until it answers.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if body, err := pod.get(fmt.Sprintf("127.0.0.1:%d", port)); err == nil && body == name {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%s's httpd does not answer: %q %v", name, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The rules carry real traffic on a node of two pods, as a user reaches
// them: ClusterIP from a pod and from the host, spread over both pods; a
// pod reaching itself (hairpin); NodePort, LoadBalancer and an external IP
// from another machine; LoadBalancer and NodePort on the host's addresses
// and on localhost; UDP; sessionAffinity across a resync; an unready pod
// leaving rotation; connections refused at once with no endpoint; and
// Remove taking the table away and nothing else.
func TestRealTraffic(t *testing.T) {
	requireNetns(t)
	tp := newTopology(t)
	serve(t, tp.pod1, "pod1", 8080)
	serve(t, tp.pod2, "pod2", 9090) // port "http" differs per pod

	node := Node{PodCIDR: prefix("10.88.0.0/16"), ServiceCIDR: prefix("10.96.0.0/12"), Localhost: true, PodInterface: "br0"}
	if err := tp.node.run(func() error { return WriteSysctls("/proc/sys", Sysctls(node)) }); err != nil {
		t.Fatal(err)
	}
	// Another table in the node, which podunit must never touch.
	other := "table ip other {\n\tchain c {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tcounter\n\t}\n}\n"
	sh(t, "ip", "netns", "exec", string(tp.node), "nft", "-f", writeFile(t, other))

	httpPorts := func(port int32) []service.Port {
		return []service.Port{{Name: "http", Protocol: service.TCP, Port: 80, TargetPortName: "http", NodePort: port}}
	}
	services := []service.Service{
		{Namespace: "default", Name: "web", Type: service.LoadBalancer, ClusterIP: ip("10.96.0.20"),
			Selector: map[string]string{"app": "web"}, Ports: httpPorts(30080), ExternalIPs: []netip.Addr{ip("198.51.100.10")}},
		{Namespace: "default", Name: "sticky", Type: service.NodePort, ClusterIP: ip("10.96.0.21"),
			Selector: map[string]string{"app": "web"}, Ports: httpPorts(30081), SessionAffinity: true},
		{Namespace: "default", Name: "nobody", Type: service.NodePort, ClusterIP: ip("10.96.0.22"),
			Selector: map[string]string{"app": "none"}, ExternalIPs: []netip.Addr{ip("198.51.100.11")}, Ports: append(httpPorts(30082),
				service.Port{Name: "dns", Protocol: service.UDP, Port: 53, TargetPort: 5353})},
		{Namespace: "default", Name: "echo", Type: service.NodePort, ClusterIP: ip("10.96.0.53"),
			Selector: map[string]string{"app": "web"}, Ports: []service.Port{{Protocol: service.UDP, Port: 53, TargetPort: 5353, NodePort: 30053}}},
	}
	pods := func(pod2Ready bool) []service.Pod {
		return []service.Pod{
			{Namespace: "default", Name: "pod1", Labels: map[string]string{"app": "web"}, IP: ip("10.88.0.2"), Ready: true,
				Ports: []service.ContainerPort{{Name: "http", Protocol: service.TCP, Port: 8080}}},
			{Namespace: "default", Name: "pod2", Labels: map[string]string{"app": "web"}, IP: ip("10.88.0.3"), Ready: pod2Ready,
				Ports: []service.ContainerPort{{Name: "http", Protocol: service.TCP, Port: 9090}}},
		}
	}
	var nft knftables.Interface
	if err := tp.node.run(func() (err error) { nft, err = New(); return err }); err != nil {
		t.Fatal(err)
	}
	sync := func(snap *service.Snapshot) Result {
		t.Helper()
		var res Result
		if err := tp.node.run(func() (err error) { res, err = Sync(context.Background(), nft, snap, node); return err }); err != nil {
			t.Fatal(err)
		}
		return res
	}
	sync(service.Build(services, pods(true)))

	// seen is the answers of n requests from a namespace to addr.
	seen := func(t *testing.T, from netns, addr string, n int, get func(string) (string, error)) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range n {
			body, err := get(addr)
			if err != nil {
				t.Fatalf("%s → %s: %v", from, addr, err)
			}
			// The pod's name (the UDP responder adds the source it saw).
			pod, _, _ := strings.Cut(body, " ")
			got[pod]++
		}
		return got
	}
	spread := func(t *testing.T, from netns, addr string, get func(string) (string, error)) {
		t.Helper()
		// Random picks: both pods in 40 tries but with a chance of 2^-39.
		if got := seen(t, from, addr, 40, get); got["pod1"] == 0 || got["pod2"] == 0 || len(got) != 2 {
			t.Errorf("%s → %s: answers %v, want both pods", from, addr, got)
		}
	}
	t.Run("ClusterIP from a pod, spread, hairpin", func(t *testing.T) { spread(t, tp.pod1, "10.96.0.20:80", tp.pod1.get) })
	t.Run("ClusterIP from the host", func(t *testing.T) { spread(t, tp.node, "10.96.0.20:80", tp.node.get) })
	t.Run("NodePort from outside", func(t *testing.T) { spread(t, tp.client, "192.0.2.1:30080", tp.client.get) })
	t.Run("LoadBalancer from outside", func(t *testing.T) { spread(t, tp.client, "192.0.2.1:80", tp.client.get) })
	t.Run("external IP from outside", func(t *testing.T) { spread(t, tp.client, "198.51.100.10:80", tp.client.get) })
	t.Run("LoadBalancer from a pod on the node's address", func(t *testing.T) { spread(t, tp.pod2, "192.0.2.1:80", tp.pod2.get) })
	t.Run("LoadBalancer and NodePort from the host", func(t *testing.T) {
		spread(t, tp.node, "192.0.2.1:80", tp.node.get)
		spread(t, tp.node, "10.88.0.1:30080", tp.node.get)
		spread(t, tp.node, "127.0.0.1:80", tp.node.get)
		spread(t, tp.node, "127.0.0.1:30080", tp.node.get)
	})
	t.Run("UDP", func(t *testing.T) {
		spread(t, tp.client, "192.0.2.1:30053", tp.client.udp)
		spread(t, tp.pod1, "10.96.0.53:53", tp.pod1.udp)
	})
	// Masquerade only where a reply would not come back: from outside the
	// pod network and hairpin; a pod reaching another keeps its address.
	t.Run("source addresses", func(t *testing.T) {
		want := map[string]string{"pod1": "10.88.0.1", "pod2": "10.88.0.2"} // from pod1
		for range 20 {
			got, err := tp.pod1.udp("10.96.0.53:53")
			if pod, src, _ := strings.Cut(got, " "); err != nil || src != want[pod] {
				t.Errorf("pod1 → ClusterIP: %q %v; want pod1 to see 10.88.0.1 (hairpin) and pod2 10.88.0.2", got, err)
			}
			got, err = tp.client.udp("192.0.2.1:30053")
			if _, src, _ := strings.Cut(got, " "); err != nil || src != "10.88.0.1" {
				t.Errorf("outside → NodePort: %q %v, want the pod to see 10.88.0.1", got, err)
			}
		}
	})

	// The client sticks to one pod, through a resync that changes
	// another Service.
	stuck := seen(t, tp.client, "192.0.2.1:30081", 10, tp.client.get)
	if len(stuck) != 1 {
		t.Errorf("sessionAffinity: answers %v, want one pod", stuck)
	}
	moved := services[0]
	moved.Ports = httpPorts(30090)
	if res := sync(service.Build(append([]service.Service{moved}, services[1:]...), pods(true))); res.Affinity != 1 {
		t.Errorf("resync carried %d affinity clients over, want 1", res.Affinity)
	}
	if again := seen(t, tp.client, "192.0.2.1:30081", 10, tp.client.get); len(again) != 1 || again[firstKey(stuck)] != 10 {
		t.Errorf("sessionAffinity after a resync: answers %v, want %v", again, stuck)
	}
	spread(t, tp.client, "192.0.2.1:30090", tp.client.get)
	if _, err := tp.client.get("192.0.2.1:30080"); err == nil {
		t.Error("the old nodePort still answers after the resync")
	}

	// pod2 unready: it leaves rotation at once.
	sync(service.Build(services, pods(false)))
	if got := seen(t, tp.client, "192.0.2.1:30080", 20, tp.client.get); got["pod1"] != 20 {
		t.Errorf("with pod2 unready: answers %v, want pod1 only", got)
	}

	refused := func(t *testing.T, from netns, addr string) {
		t.Helper()
		start := time.Now()
		_, err := from.get(addr)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s → %s: %v, want connection refused", from, addr, err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("%s → %s: refused after %v, want at once", from, addr, d)
		}
	}
	t.Run("refused at once", func(t *testing.T) {
		refused(t, tp.pod1, "10.96.0.22:80")      // no endpoint, from a pod
		refused(t, tp.node, "10.96.0.22:80")      // from the host
		refused(t, tp.client, "192.0.2.1:30082")  // its NodePort, from outside
		refused(t, tp.node, "127.0.0.1:30082")    // on localhost
		refused(t, tp.client, "198.51.100.11:80") // its external IP, from outside
		refused(t, tp.node, "198.51.100.11:80")   // and from the host
		for _, from := range []netns{tp.pod1, tp.node} {
			refused(t, from, "10.96.0.20:81") // a port the ClusterIP does not serve
			refused(t, from, "10.96.0.99:80") // an address of the range no Service has
		}
		if _, err := tp.pod1.udp("10.96.0.22:53"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("UDP to a Service without endpoints: %v, want refused", err)
		}
	})

	// route_localnet on the pods' bridge must not open the node's
	// loopback to pods (CVE-2020-8558): a pod that routes 127.0.0.1 to the
	// node, as a hostile one may, reaches nothing.
	t.Run("localhost closed to pods", func(t *testing.T) {
		var l net.Listener
		if err := tp.node.run(func() (err error) { l, err = net.Listen("tcp", "127.0.0.1:9999"); return err }); err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_, _ = c.Read(make([]byte, 512)) // the request, so that closing does not reset
				_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\nnode loopback\n")
				c.Close()
			}
		}()
		pod := string(tp.pod1)
		sh(t, "ip", "-n", pod, "rule", "add", "pref", "1000", "lookup", "local")
		sh(t, "ip", "-n", pod, "rule", "del", "pref", "0")
		sh(t, "ip", "-n", pod, "rule", "add", "pref", "10", "to", "127.0.0.1", "lookup", "200")
		sh(t, "ip", "-n", pod, "route", "add", "127.0.0.1/32", "via", "10.88.0.1", "dev", "eth0", "table", "200")
		sh(t, "ip", "netns", "exec", pod, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
		if body, err := tp.pod1.get("127.0.0.1:9999"); err == nil {
			t.Errorf("a pod reached the node's 127.0.0.1:9999: %q", body)
		}
		if body, err := tp.node.get("127.0.0.1:9999"); err != nil || body != "node loopback" {
			t.Errorf("the node's own loopback: %q %v", body, err)
		}
	})

	t.Run("Remove", func(t *testing.T) {
		if err := tp.node.run(func() error { return Remove(context.Background(), nft) }); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ip", "netns", "exec", string(tp.node), "nft", "list", "tables").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "table ip other" {
			t.Errorf("tables after Remove: %q %v, want only the other one", out, err)
		}
		if _, err := tp.client.get("192.0.2.1:30090"); err == nil {
			t.Error("the NodePort answers after Remove")
		}
		out, _ = exec.Command("ip", "netns", "exec", string(tp.node), "nft", "list", "table", "ip", "other").CombinedOutput()
		if !strings.Contains(string(out), "counter packets") {
			t.Errorf("the other table changed:\n%s", out)
		}
	})
}

// Every golden ruleset is one nft accepts: the Fake checks names and
// references, the real nft the syntax.
func TestRealNFTAcceptsEveryRuleset(t *testing.T) {
	requireNetns(t)
	node := newNetns(t, "accept")
	var nft knftables.Interface
	if err := node.run(func() (err error) { nft, err = New(); return err }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range ruleCases() {
		err := node.run(func() error {
			if _, err := Sync(context.Background(), nft, tc.snap, tc.node); err != nil {
				return err
			}
			// The table nft lists has what the Fake said.
			chains, err := nft.List(context.Background(), "chains")
			if err != nil {
				return err
			}
			fake := knftables.NewFake(knftables.IPv4Family, Table)
			res, err := Sync(context.Background(), fake, tc.snap, tc.node)
			if err != nil {
				return err
			}
			if len(chains) != res.Chains {
				return fmt.Errorf("nft lists %d chains, the plan has %d", len(chains), res.Chains)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// Through New's Interface, a client sessionAffinity remembers keeps what
// is left of its time across a Sync (read over netlink), capped by the
// set's timeout if that shrank.
func TestRealSyncKeepsAffinityTime(t *testing.T) {
	requireNetns(t)
	node := newNetns(t, "affinity")
	svcs, pods := web(service.ClusterIP, 1)
	svcs[0].SessionAffinity = true
	set := "affinity/default/web/tcp/80/10.88.0.2/8080"
	err := node.run(func() error {
		nft, err := New()
		if err != nil {
			return err
		}
		if _, err := Sync(context.Background(), nft, service.Build(svcs, pods), testNode); err != nil {
			return err
		}
		// As the packet path would have, a while ago.
		tx := nft.NewTransaction()
		tx.Add(&knftables.Element{Set: set, Key: []string{"192.0.2.7 expires 100s"}})
		tx.Add(&knftables.Element{Set: set, Key: []string{"192.0.2.8 expires 2h"}})
		if err := nft.Run(context.Background(), tx); err != nil {
			return err
		}
		svcs[0].AffinityTimeout = time.Hour
		res, err := Sync(context.Background(), nft, service.Build(svcs, pods), testNode)
		if err != nil {
			return err
		}
		if res.Affinity != 2 {
			return fmt.Errorf("carried %d clients over, want 2", res.Affinity)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "exec", string(node), "nft", "-j", "list", "set", "ip", Table, set).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var listing struct {
		Nftables []struct {
			Set *struct {
				Timeout int
				Elem    []struct {
					Elem struct {
						Val     string
						Expires int
					}
				}
			}
		}
	}
	if err := json.Unmarshal(out, &listing); err != nil {
		t.Fatal(err)
	}
	expires := map[string]int{}
	for _, o := range listing.Nftables {
		if o.Set != nil {
			for _, e := range o.Set.Elem {
				expires[e.Elem.Val] = e.Elem.Expires
			}
		}
	}
	if e := expires["192.0.2.7"]; e < 90 || e > 100 {
		t.Errorf("192.0.2.7 expires in %ds, want what was left of 100s", e)
	}
	if e := expires["192.0.2.8"]; e < 3590 || e > 3600 {
		t.Errorf("192.0.2.8 expires in %ds, want the new timeout of 1h", e)
	}
}

func firstKey(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}

func writeFile(t *testing.T, content string) string {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
