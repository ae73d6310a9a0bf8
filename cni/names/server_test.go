package names

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podunit/podunit/cni/service"
)

const soa = "cluster.local. 1 IN SOA ns.dns.cluster.local. hostmaster.cluster.local."

// Each kind of cluster name, asked over a real socket as a pod asks it:
// the answer records, NODATA (no answer, the SOA) for a name that exists
// without that type, NXDOMAIN for one that does not, an ExternalName
// followed to its addresses, PTR for ClusterIPs and endpoints.
func TestClusterNames(t *testing.T) {
	up := fakeUpstream(t, answerA("192.0.2.80"))
	s := New(Config{Upstreams: []string{up.addr}})
	s.Update(cluster())
	addr := serve(t, s)

	for _, c := range []struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string
		extra  []string
		ns     bool // the SOA in the authority section
	}{
		{name: "redis-master.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"redis-master.default.svc.cluster.local. 1 IN A 10.96.0.20"}},
		// NODATA, not NXDOMAIN: glibc asks A and AAAA, and stops its
		// search-path walk at the first name that exists.
		{name: "redis-master.default.svc.cluster.local.", qtype: dns.TypeAAAA, ns: true},
		{name: "redis-master.default.svc.cluster.local.", qtype: dns.TypeMX, ns: true},
		{name: "Redis-Master.Default.SVC.cluster.local.", qtype: dns.TypeA,
			answer: []string{"Redis-Master.Default.SVC.cluster.local. 1 IN A 10.96.0.20"}},
		{name: "db.default.svc.cluster.local.", qtype: dns.TypeA, answer: []string{
			"db.default.svc.cluster.local. 1 IN A 10.88.0.10", "db.default.svc.cluster.local. 1 IN A 10.88.0.11"}},
		{name: "db-0.db.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"db-0.db.default.svc.cluster.local. 1 IN A 10.88.0.10"}},
		{name: "db-2.db.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: true},
		{name: "10-88-0-3.frontend.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-88-0-3.frontend.default.svc.cluster.local. 1 IN A 10.88.0.3"}},
		{name: "_mysql._tcp.db.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_mysql._tcp.db.default.svc.cluster.local. 1 IN SRV 0 100 3306 db-0.db.default.svc.cluster.local."},
			extra:  []string{"db-0.db.default.svc.cluster.local. 1 IN A 10.88.0.10"}},
		{name: "_redis._tcp.redis-master.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_redis._tcp.redis-master.default.svc.cluster.local. 1 IN SRV 0 100 6379 redis-master.default.svc.cluster.local."},
			extra:  []string{"redis-master.default.svc.cluster.local. 1 IN A 10.96.0.20"}},
		{name: "_syslog._udp.registry.kube-system.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_syslog._udp.registry.kube-system.svc.cluster.local. 1 IN SRV 0 100 514 registry.kube-system.svc.cluster.local."},
			extra:  []string{"registry.kube-system.svc.cluster.local. 1 IN A 10.96.0.40"}},
		{name: "_syslog._tcp.registry.kube-system.svc.cluster.local.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: true},
		{name: "_tcp.registry.kube-system.svc.cluster.local.", qtype: dns.TypeSRV, ns: true},
		{name: "frontend.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"frontend.default.svc.cluster.local. 1 IN SRV 0 100 80 frontend.default.svc.cluster.local."},
			extra:  []string{"frontend.default.svc.cluster.local. 1 IN A 10.96.0.30"}},
		{name: "search.default.svc.cluster.local.", qtype: dns.TypeCNAME,
			answer: []string{"search.default.svc.cluster.local. 1 IN CNAME www.example.org."}},
		{name: "search.default.svc.cluster.local.", qtype: dns.TypeA, answer: []string{
			"search.default.svc.cluster.local. 1 IN CNAME www.example.org.", "www.example.org. 300 IN A 192.0.2.80"}},
		{name: "alias.default.svc.cluster.local.", qtype: dns.TypeA, answer: []string{
			"alias.default.svc.cluster.local. 1 IN CNAME redis-master.default.svc.cluster.local.",
			"redis-master.default.svc.cluster.local. 1 IN A 10.96.0.20"}},
		{name: "20.0.96.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"20.0.96.10.in-addr.arpa. 1 IN PTR redis-master.default.svc.cluster.local."}},
		{name: "10.0.88.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"10.0.88.10.in-addr.arpa. 1 IN PTR db-0.db.default.svc.cluster.local."}},
		{name: "default.svc.cluster.local.", qtype: dns.TypeA, ns: true},
		{name: "nosuch.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: true},
		{name: "redis-master.nosuch.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: true},
		{name: "nosuch.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: true},
		{name: "empty.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: true},
		{name: "10-88-0-7.default.pod.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-88-0-7.default.pod.cluster.local. 1 IN A 10.88.0.7"}},
		{name: "dns-version.cluster.local.", qtype: dns.TypeTXT,
			answer: []string{`dns-version.cluster.local. 1 IN TXT "1.1.0"`}},
		{name: "cluster.local.", qtype: dns.TypeNS,
			answer: []string{"cluster.local. 1 IN NS ns.dns.cluster.local."},
			extra:  []string{"ns.dns.cluster.local. 1 IN A 127.0.0.1"}},
	} {
		t.Run(fmt.Sprintf("%s/%s", c.name, dns.TypeToString[c.qtype]), func(t *testing.T) {
			r := query(t, addr, "udp", c.name, c.qtype)
			if r.Rcode != c.rcode || !r.Authoritative || !r.RecursionAvailable {
				t.Errorf("rcode %s aa %v ra %v, want %s aa ra", dns.RcodeToString[r.Rcode], r.Authoritative, r.RecursionAvailable, dns.RcodeToString[c.rcode])
			}
			if got := rrs(r.Answer); !slices.Equal(got, c.answer) {
				t.Errorf("answer:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.answer, "\n"))
			}
			if got := rrs(r.Extra); !slices.Equal(got, c.extra) {
				t.Errorf("additional:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.extra, "\n"))
			}
			if got := rrs(r.Ns); c.ns != (len(got) == 1 && strings.HasPrefix(got[0], soa)) {
				t.Errorf("authority %q, want the SOA: %v", got, c.ns)
			}
		})
	}
}

// A pod's resolver walks its search list (ndots:5) as glibc does: the
// first candidate that exists (NOERROR for A, even with no data for AAAA)
// is the answer; a name outside the cluster fails in the zone (NXDOMAIN)
// and is then asked as it is, which goes upstream.
func TestSearchPathWalk(t *testing.T) {
	up := fakeUpstream(t, answerA("192.0.2.80"))
	s := New(Config{Upstreams: []string{up.addr}})
	s.Update(cluster())
	addr := serve(t, s)

	walk := func(name, namespace string) (string, []string) {
		search := []string{namespace + ".svc.cluster.local.", "svc.cluster.local.", "cluster.local."}
		var candidates []string
		if strings.Count(name, ".") < 5 {
			for _, d := range search {
				candidates = append(candidates, name+"."+d)
			}
		}
		candidates = append(candidates, name+".")
		for _, fqdn := range candidates {
			a, aaaa := query(t, addr, "udp", fqdn, dns.TypeA), query(t, addr, "udp", fqdn, dns.TypeAAAA)
			if a.Rcode != aaaa.Rcode {
				t.Errorf("%s: A %s but AAAA %s", fqdn, dns.RcodeToString[a.Rcode], dns.RcodeToString[aaaa.Rcode])
			}
			if a.Rcode == dns.RcodeSuccess {
				return fqdn, rrs(a.Answer)
			}
		}
		return "", nil
	}
	for _, c := range []struct{ name, namespace, found, addr string }{
		{"redis-master", "default", "redis-master.default.svc.cluster.local.", "10.96.0.20"},
		{"redis-master.default", "other", "redis-master.default.svc.cluster.local.", "10.96.0.20"},
		{"db-0.db", "default", "db-0.db.default.svc.cluster.local.", "10.88.0.10"},
		{"web.other.svc", "default", "web.other.svc.cluster.local.", "10.88.0.20"},
		{"www.example.org", "default", "www.example.org.", "192.0.2.80"},
	} {
		found, answer := walk(c.name, c.namespace)
		if found != c.found || len(answer) != 1 || !strings.HasSuffix(answer[0], " A "+c.addr) {
			t.Errorf("%s from %s: %s %v, want %s %s", c.name, c.namespace, found, answer, c.found, c.addr)
		}
	}
	// Only the name itself went upstream: the cluster's candidates are
	// answered here.
	if got := up.questions(); !slices.Equal(got, []string{"udp www.example.org. A", "udp www.example.org. AAAA"}) {
		t.Errorf("upstream asked %q", got)
	}
}

// An answer changes as soon as Update returns: an endpoint that becomes
// unready leaves its headless Service's answer and its own name, and a
// removed Service's name is gone; the TTL lets a cache keep an answer
// for 1 s at most.
func TestUpdate(t *testing.T) {
	s := New(Config{})
	snap := cluster()
	s.Update(snap)
	addr := serve(t, s)
	if r := query(t, addr, "udp", "db.default.svc.cluster.local.", dns.TypeA); len(r.Answer) != 2 || r.Answer[0].Header().Ttl != 1 {
		t.Fatalf("before: %v", r.Answer)
	}

	next := cluster()
	next.Endpoints["default/db"][1].Ready = false
	s.Update(next)
	r := query(t, addr, "udp", "db.default.svc.cluster.local.", dns.TypeA)
	if got := rrs(r.Answer); !slices.Equal(got, []string{"db.default.svc.cluster.local. 1 IN A 10.88.0.10"}) {
		t.Errorf("after db-1 became unready: %q", got)
	}
	if r := query(t, addr, "udp", "db-1.db.default.svc.cluster.local.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("db-1's name after it became unready: %s", dns.RcodeToString[r.Rcode])
	}

	s.Update(&service.Snapshot{})
	if r := query(t, addr, "udp", "redis-master.default.svc.cluster.local.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("a removed Service: %s %v", dns.RcodeToString[r.Rcode], r.Answer)
	}
}

// A custom cluster domain and TTL: names are answered there, and the old
// default domain is forwarded like any other name.
func TestDomainAndTTL(t *testing.T) {
	up := fakeUpstream(t, answerA("192.0.2.80"))
	s := New(Config{Domain: "Corp.Example.", TTL: 5 * time.Second, Upstreams: []string{up.addr}})
	s.Update(cluster())
	addr := serve(t, s)
	r := query(t, addr, "udp", "redis-master.default.svc.corp.example.", dns.TypeA)
	if got := rrs(r.Answer); !slices.Equal(got, []string{"redis-master.default.svc.corp.example. 5 IN A 10.96.0.20"}) {
		t.Errorf("answer %q", got)
	}
	if r := query(t, addr, "udp", "redis-master.default.svc.cluster.local.", dns.TypeA); r.Authoritative || len(up.questions()) != 1 {
		t.Errorf("cluster.local was not forwarded: %v %q", r, up.questions())
	}
}

// A headless Service with more endpoints than a 512-byte UDP answer holds
// is truncated over UDP (the client asks again over TCP) and whole over
// TCP; a client that offers a larger EDNS buffer gets more over UDP.
func TestTruncation(t *testing.T) {
	snap := &service.Snapshot{
		Services:  []service.Service{{Namespace: "default", Name: "big", Type: service.ClusterIP}},
		Endpoints: map[string][]service.Endpoint{},
	}
	for i := range 100 {
		snap.Endpoints["default/big"] = append(snap.Endpoints["default/big"], service.Endpoint{
			Namespace: "default", Pod: fmt.Sprintf("big-%d", i), IP: netip.AddrFrom4([4]byte{10, 88, 1, byte(i)}), Ready: true})
	}
	s := New(Config{})
	s.Update(snap)
	addr := serve(t, s)

	udp := query(t, addr, "udp", "big.default.svc.cluster.local.", dns.TypeA)
	if !udp.Truncated || len(udp.Answer) >= 100 {
		t.Errorf("UDP: truncated %v with %d answers", udp.Truncated, len(udp.Answer))
	}
	tcp := query(t, addr, "tcp", "big.default.svc.cluster.local.", dns.TypeA)
	if tcp.Truncated || len(tcp.Answer) != 100 {
		t.Errorf("TCP: truncated %v with %d answers", tcp.Truncated, len(tcp.Answer))
	}
	m := new(dns.Msg).SetQuestion("big.default.svc.cluster.local.", dns.TypeA)
	m.SetEdns0(4096, false)
	edns, err := exchange(addr, "udp", m)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(edns.Answer); n <= len(udp.Answer) || n >= 100 || !edns.Truncated || edns.IsEdns0() == nil {
		t.Errorf("UDP with EDNS: %d answers (without: %d), truncated %v, OPT %v", n, len(udp.Answer), edns.Truncated, edns.IsEdns0())
	}
}

// Names outside the cluster go to the node's resolvers: the client gets
// the upstream's answer with its own ID, question and case, NXDOMAIN
// included; PTR for an address that is no Service's goes upstream too.
func TestForward(t *testing.T) {
	up := fakeUpstream(t, answerA("192.0.2.80"))
	s := New(Config{Upstreams: []string{up.addr}})
	s.Update(cluster())
	addr := serve(t, s)

	m := new(dns.Msg).SetQuestion("WWW.Example.ORG.", dns.TypeA)
	m.Id = 4242
	r, err := exchange(addr, "udp", m)
	if err != nil {
		t.Fatal(err)
	}
	if r.Id != 4242 || r.Question[0].Name != "WWW.Example.ORG." || r.Authoritative || !r.RecursionAvailable ||
		!slices.Equal(rrs(r.Answer), []string{"WWW.Example.ORG. 300 IN A 192.0.2.80"}) {
		t.Errorf("forwarded answer: %v", r)
	}
	if r := query(t, addr, "tcp", "host.nx.example.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("upstream NXDOMAIN: %s", dns.RcodeToString[r.Rcode])
	}
	query(t, addr, "udp", "1.2.0.192.in-addr.arpa.", dns.TypePTR)
	want := []string{"udp www.example.org. A", "udp host.nx.example. A", "udp 1.2.0.192.in-addr.arpa. PTR"}
	if got := up.questions(); !slices.Equal(got, want) {
		t.Errorf("upstream asked %q, want %q", got, want)
	}
}

// An upstream that does not answer costs its timeout once: the query is
// answered by the next one, and the next queries go to that one first.
// With no upstream answering, the client gets SERVFAIL, not silence.
func TestForwardDeadUpstream(t *testing.T) {
	dead, err := Listen("127.0.0.1:0") // bound, never read
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	deadAddr := dead.Packet[0].LocalAddr().String()
	up := fakeUpstream(t, answerA("192.0.2.80"))
	const timeout = 300 * time.Millisecond
	s := New(Config{Upstreams: []string{deadAddr, up.addr}, Timeout: timeout})
	addr := serve(t, s)

	start := time.Now()
	r := query(t, addr, "udp", "first.example.", dns.TypeA)
	if took := time.Since(start); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || took < timeout || took > 2*time.Second {
		t.Errorf("first query: %s %v after %v", dns.RcodeToString[r.Rcode], r.Answer, took)
	}
	start = time.Now()
	r = query(t, addr, "udp", "second.example.", dns.TypeA)
	if took := time.Since(start); len(r.Answer) != 1 || took >= timeout {
		t.Errorf("second query: %v after %v (the live upstream is not tried first)", r.Answer, took)
	}

	s.SetUpstreams([]string{deadAddr})
	start = time.Now()
	if r := query(t, addr, "udp", "third.example.", dns.TypeA); r.Rcode != dns.RcodeServerFailure || time.Since(start) > 2*time.Second {
		t.Errorf("no live upstream: %s after %v", dns.RcodeToString[r.Rcode], time.Since(start))
	}
	if st := s.Stats(); st.Failed != 1 || st.Forwarded != 3 {
		t.Errorf("stats %+v", st)
	}
}

// An upstream's truncated UDP answer is asked again over TCP, so a client
// over TCP gets it whole; a client over UDP without EDNS gets the TC bit.
func TestForwardTruncated(t *testing.T) {
	up := fakeUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		n := 60
		if w.LocalAddr().Network() == "udp" {
			m.Truncated, n = true, 1
		}
		for i := range n {
			rr, _ := dns.NewRR(fmt.Sprintf("%s 300 IN A 192.0.2.%d", r.Question[0].Name, i))
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	s := New(Config{Upstreams: []string{up.addr}})
	addr := serve(t, s)

	if r := query(t, addr, "tcp", "many.example.", dns.TypeA); len(r.Answer) != 60 || r.Truncated {
		t.Errorf("over TCP: %d answers, truncated %v", len(r.Answer), r.Truncated)
	}
	if got := up.questions(); !slices.Equal(got, []string{"udp many.example. A", "tcp many.example. A"}) {
		t.Errorf("upstream asked %q", got)
	}
	if r := query(t, addr, "udp", "many.example.", dns.TypeA); !r.Truncated {
		t.Errorf("over UDP without EDNS: %d answers, not truncated", len(r.Answer))
	}
}

// Clients asking the same question at once share one upstream query, each
// with its own ID.
func TestForwardCoalesced(t *testing.T) {
	answer := answerA("192.0.2.80")
	up := fakeUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		time.Sleep(300 * time.Millisecond)
		answer(w, r)
	})
	s := New(Config{Upstreams: []string{up.addr}})
	addr := serve(t, s)
	waitFor(t, "the loop probe", func() bool { return up.probes() == 1 })

	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			m := new(dns.Msg).SetQuestion("same.example.", dns.TypeA)
			m.Id = uint16(1000 + i)
			r, err := exchange(addr, "udp", m)
			if err != nil || r.Id != m.Id || len(r.Answer) != 1 {
				t.Errorf("client %d: %v %v", i, r, err)
			}
		})
	}
	wg.Wait()
	if got := up.questions(); len(got) != 1 {
		t.Errorf("upstream asked %q, want once", got)
	}
}

// At most MaxWaiting queries wait for upstreams: the others are answered
// SERVFAIL at once instead of piling up goroutines.
func TestForwardOverloaded(t *testing.T) {
	answer := answerA("192.0.2.80")
	up := fakeUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		time.Sleep(500 * time.Millisecond)
		answer(w, r)
	})
	s := New(Config{Upstreams: []string{up.addr}, MaxWaiting: 2})
	addr := serve(t, s)
	waitFor(t, "the loop probe", func() bool { return up.probes() == 1 })

	var mu sync.Mutex
	rcodes := map[int]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 6 {
		wg.Go(func() {
			r := query(t, addr, "udp", fmt.Sprintf("n%d.example.", i), dns.TypeA)
			mu.Lock()
			rcodes[r.Rcode]++
			if r.Rcode == dns.RcodeServerFailure && time.Since(start) > 400*time.Millisecond {
				t.Errorf("an overloaded query waited %v", time.Since(start))
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if rcodes[dns.RcodeSuccess] != 2 || rcodes[dns.RcodeServerFailure] != 4 || s.Stats().Overloaded != 4 {
		t.Errorf("rcodes %v, stats %+v", rcodes, s.Stats())
	}
}

// A resolv.conf that names the resolver itself is no loop: that upstream
// is never used (SERVFAIL at once, one query seen, not a storm).
func TestForwardLoopToSelf(t *testing.T) {
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	self := l.Packet[0].LocalAddr().String()
	s := New(Config{Upstreams: []string{self}})
	addr := serveOn(t, s, l)

	start := time.Now()
	if r := query(t, addr, "udp", "www.example.org.", dns.TypeA); r.Rcode != dns.RcodeServerFailure || time.Since(start) > time.Second {
		t.Errorf("%s after %v", dns.RcodeToString[r.Rcode], time.Since(start))
	}
	time.Sleep(100 * time.Millisecond)
	if st := s.Stats(); st.Queries != 1 {
		t.Errorf("stats %+v: the query looped", st)
	}
}

// An upstream that sends what it is asked back to the resolver (another
// resolver configured to forward to the cluster's) is found by the probe
// and left out; the other upstream answers.
func TestForwardLoopThroughUpstream(t *testing.T) {
	var resolverAddr string
	ready := make(chan struct{})
	relay := fakeUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		<-ready
		m, err := exchange(resolverAddr, "udp", r)
		if err != nil {
			return
		}
		w.WriteMsg(m)
	})
	good := fakeUpstream(t, answerA("192.0.2.80"))
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resolverAddr = l.Packet[0].LocalAddr().String()
	close(ready)
	s := New(Config{Upstreams: []string{relay.addr, good.addr}})
	addr := serveOn(t, s, l)
	waitFor(t, "the looping upstream left out", func() bool { return slices.Equal(*s.fwd.usable.Load(), []string{good.addr}) })

	for i := range 3 {
		if r := query(t, addr, "udp", fmt.Sprintf("q%d.example.", i), dns.TypeA); len(r.Answer) != 1 {
			t.Errorf("query %d: %v", i, r)
		}
	}
	if got := relay.questions(); len(got) != 0 || relay.probes() != 1 {
		t.Errorf("the looping upstream was asked %q and %d probes", got, relay.probes())
	}
}

// The resolver answers on the addresses it is given and nowhere else:
// another loopback address gets nothing, an unspecified address is
// refused, and with Clients only those clients are answered.
func TestListenOnlyWhereGiven(t *testing.T) {
	for _, a := range []string{"0.0.0.0:0", "[::]:53", "::", "localhost:53", ""} {
		if l, err := Listen(a); err == nil {
			l.Close()
			t.Errorf("Listen(%q) listened", a)
		}
	}

	s := New(Config{})
	s.Update(cluster())
	addr := serve(t, s)
	_, port, _ := strings.Cut(addr, ":")
	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg).SetQuestion("redis-master.default.svc.cluster.local.", dns.TypeA)
		c := &dns.Client{Net: network, Timeout: 300 * time.Millisecond}
		if r, _, err := c.Exchange(m, "127.0.0.2:"+port); err == nil {
			t.Errorf("%s on 127.0.0.2: answered %v", network, r)
		}
	}

	only := New(Config{Clients: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}})
	only.Update(cluster())
	addr = serve(t, only)
	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg).SetQuestion("redis-master.default.svc.cluster.local.", dns.TypeA)
		if r, _, err := localClient(network, "127.0.0.2").Exchange(m, addr); err != nil || len(r.Answer) != 1 {
			t.Errorf("%s from a client: %v %v", network, r, err)
		}
		c := localClient(network, "127.0.0.1")
		c.Timeout = 300 * time.Millisecond
		if r, _, err := c.Exchange(m, addr); err == nil {
			t.Errorf("%s from another address: answered %v", network, r)
		}
	}
}

// Serve returns when its context ends, and its sockets are closed.
func TestServeStops(t *testing.T) {
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Packet[0].LocalAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(Config{}).Serve(ctx, l) }()
	query(t, addr, "tcp", "cluster.local.", dns.TypeSOA)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	again, err := Listen(addr)
	if err != nil {
		t.Fatalf("the address is still taken: %v", err)
	}
	again.Close()
}

// Serve returns the error of a socket that fails, and stops the others.
func TestServeFails(t *testing.T) {
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Stream[0].Close()
	done := make(chan error, 1)
	go func() { done <- New(Config{}).Serve(context.Background(), l) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}
