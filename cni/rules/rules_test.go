package rules

import (
	"context"
	"errors"
	"flag"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/podunit/podunit/cni/service"
)

var update = flag.Bool("update", false, "rewrite the golden rulesets in testdata")

var (
	ip     = netip.MustParseAddr
	prefix = netip.MustParsePrefix
	// testNode is the packaged defaults: the CNI range and the
	// kube-apiserver's Service range.
	testNode = Node{PodCIDR: prefix("10.88.0.0/16"), ServiceCIDR: prefix("10.96.0.0/12"), PodInterface: "podunit0"}
)

// web is a Service selecting app=web on port 80 (target port http, by name)
// and the pods web-0..web-(n-1) at 10.88.0.2.., ready unless in unready.
func web(typ service.Type, n int, unready ...int) ([]service.Service, []service.Pod) {
	svc := service.Service{Namespace: "default", Name: "web", Type: typ, ClusterIP: ip("10.96.0.20"),
		Selector: map[string]string{"app": "web"},
		Ports:    []service.Port{{Name: "http", Protocol: service.TCP, Port: 80, TargetPortName: "http"}}}
	if typ != service.ClusterIP {
		svc.Ports[0].NodePort = 30080
	}
	var pods []service.Pod
	for i := range n {
		pods = append(pods, service.Pod{Namespace: "default", Name: "web-" + string(rune('0'+i)),
			Labels: map[string]string{"app": "web"}, IP: netip.AddrFrom4([4]byte{10, 88, 0, byte(2 + i)}),
			Ready: !slices.Contains(unready, i), Ports: []service.ContainerPort{{Name: "http", Protocol: service.TCP, Port: 8080}}})
	}
	return []service.Service{svc}, pods
}

type ruleCase struct {
	name string
	snap *service.Snapshot
	node Node
	// has and lacks are lines (or parts of lines) of the dump that the
	// case is about, asserted beside the golden file.
	has, lacks []string
	skipped    []string
}

func ruleCases() []ruleCase {
	build := func(svcs []service.Service, pods []service.Pod) *service.Snapshot { return service.Build(svcs, pods) }
	// with is web's ClusterIP Service and n ready pods, edited.
	with := func(n int, edit func(*service.Service)) *service.Snapshot {
		svcs, pods := web(service.ClusterIP, n)
		edit(&svcs[0])
		return build(svcs, pods)
	}
	localhost := testNode
	localhost.Localhost = true
	return []ruleCase{
		{name: "no-service", snap: &service.Snapshot{}, node: testNode,
			has: []string{
				"add chain ip podunit nat-prerouting { type nat hook prerouting priority -100 ; }",
				"add rule ip podunit services fib daddr type local ip daddr != { 127.0.0.0/8, 10.96.0.0/12 } meta l4proto . th dport vmap @node-ports",
				"add rule ip podunit cluster-ips-check ip daddr 10.96.0.0/12 fib daddr type != local goto refuse",
				"add rule ip podunit refuse meta l4proto tcp reject with tcp reset",
			},
			lacks: []string{"add element", "127.0.0.0/8 ct state"}},
		{name: "clusterip-3-endpoints", snap: build(web(service.ClusterIP, 3)), node: testNode,
			has: []string{
				`add element ip podunit service-ips { 10.96.0.20 . tcp . 80 comment "default/web:http" : goto service/default/web/tcp/80 }`,
				"add rule ip podunit service/default/web/tcp/80 ip saddr != 10.88.0.0/16 jump mark-for-masquerade",
				"add rule ip podunit service/default/web/tcp/80 numgen random mod 3 vmap { 0 : goto endpoint/default/web/tcp/80/10.88.0.2/8080 , 1 : goto endpoint/default/web/tcp/80/10.88.0.3/8080 , 2 : goto endpoint/default/web/tcp/80/10.88.0.4/8080 }",
				"add rule ip podunit endpoint/default/web/tcp/80/10.88.0.3/8080 ip saddr 10.88.0.3 jump mark-for-masquerade",
				"add rule ip podunit endpoint/default/web/tcp/80/10.88.0.3/8080 meta l4proto tcp dnat to 10.88.0.3:8080",
				"add element ip podunit cluster-ips { 10.96.0.20 }",
			},
			lacks: []string{"add element ip podunit node-ports", "add element ip podunit no-endpoint", "affinity"}},
		{name: "one-unready", snap: build(web(service.ClusterIP, 3, 1)), node: testNode,
			has:   []string{"numgen random mod 2 vmap { 0 : goto endpoint/default/web/tcp/80/10.88.0.2/8080 , 1 : goto endpoint/default/web/tcp/80/10.88.0.4/8080 }"},
			lacks: []string{"10.88.0.3"}},
		{name: "no-ready-endpoint", snap: build(web(service.NodePort, 2, 0, 1)), node: testNode,
			has: []string{
				`add element ip podunit no-endpoint-service-ips { 10.96.0.20 . tcp . 80 comment "default/web:http" : goto refuse }`,
				`add element ip podunit no-endpoint-node-ports { tcp . 30080 comment "default/web:http" : goto refuse }`,
				"add rule ip podunit no-endpoints-node-ports ip daddr != { 127.0.0.0/8, 10.96.0.0/12 } meta l4proto . th dport vmap @no-endpoint-node-ports",
			},
			lacks: []string{"service/default/web", "endpoint/", "add element ip podunit service-ips", "add element ip podunit node-ports"}},
		{name: "nodeport", snap: build(web(service.NodePort, 2)), node: testNode,
			has: []string{
				`add element ip podunit node-ports { tcp . 30080 comment "default/web:http" : goto service/default/web/tcp/80 }`,
				`add element ip podunit service-ips { 10.96.0.20 . tcp . 80 comment "default/web:http" : goto service/default/web/tcp/80 }`,
			},
			lacks: []string{"tcp . 80 comment \"default/web:http\" : goto service/default/web/tcp/80 }\nadd element ip podunit node-ports"}},
		{name: "loadbalancer", snap: build(web(service.LoadBalancer, 2)), node: testNode,
			has: []string{
				`add element ip podunit node-ports { tcp . 80 comment "default/web:http" : goto service/default/web/tcp/80 }`,
				`add element ip podunit node-ports { tcp . 30080 comment "default/web:http" : goto service/default/web/tcp/80 }`,
			}},
		{name: "loadbalancer-localhost", snap: build(web(service.LoadBalancer, 1)), node: localhost,
			has: []string{
				"add rule ip podunit services fib daddr type local ip daddr != 10.96.0.0/12 meta l4proto . th dport vmap @node-ports",
				`add rule ip podunit filter-input iifname != "lo" ip daddr 127.0.0.0/8 ct state != { established, related } ct status & dnat == 0 drop`,
				// One endpoint: no random pick.
				"add rule ip podunit service/default/web/tcp/80 goto endpoint/default/web/tcp/80/10.88.0.2/8080",
			},
			lacks: []string{"numgen", "{ 127.0.0.0/8"}},
		{name: "externalips", node: testNode,
			snap: with(2, func(s *service.Service) {
				s.ExternalIPs = []netip.Addr{ip("198.51.100.10"), ip("2001:db8::10")}
			}),
			has: []string{
				`add element ip podunit service-ips { 198.51.100.10 . tcp . 80 comment "default/web:http" : goto service/default/web/tcp/80 }`,
			},
			lacks:   []string{"2001:db8"},
			skipped: []string{"default/web: external IP 2001:db8::10 is not IPv4"}},
		{name: "udp", node: testNode, snap: build(
			[]service.Service{{Namespace: "kube-system", Name: "dns", Type: service.NodePort, ClusterIP: ip("10.96.0.53"),
				Selector: map[string]string{"app": "dns"},
				Ports: []service.Port{
					{Name: "dns", Protocol: service.UDP, Port: 53, TargetPort: 5353, NodePort: 30053},
					{Name: "dns-tcp", Protocol: service.TCP, Port: 53, TargetPort: 5353, NodePort: 30053}}}},
			[]service.Pod{{Namespace: "kube-system", Name: "dns-0", Labels: map[string]string{"app": "dns"}, IP: ip("10.88.0.9"), Ready: true}}),
			has: []string{
				`add element ip podunit service-ips { 10.96.0.53 . udp . 53 comment "kube-system/dns:dns" : goto service/kube-system/dns/udp/53 }`,
				`add element ip podunit node-ports { udp . 30053 comment "kube-system/dns:dns" : goto service/kube-system/dns/udp/53 }`,
				`add element ip podunit node-ports { tcp . 30053 comment "kube-system/dns:dns-tcp" : goto service/kube-system/dns/tcp/53 }`,
				"add rule ip podunit endpoint/kube-system/dns/udp/53/10.88.0.9/5353 meta l4proto udp dnat to 10.88.0.9:5353",
			}},
		{name: "named-target-port", node: testNode, snap: func() *service.Snapshot {
			svcs, pods := web(service.ClusterIP, 3)
			pods[1].Ports[0].Port = 9090
			pods[2].Ports[0].Name = "metrics" // no port named http: not an endpoint of it
			return build(svcs, pods)
		}(),
			has: []string{
				"add rule ip podunit service/default/web/tcp/80 numgen random mod 2 vmap { 0 : goto endpoint/default/web/tcp/80/10.88.0.2/8080 , 1 : goto endpoint/default/web/tcp/80/10.88.0.3/9090 }",
				"add rule ip podunit endpoint/default/web/tcp/80/10.88.0.3/9090 meta l4proto tcp dnat to 10.88.0.3:9090",
			},
			lacks: []string{"10.88.0.4"}},
		{name: "affinity", node: testNode,
			snap: with(2, func(s *service.Service) {
				s.SessionAffinity, s.AffinityTimeout = true, 600*time.Second
			}),
			has: []string{
				"add set ip podunit affinity/default/web/tcp/80/10.88.0.2/8080 { type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; }",
				"add rule ip podunit service/default/web/tcp/80 ip saddr @affinity/default/web/tcp/80/10.88.0.3/8080 goto endpoint/default/web/tcp/80/10.88.0.3/8080",
				"add rule ip podunit endpoint/default/web/tcp/80/10.88.0.2/8080 update @affinity/default/web/tcp/80/10.88.0.2/8080 { ip saddr }",
			}},
		{name: "headless-and-externalname", node: testNode, snap: build(
			[]service.Service{
				{Namespace: "default", Name: "db", Type: service.ClusterIP, Selector: map[string]string{"app": "web"},
					Ports: []service.Port{{Protocol: service.TCP, Port: 80}}},
				{Namespace: "default", Name: "ext", Type: service.ExternalName, ExternalName: "example.org"},
			},
			func() []service.Pod { _, pods := web(service.ClusterIP, 2); return pods }()),
			lacks: []string{"add element", "service/", "endpoint/"}},
		{name: "conflicts", node: testNode, snap: build(
			[]service.Service{
				{Namespace: "b", Name: "second", Type: service.LoadBalancer, ClusterIP: ip("10.96.0.31"),
					Selector: map[string]string{"app": "web"}, Ports: []service.Port{{Protocol: service.TCP, Port: 30080, NodePort: 31000}}},
				{Namespace: "a", Name: "first", Type: service.NodePort, ClusterIP: ip("10.96.0.30"),
					Selector: map[string]string{"app": "web"}, Ports: []service.Port{{Protocol: service.TCP, Port: 80, NodePort: 30080}}},
				{Namespace: "c", Name: "v6", Type: service.ClusterIP, ClusterIP: ip("fd00::1"),
					Selector: map[string]string{"app": "web"}, Ports: []service.Port{{Protocol: service.TCP, Port: 80}}},
			}, nil),
			has: []string{
				`add element ip podunit no-endpoint-node-ports { tcp . 30080 comment "a/first:80" : goto refuse }`,
				`add element ip podunit no-endpoint-node-ports { tcp . 31000 comment "b/second:30080" : goto refuse }`,
			},
			lacks:   []string{"fd00", "\"b/second:30080\" : goto refuse }\nadd element ip podunit no-endpoint-node-ports { tcp . 30080"},
			skipped: []string{"b/second:30080: tcp . 30080 is a/first:80's already", "c/v6: ClusterIP fd00::1 is not IPv4"}},
	}
}

// The whole ruleset of each Snapshot, as knftables.Fake holds it after a
// Sync, equals its golden file (go test ./cni/rules -update rewrites them);
// what each case is about is asserted besides, so that a rewrite cannot
// hide a change of behaviour.
func TestGoldenRulesets(t *testing.T) {
	for _, tc := range ruleCases() {
		t.Run(tc.name, func(t *testing.T) {
			nft := knftables.NewFake(knftables.IPv4Family, Table)
			res, err := Sync(context.Background(), nft, tc.snap, tc.node)
			if err != nil {
				t.Fatal(err)
			}
			dump := nft.Dump()
			golden := filepath.Join("testdata", tc.name+".nft")
			if *update {
				if err := os.WriteFile(golden, []byte(dump), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if dump != string(want) {
				t.Errorf("ruleset differs from %s (-update rewrites it):\n%s", golden, dump)
			}
			for _, s := range tc.has {
				if !strings.Contains(dump, s) {
					t.Errorf("ruleset lacks %q", s)
				}
			}
			for _, s := range tc.lacks {
				if strings.Contains(dump, s) {
					t.Errorf("ruleset has %q", s)
				}
			}
			if !slices.Equal(res.Skipped, tc.skipped) {
				t.Errorf("skipped %q, want %q", res.Skipped, tc.skipped)
			}
			if got := strings.Count(dump, "add rule "); got != res.Rules {
				t.Errorf("Result.Rules %d, the table has %d", res.Rules, got)
			}
			if got := strings.Count(dump, "add element "); got != res.Elements {
				t.Errorf("Result.Elements %d, the table has %d", res.Elements, got)
			}
		})
	}
}

// A Sync replaces the table whole: what an earlier Sync wrote and the
// Snapshot no longer has is gone, and the result equals a first Sync.
func TestSyncReplacesTheTable(t *testing.T) {
	ctx := context.Background()
	nft := knftables.NewFake(knftables.IPv4Family, Table)
	if _, err := Sync(ctx, nft, service.Build(web(service.LoadBalancer, 3)), testNode); err != nil {
		t.Fatal(err)
	}
	smaller := service.Build(web(service.ClusterIP, 1))
	if _, err := Sync(ctx, nft, smaller, testNode); err != nil {
		t.Fatal(err)
	}
	fresh := knftables.NewFake(knftables.IPv4Family, Table)
	if _, err := Sync(ctx, fresh, smaller, testNode); err != nil {
		t.Fatal(err)
	}
	if nft.Dump() != fresh.Dump() {
		t.Errorf("after a second Sync:\n%s\nwant what a first Sync writes:\n%s", nft.Dump(), fresh.Dump())
	}
	if strings.Contains(nft.Dump(), "10.88.0.3") || strings.Contains(nft.Dump(), "add element ip podunit node-ports") {
		t.Errorf("left over from the first Sync:\n%s", nft.Dump())
	}
	if ops := nft.LastTransaction.String(); !strings.HasPrefix(ops, "add table ip podunit\ndelete table ip podunit\nadd table ip podunit") {
		t.Errorf("the transaction does not replace the table first:\n%s", ops)
	}

	if err := Remove(ctx, nft); err != nil {
		t.Fatal(err)
	}
	if nft.Dump() != "" {
		t.Errorf("after Remove:\n%s", nft.Dump())
	}
	if err := Remove(ctx, nft); err != nil {
		t.Errorf("Remove without a table: %v", err)
	}
}

// The clients sessionAffinity remembers survive a Sync for the endpoints
// that stay; an endpoint that leaves takes its clients along.
func TestSyncKeepsAffinityClients(t *testing.T) {
	ctx := context.Background()
	nft := knftables.NewFake(knftables.IPv4Family, Table)
	affine := func(n int, unready ...int) *service.Snapshot {
		svcs, pods := web(service.ClusterIP, n, unready...)
		svcs[0].SessionAffinity = true
		return service.Build(svcs, pods)
	}
	if _, err := Sync(ctx, nft, affine(2), testNode); err != nil {
		t.Fatal(err)
	}
	// What the packet path's "update @set { ip saddr }" would have added.
	set0, set1 := "affinity/default/web/tcp/80/10.88.0.2/8080", "affinity/default/web/tcp/80/10.88.0.3/8080"
	tx := nft.NewTransaction()
	tx.Add(&knftables.Element{Set: set0, Key: []string{"192.0.2.7"}})
	tx.Add(&knftables.Element{Set: set1, Key: []string{"192.0.2.8"}})
	tx.Add(&knftables.Element{Set: set1, Key: []string{"10.88.0.9"}})
	if err := nft.Run(ctx, tx); err != nil {
		t.Fatal(err)
	}

	res, err := Sync(ctx, nft, affine(2, 0), testNode) // web-0 unready
	if err != nil {
		t.Fatal(err)
	}
	if res.Affinity != 2 {
		t.Errorf("carried %d clients over, want 2", res.Affinity)
	}
	if nft.Table.Sets[set0] != nil {
		t.Errorf("the set of the endpoint that left is still there")
	}
	var clients []string
	for _, e := range nft.Table.Sets[set1].Elements {
		clients = append(clients, e.Key...)
	}
	if !reflect.DeepEqual(clients, []string{"192.0.2.8", "10.88.0.9"}) {
		t.Errorf("clients of the endpoint that stays: %v", clients)
	}
	if nft.Table.Sets[set1].Timeout == nil || *nft.Table.Sets[set1].Timeout != service.DefaultAffinityTimeout {
		t.Errorf("affinity timeout %v, want the default %v", nft.Table.Sets[set1].Timeout, service.DefaultAffinityTimeout)
	}
}

func TestPlanRefusesABadNode(t *testing.T) {
	for _, n := range []Node{
		{},
		{PodCIDR: prefix("fd00::/64"), ServiceCIDR: prefix("10.96.0.0/12")},
		{PodCIDR: prefix("10.0.0.0/8"), ServiceCIDR: prefix("10.96.0.0/12")},
	} {
		if _, err := Plan(&service.Snapshot{}, n); err == nil {
			t.Errorf("Plan with %+v: no error", n)
		}
	}
}

func TestSysctls(t *testing.T) {
	n := testNode
	n.Localhost = true
	n.PodInterface = "br.100"
	got := map[string]string{}
	for _, s := range Sysctls(n) {
		got[s.Name()] = s.Value
	}
	want := map[string]string{"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1", "net.ipv4.conf.br/100.route_localnet": "1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sysctls: %v, want %v", got, want)
	}
	n.Localhost = false
	if s := Sysctls(n); s[len(s)-1].Value != "0" {
		t.Errorf("without Localhost: %+v, want route_localnet 0", s)
	}

	// The bridge not there yet: the others are written all the same.
	root := t.TempDir()
	for _, d := range []string{"net/ipv4", "net/bridge"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	err := WriteSysctls(root, Sysctls(n))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "net.ipv4.conf.br/100.route_localnet") {
		t.Errorf("WriteSysctls without the bridge: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "net/ipv4/ip_forward")); string(b) != "1\n" {
		t.Errorf("ip_forward %q after a failed route_localnet", b)
	}
	for _, d := range []string{"net/ipv4/conf/br.100"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteSysctls(root, Sysctls(n)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "net/ipv4/conf/br.100/route_localnet")); string(b) != "0\n" {
		t.Errorf("route_localnet %q", b)
	}
}
