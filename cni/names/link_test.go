package names

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// The ip commands Ensure and Remove run, from the interface's state.
func TestLinkPlans(t *testing.T) {
	p := netip.MustParsePrefix
	state := func(kind string, up bool, addrs ...string) *linkState {
		var s linkState
		text := fmt.Sprintf(`{"ifname":"podunit-dns","flags":["BROADCAST","NOARP"],"linkinfo":{"info_kind":%q},"addr_info":[`, kind)
		if up {
			text = strings.Replace(text, `"NOARP"`, `"NOARP","UP"`, 1)
		}
		var infos []string
		for _, a := range addrs {
			ip, bits, _ := strings.Cut(a, "/")
			scope := "global"
			if strings.HasPrefix(ip, "fe80") {
				scope = "link"
			}
			infos = append(infos, fmt.Sprintf(`{"family":"inet","local":%q,"prefixlen":%s,"scope":%q}`, ip, bits, scope))
		}
		if err := json.Unmarshal([]byte(text+strings.Join(infos, ",")+"]}"), &s); err != nil {
			t.Fatal(err)
		}
		return &s
	}
	for _, c := range []struct {
		name string
		cur  *linkState
		want []netip.Prefix
		plan string // commands, one a line
		err  bool
	}{
		{name: "absent", want: []netip.Prefix{p("10.96.0.10/32")}, plan: "link add podunit-dns type dummy\nlink set dev podunit-dns up\naddr add 10.96.0.10/32 dev podunit-dns"},
		{name: "as asked", cur: state("dummy", true, "10.96.0.10/32", "fe80::1/64"), want: []netip.Prefix{p("10.96.0.10/32")}},
		{name: "down", cur: state("dummy", false, "10.96.0.10/32"), want: []netip.Prefix{p("10.96.0.10/32")}, plan: "link set dev podunit-dns up"},
		{name: "address changed", cur: state("dummy", true, "10.96.0.10/32"), want: []netip.Prefix{p("10.100.0.10/32")},
			plan: "addr add 10.100.0.10/32 dev podunit-dns\naddr del 10.96.0.10/32 dev podunit-dns"},
		{name: "another kind", cur: state("bridge", true), want: []netip.Prefix{p("10.96.0.10/32")}, err: true},
	} {
		steps, err := ensurePlan(c.cur, "podunit-dns", "dummy", c.want)
		var lines []string
		for _, s := range steps {
			lines = append(lines, strings.Join(s, " "))
		}
		if got := strings.Join(lines, "\n"); got != c.plan || (err != nil) != c.err {
			t.Errorf("%s: plan\n%s\nerr %v, want\n%s", c.name, got, err, c.plan)
		}
	}
	if steps, err := removePlan(nil, "podunit-dns", "dummy"); len(steps) != 0 || err != nil {
		t.Errorf("remove an absent link: %q %v", steps, err)
	}
	if steps, err := removePlan(state("dummy", true), "podunit-dns", "dummy"); !slices.EqualFunc(steps, [][]string{{"link", "del", "dev", "podunit-dns"}}, slices.Equal) || err != nil {
		t.Errorf("remove: %q %v", steps, err)
	}
	if _, err := removePlan(state("veth", true), "podunit-dns", "dummy"); err == nil {
		t.Error("removes a link that is not podunit's")
	}
}

// In a network namespace of its own (root): Ensure makes the interface
// with the resolver's address, again changes nothing, moves the address
// when it changes, and leaves another kind of link of the same name
// alone; a resolver listening there answers on that address from inside
// the namespace, and nowhere else; Remove deletes it, twice without error.
func TestLinkInNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	ns := fmt.Sprintf("podunit-names-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	var calls []string
	ipIn := func(ctx context.Context, args ...string) ([]byte, error) {
		calls = append(calls, strings.Join(args, " "))
		out, err := exec.CommandContext(ctx, "ip", append([]string{"-n", ns}, args...)...).Output()
		if err != nil {
			return nil, fmt.Errorf("ip %v: %w", args, err)
		}
		return out, nil
	}
	ctx := context.Background()
	if _, err := ipIn(ctx, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	kind := "dummy"
	if _, err := ipIn(ctx, "link", "add", "probe0", "type", "dummy"); err != nil {
		kind = "bridge" // this kernel has no dummy driver: an empty bridge carries no traffic either
		t.Logf("no dummy links on this kernel: the test uses a %s", kind)
	} else if _, err := ipIn(ctx, "link", "del", "probe0"); err != nil {
		t.Fatal(err)
	}

	l := &Link{Kind: kind, IP: ipIn}
	addr := netip.MustParsePrefix("10.96.0.10/32")
	addresses := func() []string {
		out, err := ipIn(ctx, "-j", "addr", "show", "dev", DefaultLink)
		if err != nil {
			return nil
		}
		var links []linkState
		if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
			t.Fatalf("%s: %v", out, err)
		}
		var got []string
		for _, p := range links[0].prefixes() {
			got = append(got, p.String())
		}
		if !slices.Contains(links[0].Flags, "UP") {
			got = append(got, "down")
		}
		return got
	}
	if err := l.Ensure(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if got := addresses(); !slices.Equal(got, []string{"10.96.0.10/32"}) {
		t.Fatalf("after Ensure: %q", got)
	}
	calls = nil
	if err := l.Ensure(ctx, addr); err != nil || len(calls) != 1 {
		t.Errorf("Ensure again ran %q: %v", calls, err)
	}

	// The resolver, listening on the address inside the namespace,
	// answers there, and not on the namespace's other address.
	var lis *Listeners
	inNamespace(t, ns, func() {
		var err error
		if lis, err = Listen(addr.Addr().String() + ":53"); err != nil {
			t.Fatal(err)
		}
	})
	s := New(Config{})
	s.Update(cluster())
	serveOn(t, s, lis)
	for _, target := range []string{"10.96.0.10:53", "127.0.0.1:53"} {
		var conn net.Conn
		inNamespace(t, ns, func() {
			var err error
			if conn, err = net.Dial("udp", target); err != nil {
				t.Fatal(err)
			}
		})
		c := &dns.Client{Timeout: 500 * time.Millisecond}
		r, _, err := c.ExchangeWithConn(new(dns.Msg).SetQuestion("redis-master.default.svc.cluster.local.", dns.TypeA), &dns.Conn{Conn: conn})
		conn.Close()
		if answered := err == nil && len(r.Answer) == 1; answered != (target == "10.96.0.10:53") {
			t.Errorf("%s in the namespace: answered %v (%v)", target, answered, err)
		}
	}

	moved := netip.MustParsePrefix("10.100.0.10/32")
	if err := l.Ensure(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if got := addresses(); !slices.Equal(got, []string{"10.100.0.10/32"}) {
		t.Errorf("after the address changed: %q", got)
	}
	if err := (&Link{Kind: "veth", IP: ipIn}).Ensure(ctx, addr); err == nil {
		t.Error("Ensure took over a link of another kind")
	}
	if err := l.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if got := addresses(); got != nil {
		t.Errorf("after Remove: %q", got)
	}
	if err := l.Remove(ctx); err != nil {
		t.Errorf("Remove again: %v", err)
	}
}

// inNamespace runs f on a thread in the network namespace ns, so that the
// sockets it opens are there.
func inNamespace(t *testing.T, ns string, f func()) {
	t.Helper()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			panic(fmt.Sprintf("cannot return to the test's network namespace: %v", err))
		}
	}()
	f()
}
