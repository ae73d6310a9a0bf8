package names

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podunit/podunit/cni/service"
)

// hundred is 100 Services of 10 ready endpoints each, the size the issue
// measures: 90 with a ClusterIP and two named ports, 10 headless with
// hostnames (StatefulSets).
func hundred() *service.Snapshot {
	snap := &service.Snapshot{Endpoints: map[string][]service.Endpoint{}}
	for i := range 100 {
		svc := service.Service{Namespace: "default", Name: fmt.Sprintf("svc-%d", i), Type: service.ClusterIP,
			ClusterIP: netip.AddrFrom4([4]byte{10, 96, 1, byte(i)}),
			Ports: []service.Port{{Name: "http", Protocol: service.TCP, Port: 80, TargetPort: 8080},
				{Name: "metrics", Protocol: service.TCP, Port: 9100, TargetPort: 9100}}}
		headless := i%10 == 0
		if headless {
			svc.ClusterIP = netip.Addr{}
		}
		snap.Services = append(snap.Services, svc)
		for j := range 10 {
			ep := service.Endpoint{Namespace: "default", Pod: fmt.Sprintf("svc-%d-%d", i, j),
				IP: netip.AddrFrom4([4]byte{10, 88, byte(i), byte(j + 1)}), Ready: true,
				Ports: map[string]int32{"http": 8080, "metrics": 9100}}
			if headless {
				ep.Hostname = ep.Pod
			}
			snap.Endpoints[svc.Key()] = append(snap.Endpoints[svc.Key()], ep)
		}
	}
	return snap
}

// The index of 100 Services x 10 endpoints: the time Update takes to
// build it (ns/op) and the memory it holds (index-bytes), which is the
// resolver's memory beyond the Go runtime's (it keeps no cache).
func BenchmarkZone(b *testing.B) {
	snap := hundred()
	for b.Loop() {
		buildZone(snap, "cluster.local.", 1, 1, nil)
	}
	const n = 20
	zones := make([]*zone, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range zones {
		zones[i] = buildZone(snap, "cluster.local.", 1, 1, nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "index-bytes")
	b.ReportMetric(float64(len(zones[0].nodes)), "names")
	runtime.KeepAlive(zones)
}

// Answers per second over UDP on 127.0.0.1, 8 clients each asking one
// question at a time (a pod's resolver asks one at a time), for a
// ClusterIP Service's name and for a headless Service's 10 endpoints;
// heap-bytes is the process's heap in use at the end.
func BenchmarkAnswerUDP(b *testing.B) {
	for _, c := range []struct{ name, qname string }{
		{"clusterIP", "svc-55.default.svc.cluster.local."},
		{"headless", "svc-50.default.svc.cluster.local."},
		{"srv", "_http._tcp.svc-55.default.svc.cluster.local."},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := New(Config{})
			s.Update(hundred())
			addr := serve(b, s)
			qtype := dns.TypeA
			if c.name == "srv" {
				qtype = dns.TypeSRV
			}
			b.SetParallelism(4)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				conn, err := net.Dial("udp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer conn.Close()
				co := &dns.Conn{Conn: conn}
				client := &dns.Client{Timeout: time.Second}
				m := new(dns.Msg).SetQuestion(c.qname, qtype)
				for pb.Next() {
					r, _, err := client.ExchangeWithConn(m, co)
					if err != nil || len(r.Answer) == 0 {
						b.Errorf("%v %v", r, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "answers/s")
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse), "heap-bytes")
		})
	}
}

// The server's own work for one answer, without sockets: the lookup, the
// message and its packing (the UDP benchmarks add the kernel and the
// clients, on the same cores).
func BenchmarkAnswerInProcess(b *testing.B) {
	s := New(Config{})
	s.Update(hundred())
	req := new(dns.Msg).SetQuestion("svc-55.default.svc.cluster.local.", dns.TypeA)
	w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}}
	start := time.Now()
	for b.Loop() {
		w.written = w.written[:0]
		s.serveDNS(w, req)
		if _, err := w.written[0].Pack(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "answers/s")
}
