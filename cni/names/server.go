package names

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"

	"github.com/podunit/podunit/cni/service"
)

// Defaults of Config.
const (
	DefaultDomain      = "cluster.local"
	DefaultTTL         = time.Second
	DefaultTimeout     = 2 * time.Second
	DefaultMaxWaiting  = 1000
	DefaultMaxTCPConns = 250
)

// Config is a Server's settings.
type Config struct {
	// Domain is the cluster domain (clusterDomain); "": DefaultDomain.
	Domain string
	// TTL of the cluster's records and of their absence, in whole
	// seconds; 0: DefaultTTL.
	TTL time.Duration
	// Upstreams are the node's resolvers, "ip" (port 53) or "ip:port"
	// (Upstreams reads them from a resolv.conf); SetUpstreams replaces
	// them.
	Upstreams []string
	// Timeout is how long a forwarded query waits for one upstream before
	// it tries the next; 0: DefaultTimeout. Keep it below the clients'
	// own (glibc's is 5 s).
	Timeout time.Duration
	// MaxWaiting bounds the queries waiting for an upstream answer at once
	// (each is a goroutine); more are answered SERVFAIL at once. 0:
	// DefaultMaxWaiting.
	MaxWaiting int
	// MaxTCPConns bounds the TCP connections open at once on each
	// address; more wait in the kernel's backlog. 0: DefaultMaxTCPConns.
	MaxTCPConns int
	// Clients, when not empty, are the source addresses answered (the
	// pods' network, the node's own addresses): a packet or connection
	// from anywhere else is dropped unread. It keeps the resolver closed
	// to other machines even if one routes the resolver's address to
	// this node.
	Clients []netip.Prefix
	// Log receives warnings (an upstream that loops back, one that is
	// this resolver); nil: none.
	Log *slog.Logger
}

// Server answers DNS queries from the current Snapshot and forwards the
// rest. Its methods may be called concurrently.
type Server struct {
	origin  string
	ttl     uint32
	clients []netip.Prefix
	maxTCP  int
	log     *slog.Logger
	fwd     *forwarder

	zone atomic.Pointer[zone]
	// snap and nameservers are what the zone was built from, to rebuild
	// it when the server learns its own addresses.
	mu          sync.Mutex
	snap        *service.Snapshot
	nameservers []netip.Addr

	serving atomic.Pointer[context.Context]
	probing sync.WaitGroup // loop probes, waited for before Serve returns
	stats   counters
}

// New is a Server with cfg, answering an empty cluster until Update.
func New(cfg Config) *Server {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ttl := max(uint32(cmp.Or(cfg.TTL, DefaultTTL).Round(time.Second)/time.Second), 1)
	s := &Server{
		origin:  dns.Fqdn(strings.ToLower(strings.Trim(cmp.Or(cfg.Domain, DefaultDomain), "."))),
		ttl:     ttl,
		clients: cfg.Clients,
		maxTCP:  cmp.Or(cfg.MaxTCPConns, DefaultMaxTCPConns),
		log:     log,
	}
	s.fwd = newForwarder(cfg.Upstreams, cmp.Or(cfg.Timeout, DefaultTimeout), cmp.Or(cfg.MaxWaiting, DefaultMaxWaiting), log)
	s.Update(nil)
	return s
}

// Update makes the server answer from snap: every query read after Update
// returns sees it. snap must not change afterwards; nil: no Services.
func (s *Server) Update(snap *service.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap = snap
	s.rebuild()
}

// rebuild indexes the current Snapshot; s.mu is held.
func (s *Server) rebuild() {
	s.zone.Store(buildZone(s.snap, s.origin, s.ttl, uint32(time.Now().Unix()), s.nameservers))
}

// SetUpstreams replaces the node's resolvers that other names are
// forwarded to (when the resolv.conf they come from changes); a server
// that serves probes them for loops again.
func (s *Server) SetUpstreams(servers []string) {
	s.fwd.setServers(servers)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx := s.serving.Load(); ctx != nil {
		s.probing.Go(func() { s.fwd.probe(*ctx) })
	}
}

// Stats are counts of the queries a server answered.
type Stats struct {
	// Queries is every query read; Cluster, those answered from the
	// cluster's names; Forwarded, those sent to (or waiting for) an
	// upstream; Failed, those answered SERVFAIL because no upstream
	// answered; Overloaded, those answered SERVFAIL because MaxWaiting
	// queries were already waiting.
	Queries, Cluster, Forwarded, Failed, Overloaded uint64
}

type counters struct {
	queries, cluster, forwarded, failed, overloaded atomic.Uint64
}

// Stats are the server's counts so far.
func (s *Server) Stats() Stats {
	return Stats{
		Queries: s.stats.queries.Load(), Cluster: s.stats.cluster.Load(), Forwarded: s.stats.forwarded.Load(),
		Failed: s.stats.failed.Load(), Overloaded: s.stats.overloaded.Load(),
	}
}

// Listeners are the sockets a server answers on.
type Listeners struct {
	Packet []net.PacketConn // UDP
	Stream []net.Listener   // TCP
}

// Close closes every socket.
func (l *Listeners) Close() error {
	var errs []error
	for _, pc := range l.Packet {
		errs = append(errs, pc.Close())
	}
	for _, ln := range l.Stream {
		errs = append(errs, ln.Close())
	}
	return errors.Join(errs...)
}

// Listen opens a UDP and a TCP socket on each address, "ip" (port 53) or
// "ip:port" (port 0: the same free port for both). An unspecified address
// (0.0.0.0, ::) is refused: the resolver listens where pods reach it and
// nowhere else.
func Listen(addrs ...string) (*Listeners, error) {
	l := &Listeners{}
	if len(addrs) == 0 {
		return nil, errors.New("listen: no address")
	}
	for _, a := range addrs {
		ap, err := upstreamAddr(a)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("listen: %w", err)
		}
		if ap.Addr().IsUnspecified() {
			l.Close()
			return nil, fmt.Errorf("listen on %s: an unspecified address would answer on every address of the node; give the resolver's own", a)
		}
		pc, ln, err := listenPair(ap)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("listen on %s: %w", ap, err)
		}
		l.Packet, l.Stream = append(l.Packet, pc), append(l.Stream, ln)
	}
	return l, nil
}

// listenPair opens UDP and TCP on ap; with port 0, on the same free port.
func listenPair(ap netip.AddrPort) (net.PacketConn, net.Listener, error) {
	for {
		pc, err := net.ListenPacket("udp", ap.String())
		if err != nil {
			return nil, nil, err
		}
		port := uint16(pc.LocalAddr().(*net.UDPAddr).Port)
		ln, err := net.Listen("tcp", netip.AddrPortFrom(ap.Addr(), port).String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if ap.Port() != 0 {
			return nil, nil, err
		}
	}
}

// ListenAndServe listens on addrs (Listen) and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addrs ...string) error {
	l, err := Listen(addrs...)
	if err != nil {
		return err
	}
	return s.Serve(ctx, l)
}

// Serve answers on l's sockets until ctx ends (nil) or one of them fails
// (its error); it closes them before it returns. Once serving, it sends
// each upstream a probe and stops using one that loops back.
func (s *Server) Serve(ctx context.Context, l *Listeners) error {
	defer l.Close()
	if len(l.Packet)+len(l.Stream) == 0 {
		return errors.New("serve: no socket")
	}
	var self []netip.AddrPort
	var ips []netip.Addr
	for _, a := range append(packetAddrs(l.Packet), streamAddrs(l.Stream)...) {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			self = append(self, ap)
			if !slices.Contains(ips, ap.Addr().Unmap()) {
				ips = append(ips, ap.Addr().Unmap())
			}
		}
	}
	s.fwd.setSelf(self)
	s.mu.Lock()
	s.nameservers = ips
	s.rebuild()
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.serving.Store(&ctx)
	s.mu.Unlock()

	handler := dns.HandlerFunc(s.serveDNS)
	var servers []*dns.Server
	var started sync.WaitGroup
	for _, pc := range l.Packet {
		if len(s.clients) > 0 {
			pc = &filteredPacketConn{PacketConn: pc, allow: s.allowed}
		}
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: handler, UDPSize: dns.DefaultMsgSize})
	}
	for _, ln := range l.Stream {
		if len(s.clients) > 0 {
			ln = &filteredListener{Listener: ln, allow: s.allowed}
		}
		servers = append(servers, &dns.Server{Listener: netutil.LimitListener(ln, s.maxTCP), Handler: handler})
	}
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		started.Add(1)
		var once sync.Once
		srv.NotifyStartedFunc = func() { once.Do(started.Done) }
		go func() {
			err := srv.ActivateAndServe()
			once.Do(started.Done) // it failed to start
			errc <- err
		}()
	}
	// Every server has started or failed (a server told to shut down
	// before it started would never stop).
	started.Wait()
	s.probing.Go(func() { s.fwd.probe(ctx) })
	var err error
	running := len(servers)
	select {
	case <-ctx.Done():
	case err = <-errc:
		running--
	}
	cancel()
	stop, stopped := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stopped()
	for _, srv := range servers {
		_ = srv.ShutdownContext(stop) // "not started" for the one that failed
	}
	for ; running > 0; running-- {
		<-errc
	}
	s.mu.Lock()
	s.serving.Store(nil)
	s.mu.Unlock()
	s.probing.Wait()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func packetAddrs(pcs []net.PacketConn) []net.Addr {
	var out []net.Addr
	for _, pc := range pcs {
		out = append(out, pc.LocalAddr())
	}
	return out
}

func streamAddrs(lns []net.Listener) []net.Addr {
	var out []net.Addr
	for _, ln := range lns {
		out = append(out, ln.Addr())
	}
	return out
}

// allowed tells whether a client's address is one of Config.Clients.
func (s *Server) allowed(a net.Addr) bool {
	ip := hostOf(a)
	return slices.ContainsFunc(s.clients, func(p netip.Prefix) bool { return p.Contains(ip) })
}

type filteredPacketConn struct {
	net.PacketConn
	allow func(net.Addr) bool
}

func (c *filteredPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.allow(a) {
			return n, a, err
		}
	}
}

type filteredListener struct {
	net.Listener
	allow func(net.Addr) bool
}

func (l *filteredListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.allow(c.RemoteAddr()) {
			return c, err
		}
		c.Close()
	}
}

// serveDNS answers one query: from the zone, from the reverse index, or
// from upstream.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.stats.queries.Add(1)
	if req.Response || len(req.Question) != 1 {
		return // not a query; the server's accept function already answers FORMERR for other counts
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	z := s.zone.Load()
	switch {
	case req.Opcode != dns.OpcodeQuery:
		s.respond(w, req, new(dns.Msg).SetRcode(req, dns.RcodeNotImplemented))
	case s.fwd.probeHit(name):
		s.respond(w, req, new(dns.Msg).SetRcode(req, dns.RcodeServerFailure))
	case q.Qclass != dns.ClassINET, q.Qtype == dns.TypeAXFR, q.Qtype == dns.TypeIXFR:
		s.respond(w, req, new(dns.Msg).SetRcode(req, dns.RcodeRefused)) // no zone transfers, as CoreDNS
	case z.inZone(name):
		s.stats.cluster.Add(1)
		s.answerZone(w, req, z, q)
	case q.Qtype == dns.TypePTR && z.ptr[name] != nil:
		s.stats.cluster.Add(1)
		m := new(dns.Msg).SetReply(req)
		m.Authoritative, m.RecursionAvailable = true, true
		m.Answer, _ = z.reverse(q.Name)
		s.respond(w, req, m)
	default:
		s.stats.forwarded.Add(1)
		s.forward(w, req)
	}
}

// answerZone answers a question in the zone, following an ExternalName's
// CNAME upstream.
func (s *Server) answerZone(w dns.ResponseWriter, req *dns.Msg, z *zone, q dns.Question) {
	l := z.lookup(q.Name, q.Qtype)
	m := new(dns.Msg).SetRcode(req, l.rcode)
	m.Authoritative, m.RecursionAvailable = true, true
	m.Answer, m.Extra = l.answer, l.extra
	if l.chase != "" {
		up, err := s.upstream(req, dns.Question{Name: l.chase, Qtype: q.Qtype, Qclass: q.Qclass})
		if err != nil {
			s.respond(w, req, new(dns.Msg).SetRcode(req, dns.RcodeServerFailure))
			return
		}
		m.Answer = append(m.Answer, up.Answer...)
		if up.Rcode == dns.RcodeNameError {
			m.Rcode = dns.RcodeNameError
		}
	}
	if len(m.Answer) == 0 || m.Rcode == dns.RcodeNameError {
		m.Ns = []dns.RR{z.soa(z.origin)}
	}
	s.respond(w, req, m)
}

// forward answers a question from the node's resolvers.
func (s *Server) forward(w dns.ResponseWriter, req *dns.Msg) {
	up, err := s.upstream(req, req.Question[0])
	if err != nil {
		s.respond(w, req, new(dns.Msg).SetRcode(req, dns.RcodeServerFailure))
		return
	}
	s.respond(w, req, fromUpstream(req, up))
}

// upstream asks q of the node's resolvers for req's client, within a
// waiting slot.
func (s *Server) upstream(req *dns.Msg, q dns.Question) (*dns.Msg, error) {
	if !s.fwd.acquire() {
		s.stats.overloaded.Add(1)
		return nil, errors.New("too many queries waiting for an upstream")
	}
	defer s.fwd.release()
	base := context.Background()
	if ctx := s.serving.Load(); ctx != nil {
		base = *ctx
	}
	ctx, cancel := context.WithTimeout(base, s.fwd.budget())
	defer cancel()
	var do bool
	if opt := req.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	up, err := s.fwd.resolve(ctx, q, do, req.CheckingDisabled)
	if err != nil {
		s.stats.failed.Add(1)
		return nil, err
	}
	return up, nil
}

// respond writes m, with an OPT record when the client sent one, cut to
// what the client can receive over UDP (the TC bit tells it to ask again
// over TCP).
func (s *Server) respond(w dns.ResponseWriter, req, m *dns.Msg) {
	size := dns.MaxMsgSize
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size = dns.MinMsgSize
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(ednsSize, opt.Do())
		if size == dns.MinMsgSize {
			size = min(max(int(opt.UDPSize()), dns.MinMsgSize), ednsSize)
		}
	}
	m.Truncate(size)
	_ = w.WriteMsg(m) // a client gone is no error of the server's
}
