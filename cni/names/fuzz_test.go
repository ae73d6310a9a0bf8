package names

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// recorder is a dns.ResponseWriter that keeps what is written.
type recorder struct {
	remote  net.Addr
	written []*dns.Msg
}

func (r *recorder) LocalAddr() net.Addr       { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr      { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error { r.written = append(r.written, m); return nil }
func (r *recorder) Write([]byte) (int, error) { panic("the server writes messages") }
func (r *recorder) Close() error              { return nil }
func (r *recorder) TsigStatus() error         { return nil }
func (r *recorder) TsigTimersOnly(bool)       {}
func (r *recorder) Hijack()                   {}

// Any query the server reads is answered with one message that packs,
// carries its ID and fits what the client can receive; nothing panics.
func FuzzQuery(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"redis-master.default.svc.cluster.local.", dns.TypeA},
		{"_mysql._tcp.db.default.svc.cluster.local.", dns.TypeSRV},
		{"alias.default.svc.cluster.local.", dns.TypeAAAA},
		{"10-88-0-7.default.pod.cluster.local.", dns.TypeANY},
		{"20.0.96.10.in-addr.arpa.", dns.TypePTR},
		{"cluster.local.", dns.TypeNS},
		{"www.example.org.", dns.TypeA},
	} {
		m := new(dns.Msg).SetQuestion(q.name, q.qtype)
		b, _ := m.Pack()
		f.Add(b, false)
		m.SetEdns0(4096, true)
		b, _ = m.Pack()
		f.Add(b, true)
	}
	s := New(Config{}) // no upstream: names outside the zone fail at once
	s.Update(cluster())
	f.Fuzz(func(t *testing.T, packet []byte, tcp bool) {
		req := new(dns.Msg)
		if err := req.Unpack(packet); err != nil {
			return
		}
		w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}}
		limit := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			limit = max(limit, min(int(opt.UDPSize()), ednsSize))
		}
		if tcp {
			w.remote, limit = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}, dns.MaxMsgSize
		}
		s.serveDNS(w, req)
		if req.Response || len(req.Question) != 1 {
			if len(w.written) != 0 {
				t.Fatalf("answered a message that is no query: %v", w.written)
			}
			return
		}
		if len(w.written) != 1 {
			t.Fatalf("%d answers to %v", len(w.written), req)
		}
		m := w.written[0]
		b, err := m.Pack()
		if err != nil {
			t.Fatalf("the answer does not pack: %v\n%v", err, m)
		}
		if m.Id != req.Id || !m.Response || len(b) > limit {
			t.Fatalf("answer %v (%d bytes, limit %d) to %v", m, len(b), limit, req)
		}
	})
}
