package names

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the UDP payload size the resolver offers and asks for: the
// DNS flag day 2020 value, which avoids IP fragmentation.
const ednsSize = 1232

var errNoUpstream = errors.New("no upstream resolver")

// forwarder asks the node's resolvers the names outside the zone.
//
// Questions are coalesced: while one is asked upstream, the same question
// (name, type, class, DO and CD bits) from other clients waits for its
// answer instead of being asked again. This bounds the upstream queries
// by the distinct questions in flight and breaks forwarding loops that
// pass through another resolver: a query that comes back to us joins the
// one we are waiting for, so it is never asked again and again. A loop is
// also detected before it is used: each upstream is sent a random name
// (as CoreDNS's loop plugin does), and one that sends it back to us is
// not used.
type forwarder struct {
	timeout time.Duration
	log     *slog.Logger
	// slots bound the handlers waiting for an upstream answer.
	slots chan struct{}

	mu      sync.Mutex
	servers []string         // as configured, ip:port
	self    []netip.AddrPort // the resolver's own sockets
	looping map[string]bool  // upstreams that sent a probe back
	usable  atomic.Pointer[[]string]
	// preferred is the upstream that answered last: tried first, so that
	// a dead first server costs its timeout once, not on every query.
	preferred atomic.Pointer[string]

	flightsMu sync.Mutex
	flights   map[flightKey]*flight

	probes sync.Map // probe name → the upstream it was sent to
}

type flightKey struct {
	name          string
	qtype, qclass uint16
	do, cd        bool
}

type flight struct {
	done chan struct{}
	resp *dns.Msg // shared: read only
	err  error
}

func newForwarder(servers []string, timeout time.Duration, maxWaiting int, log *slog.Logger) *forwarder {
	f := &forwarder{timeout: timeout, log: log, slots: make(chan struct{}, maxWaiting),
		looping: map[string]bool{}, flights: map[flightKey]*flight{}}
	f.setServers(servers)
	return f
}

// setServers replaces the upstream servers ("ip" or "ip:port").
func (f *forwarder) setServers(servers []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers = nil
	for _, s := range servers {
		if ap, err := upstreamAddr(s); err == nil {
			f.servers = append(f.servers, ap.String())
		} else {
			f.log.Warn("upstream resolver ignored", "server", s, "err", err)
		}
	}
	f.looping = map[string]bool{}
	f.refresh()
}

// setSelf records the resolver's own sockets: an upstream among them
// would be a loop, and is never used.
func (f *forwarder) setSelf(self []netip.AddrPort) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.self = self
	f.refresh()
}

func (f *forwarder) markLooping(server string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.looping[server] {
		return
	}
	f.looping[server] = true
	f.log.Warn("an upstream resolver sends the queries it is given back to this resolver (a forwarding loop); it is not used", "server", server)
	f.refresh()
}

// refresh recomputes the usable upstreams; f.mu is held.
func (f *forwarder) refresh() {
	var usable []string
	for _, s := range f.servers {
		ap := netip.MustParseAddrPort(s)
		switch {
		case slices.ContainsFunc(f.self, func(self netip.AddrPort) bool { return sameAddrPort(self, ap) }):
			f.log.Warn("upstream resolver is this resolver itself (a forwarding loop); it is not used", "server", s)
		case f.looping[s]:
		default:
			usable = append(usable, s)
		}
	}
	f.usable.Store(&usable)
}

func sameAddrPort(a, b netip.AddrPort) bool {
	return a.Port() == b.Port() && a.Addr().Unmap().WithZone("") == b.Addr().Unmap().WithZone("")
}

// upstreamAddr parses an upstream server, "ip" (port 53) or "ip:port".
func upstreamAddr(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: not an IP address with an optional port", s)
	}
	return netip.AddrPortFrom(a, 53), nil
}

// acquire takes a waiting slot; false when all are taken.
func (f *forwarder) acquire() bool {
	select {
	case f.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (f *forwarder) release() { <-f.slots }

// budget is the longest a forwarded question may take: each upstream
// once, and a retry over TCP.
func (f *forwarder) budget() time.Duration {
	return f.timeout * time.Duration(len(*f.usable.Load())+1)
}

// resolve asks q upstream, or waits for the same question already asked.
// The answer is shared: the caller copies it before changing it.
func (f *forwarder) resolve(ctx context.Context, q dns.Question, do, cd bool) (*dns.Msg, error) {
	key := flightKey{strings.ToLower(q.Name), q.Qtype, q.Qclass, do, cd}
	f.flightsMu.Lock()
	fl, waiting := f.flights[key]
	if !waiting {
		fl = &flight{done: make(chan struct{})}
		f.flights[key] = fl
	}
	f.flightsMu.Unlock()
	if waiting {
		select {
		case <-fl.done:
			return fl.resp, fl.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	fl.resp, fl.err = f.exchange(ctx, q, do, cd)
	f.flightsMu.Lock()
	delete(f.flights, key)
	f.flightsMu.Unlock()
	close(fl.done)
	return fl.resp, fl.err
}

// exchange asks q of each usable upstream in turn, the one that answered
// last first, until one answers with anything but SERVFAIL or REFUSED.
func (f *forwarder) exchange(ctx context.Context, q dns.Question, do, cd bool) (*dns.Msg, error) {
	servers := *f.usable.Load()
	if len(servers) == 0 {
		return nil, errNoUpstream
	}
	if p := f.preferred.Load(); p != nil {
		if i := slices.Index(servers, *p); i > 0 {
			servers = append([]string{*p}, slices.Delete(slices.Clone(servers), i, i+1)...)
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(q.Name, q.Qtype)
	m.Question[0].Qclass = q.Qclass
	m.RecursionDesired = true
	m.CheckingDisabled = cd
	m.SetEdns0(ednsSize, do)
	var last *dns.Msg
	var errs []error
	for _, server := range servers {
		r, err := f.ask(ctx, server, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
			last = r
			continue
		}
		f.preferred.Store(&server)
		return r, nil
	}
	if last != nil {
		return last, nil
	}
	return nil, errors.Join(errs...)
}

// ask sends m to one server over UDP, and again over TCP when the answer
// is truncated; each within the forwarder's timeout.
func (f *forwarder) ask(ctx context.Context, server string, m *dns.Msg) (*dns.Msg, error) {
	m = m.Copy()
	m.Id = dns.Id()
	udp := &dns.Client{Net: "udp", Timeout: f.timeout, UDPSize: ednsSize}
	r, _, err := udp.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated {
		tcp := &dns.Client{Net: "tcp", Timeout: f.timeout}
		if rt, _, err := tcp.ExchangeContext(ctx, m, server); err == nil {
			r = rt
		}
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", server, err)
	}
	if len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, m.Question[0].Name) || r.Question[0].Qtype != m.Question[0].Qtype {
		return nil, fmt.Errorf("upstream %s: an answer to another question", server)
	}
	return r, nil
}

// probe sends each upstream a random name: one that comes back to this
// resolver (probeHit) is a loop, and that upstream is not used.
func (f *forwarder) probe(ctx context.Context) {
	f.mu.Lock()
	servers := slices.Clone(*f.usable.Load())
	f.mu.Unlock()
	for _, server := range servers {
		name := fmt.Sprintf("%016x.%016x.", rand.Uint64(), rand.Uint64())
		f.probes.Store(name, server)
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeHINFO)
		_, _ = f.ask(ctx, server, m) // the answer does not matter, whether it came back to us does
		f.probes.Delete(name)
	}
}

// probeHit tells whether name (lower case) is a probe being sent: it
// came back, and its upstream loops.
func (f *forwarder) probeHit(name string) bool {
	server, ok := f.probes.Load(name)
	if ok {
		f.markLooping(server.(string))
	}
	return ok
}

// fromUpstream is the client's answer made of an upstream answer: the
// client's ID, question (with its case) and RD bit, no upstream OPT
// record (the server adds its own).
func fromUpstream(req, up *dns.Msg) *dns.Msg {
	m := up.Copy()
	m.Id = req.Id
	m.Response = true
	m.Question = slices.Clone(req.Question)
	m.RecursionDesired = req.RecursionDesired
	m.RecursionAvailable = true
	m.Extra = slices.DeleteFunc(m.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
	return m
}

// hostOf is the IP address of a socket address, or the zero Addr.
func hostOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
