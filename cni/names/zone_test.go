package names

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/podunit/podunit/cni/service"
)

var ip = netip.MustParseAddr

// cluster is a node's Services in the apps' shapes: a guestbook's
// redis-master (a named port), its frontend (an unnamed port, an unready
// replica), a StatefulSet's headless db (one replica without the named
// port, one unready), an ExternalName out of the cluster and one into it,
// a headless Service with no ready endpoint, a headless Service without
// ports or hostnames in another namespace, and a Service with a UDP and a
// TCP port and no endpoint.
func cluster() *service.Snapshot {
	tcp, udp := service.TCP, service.UDP
	return &service.Snapshot{
		Services: []service.Service{
			{Namespace: "default", Name: "redis-master", Type: service.ClusterIP, ClusterIP: ip("10.96.0.20"),
				Ports: []service.Port{{Name: "redis", Protocol: tcp, Port: 6379, TargetPort: 6379}}},
			{Namespace: "default", Name: "frontend", Type: service.LoadBalancer, ClusterIP: ip("10.96.0.30"),
				Ports: []service.Port{{Protocol: tcp, Port: 80, TargetPort: 8080}}},
			{Namespace: "default", Name: "db", Type: service.ClusterIP,
				Ports: []service.Port{{Name: "mysql", Protocol: tcp, Port: 3306, TargetPortName: "mysql"}}},
			{Namespace: "default", Name: "search", Type: service.ExternalName, ExternalName: "www.example.org"},
			{Namespace: "default", Name: "alias", Type: service.ExternalName, ExternalName: "redis-master.default.svc.cluster.local"},
			{Namespace: "default", Name: "empty", Type: service.ClusterIP},
			{Namespace: "other", Name: "web", Type: service.ClusterIP},
			{Namespace: "kube-system", Name: "registry", Type: service.ClusterIP, ClusterIP: ip("10.96.0.40"),
				Ports: []service.Port{{Name: "syslog", Protocol: udp, Port: 514}, {Name: "http", Protocol: tcp, Port: 80}}},
		},
		Endpoints: map[string][]service.Endpoint{
			"default/redis-master": {{Namespace: "default", Pod: "redis-master-0", IP: ip("10.88.0.2"), Ready: true, Ports: map[string]int32{"redis": 6379}}},
			"default/frontend": {
				{Namespace: "default", Pod: "frontend-a", IP: ip("10.88.0.3"), Ready: true, Ports: map[string]int32{"": 8080}},
				{Namespace: "default", Pod: "frontend-b", IP: ip("10.88.0.4"), Ready: true, Ports: map[string]int32{"": 8080}},
				{Namespace: "default", Pod: "frontend-c", IP: ip("10.88.0.5"), Ports: map[string]int32{"": 8080}},
			},
			"default/db": {
				{Namespace: "default", Pod: "db-0", IP: ip("10.88.0.10"), Ready: true, Hostname: "db-0", Ports: map[string]int32{"mysql": 3306}},
				{Namespace: "default", Pod: "db-1", IP: ip("10.88.0.11"), Ready: true, Hostname: "db-1", Ports: map[string]int32{}},
				{Namespace: "default", Pod: "db-2", IP: ip("10.88.0.12"), Hostname: "db-2", Ports: map[string]int32{"mysql": 3306}},
			},
			"default/empty": {{Namespace: "default", Pod: "empty-0", IP: ip("10.88.0.30"), Ports: map[string]int32{}}},
			"other/web":     {{Namespace: "other", Pod: "web-0", IP: ip("10.88.0.20"), Ready: true, Ports: map[string]int32{}}},
		},
	}
}

// dump is every record of z, one a line, sorted; a name without data is
// a line of its own.
func dump(z *zone) string {
	var lines []string
	for name, n := range z.nodes {
		before := len(lines)
		for _, a := range n.addrs {
			lines = append(lines, fmt.Sprintf("%s A %s", name, a))
		}
		for _, r := range n.srv {
			lines = append(lines, fmt.Sprintf("%s SRV 0 %d %d %s", name, r.weight, r.port, r.target))
		}
		if n.cname != "" {
			lines = append(lines, fmt.Sprintf("%s CNAME %s", name, n.cname))
		}
		if n.txt != "" {
			lines = append(lines, fmt.Sprintf("%s TXT %s", name, n.txt))
		}
		if len(lines) == before {
			lines = append(lines, name)
		}
	}
	for rev, names := range z.ptr {
		for _, name := range names {
			lines = append(lines, fmt.Sprintf("%s PTR %s", rev, name))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// The whole zone of a node's Services: every name CoreDNS's kubernetes
// plugin answers for them, the empty names between them, and the reverse
// names of ClusterIPs and ready endpoints; unready endpoints and a
// headless Service without a ready one have no name.
func TestZone(t *testing.T) {
	want := `10-88-0-2.redis-master.default.svc.cluster.local. A 10.88.0.2
10-88-0-20.web.other.svc.cluster.local. A 10.88.0.20
10-88-0-3.frontend.default.svc.cluster.local. A 10.88.0.3
10-88-0-4.frontend.default.svc.cluster.local. A 10.88.0.4
10.0.88.10.in-addr.arpa. PTR db-0.db.default.svc.cluster.local.
11.0.88.10.in-addr.arpa. PTR db-1.db.default.svc.cluster.local.
2.0.88.10.in-addr.arpa. PTR 10-88-0-2.redis-master.default.svc.cluster.local.
20.0.88.10.in-addr.arpa. PTR 10-88-0-20.web.other.svc.cluster.local.
20.0.96.10.in-addr.arpa. PTR redis-master.default.svc.cluster.local.
3.0.88.10.in-addr.arpa. PTR 10-88-0-3.frontend.default.svc.cluster.local.
30.0.96.10.in-addr.arpa. PTR frontend.default.svc.cluster.local.
4.0.88.10.in-addr.arpa. PTR 10-88-0-4.frontend.default.svc.cluster.local.
40.0.96.10.in-addr.arpa. PTR registry.kube-system.svc.cluster.local.
_http._tcp.registry.kube-system.svc.cluster.local. A 10.96.0.40
_http._tcp.registry.kube-system.svc.cluster.local. SRV 0 100 80 registry.kube-system.svc.cluster.local.
_mysql._tcp.db.default.svc.cluster.local. A 10.88.0.10
_mysql._tcp.db.default.svc.cluster.local. SRV 0 100 3306 db-0.db.default.svc.cluster.local.
_redis._tcp.redis-master.default.svc.cluster.local. A 10.96.0.20
_redis._tcp.redis-master.default.svc.cluster.local. SRV 0 100 6379 redis-master.default.svc.cluster.local.
_syslog._udp.registry.kube-system.svc.cluster.local. A 10.96.0.40
_syslog._udp.registry.kube-system.svc.cluster.local. SRV 0 100 514 registry.kube-system.svc.cluster.local.
_tcp.db.default.svc.cluster.local.
_tcp.redis-master.default.svc.cluster.local.
_tcp.registry.kube-system.svc.cluster.local.
_udp.registry.kube-system.svc.cluster.local.
alias.default.svc.cluster.local. CNAME redis-master.default.svc.cluster.local.
cluster.local.
db-0.db.default.svc.cluster.local. A 10.88.0.10
db-1.db.default.svc.cluster.local. A 10.88.0.11
db.default.svc.cluster.local. A 10.88.0.10
db.default.svc.cluster.local. A 10.88.0.11
db.default.svc.cluster.local. SRV 0 100 3306 db-0.db.default.svc.cluster.local.
default.svc.cluster.local.
dns-version.cluster.local. TXT 1.1.0
frontend.default.svc.cluster.local. A 10.96.0.30
frontend.default.svc.cluster.local. SRV 0 100 80 frontend.default.svc.cluster.local.
kube-system.svc.cluster.local.
other.svc.cluster.local.
pod.cluster.local.
redis-master.default.svc.cluster.local. A 10.96.0.20
redis-master.default.svc.cluster.local. SRV 0 100 6379 redis-master.default.svc.cluster.local.
registry.kube-system.svc.cluster.local. A 10.96.0.40
registry.kube-system.svc.cluster.local. SRV 0 50 514 registry.kube-system.svc.cluster.local.
registry.kube-system.svc.cluster.local. SRV 0 50 80 registry.kube-system.svc.cluster.local.
search.default.svc.cluster.local. CNAME www.example.org.
svc.cluster.local.
web.other.svc.cluster.local. A 10.88.0.20
`
	if got := dump(buildZone(cluster(), "cluster.local.", 1, 1, nil)); got != want {
		t.Errorf("zone:\n%s\nwant:\n%s", got, want)
	}
}

// A pod's name is its address with dashes under its namespace, for any
// namespace (kubeadm's `pods insecure`); a namespace under pod. exists
// without data; anything else there does not exist.
func TestPodNames(t *testing.T) {
	z := buildZone(nil, "cluster.local.", 1, 1, nil)
	for _, c := range []struct {
		name   string
		addr   string // "": none
		exists bool
	}{
		{"10-88-0-7.default.pod.cluster.local.", "10.88.0.7", true},
		{"fd00--7.ns.pod.cluster.local.", "fd00::7", true},
		{"default.pod.cluster.local.", "", true},
		{"10-88-0.default.pod.cluster.local.", "", false},
		{"web.default.pod.cluster.local.", "", false},
		{"a.10-88-0-7.default.pod.cluster.local.", "", false},
		{"10-88-0-7.default.svc.cluster.local.", "", false},
	} {
		addr, exists := z.podAddress(c.name)
		if exists != c.exists || (c.addr == "") == addr.IsValid() || (addr.IsValid() && addr != ip(c.addr)) {
			t.Errorf("%s: %v %v, want %q %v", c.name, addr, exists, c.addr, c.exists)
		}
	}
}
