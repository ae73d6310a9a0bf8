package names

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// serve runs s on a free port of 127.0.0.1 (UDP and TCP) until the test
// ends, and returns the address.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, s, l)
}

func serveOn(t testing.TB, s *Server, l *Listeners) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return l.Packet[0].LocalAddr().String()
}

// query asks addr name and qtype over network ("udp" or "tcp"), without
// EDNS, as glibc asks.
func query(t testing.TB, addr, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, err := exchange(addr, network, m)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return r
}

func exchange(addr, network string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// rrs are records as text, fields separated by one space, sorted: the
// order of addresses is random.
func rrs(list []dns.RR) []string {
	var out []string
	for _, rr := range list {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(out)
	return out
}

// upstream is a fake resolver on 127.0.0.1 that answers with handle and
// counts what it was asked, by name and transport.
type upstream struct {
	addr   string
	mu     sync.Mutex
	asked  []string // "udp name TYPE" or "tcp name TYPE"
	handle func(w dns.ResponseWriter, r *dns.Msg)
}

func fakeUpstream(t testing.TB, handle func(w dns.ResponseWriter, r *dns.Msg)) *upstream {
	t.Helper()
	u := &upstream{handle: handle}
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = l.Packet[0].LocalAddr().String()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		u.mu.Lock()
		u.asked = append(u.asked, w.LocalAddr().Network()+" "+strings.ToLower(r.Question[0].Name)+" "+dns.TypeToString[r.Question[0].Qtype])
		u.mu.Unlock()
		u.handle(w, r)
	})
	servers := []*dns.Server{{PacketConn: l.Packet[0], Handler: h}, {Listener: l.Stream[0], Handler: h}}
	for _, srv := range servers {
		go srv.ActivateAndServe()
	}
	t.Cleanup(func() {
		for _, srv := range servers {
			srv.Shutdown()
		}
	})
	return u
}

// questions are what the upstream was asked, but loop probes (HINFO).
func (u *upstream) questions() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(u.asked), func(q string) bool { return strings.HasSuffix(q, " HINFO") })
}

// probes are the loop probes the upstream was sent.
func (u *upstream) probes() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, q := range u.asked {
		if strings.HasSuffix(q, " HINFO") {
			n++
		}
	}
	return n
}

// answerA answers every A question with addr (and NXDOMAIN for names
// under nx.example.).
func answerA(addr string) func(w dns.ResponseWriter, r *dns.Msg) {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		m.RecursionAvailable = true
		q := r.Question[0]
		switch {
		case strings.HasSuffix(strings.ToLower(q.Name), "nx.example."):
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			rr, _ := dns.NewRR(q.Name + " 300 IN A " + addr)
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// localDialer is a client whose queries come from addr.
func localClient(network, addr string) *dns.Client {
	d := &net.Dialer{Timeout: time.Second}
	switch network {
	case "udp":
		d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(addr)}
	case "tcp":
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(addr)}
	}
	return &dns.Client{Net: network, Dialer: d, Timeout: time.Second}
}
