// Package rules turns the node's Services (a service.Snapshot) into the
// nftables rules that carry their traffic, in table "ip podunit" of its own,
// built with sigs.k8s.io/knftables as kube-proxy's nftables mode builds its
// table: base chains at the netfilter hooks, verdict maps keyed by
// destination address . protocol . port that send a connection to its
// Service's chain, a random pick among the ready endpoints (numgen random
// mod N), one chain per endpoint that DNATs to the pod, ClientIP affinity in
// per-endpoint sets with a timeout, a reject (TCP reset, ICMP port
// unreachable) for a Service with no ready endpoint, and masquerade only
// where a reply would not come back otherwise.
//
// Plan is the translation, a pure function of a Snapshot and the node's
// facts; Sync applies it (the whole table replaced in one transaction) and
// Remove deletes the table. Nothing here reads or writes any other table.
//
// On one node every endpoint is local, so the rules implement the Cluster
// traffic policies with local endpoints only:
//
//   - ClusterIP: each Service port on its ClusterIP, from pods (prerouting)
//     and from the host (output).
//   - NodePort: the nodePort on every local address of the node (fib daddr
//     type local), except the Service range (the resolver's address lives
//     there) and, unless Node.Localhost, 127.0.0.0/8.
//   - LoadBalancer: the Service port on the same local addresses, as k3s's
//     ServiceLB gives a single node; plus its nodePort.
//   - externalIPs: the Service port on each external IP.
//   - Masquerade: a connection from outside the pod network (the host,
//     another machine, 127.0.0.1) and a pod reaching itself through its own
//     Service (hairpin); a pod reaching another pod keeps its address.
//   - Refusal: a port of a Service with no ready endpoint, a port a
//     ClusterIP does not serve and an address of the Service range that is
//     no Service's are refused at once (TCP reset, ICMP port unreachable),
//     from pods, the host and outside; never left to time out.
//
// IPv4 only: the table is of family ip, and IPv6 addresses of a Snapshot
// are left out (Ruleset.Skipped says which).
package rules

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/podunit/podunit/cni/service"
)

// Table is the name of podunit's nftables table (family ip).
const Table = "podunit"

// MasqueradeMark is the packet mark bit that asks the postrouting chain to
// masquerade a connection's first packet (the bit kube-proxy uses for the
// same purpose); the bit is cleared before the packet leaves.
const MasqueradeMark = "0x4000"

// Node is what the rules need to know of the node beside its Services.
type Node struct {
	// PodCIDR is the pods' network (the CNI range: 10.88.0.0/16 in the
	// packaged conflist). A connection to a Service from outside it is
	// masqueraded, so that the reply comes back through the node.
	PodCIDR netip.Prefix
	// ServiceCIDR is serviceClusterIPRange (10.96.0.0/12). A connection to
	// an address of it that no Service has, or to a port its ClusterIP
	// does not serve, is refused; NodePorts and LoadBalancer ports never
	// capture it (the resolver's address, a local address of the node,
	// lies in it).
	ServiceCIDR netip.Prefix
	// Localhost makes NodePorts and LoadBalancer ports answer on
	// 127.0.0.0/8 too (`curl localhost:80` reaches a LoadBalancer, as on
	// k3s). It needs route_localnet on PodInterface (see Sysctls); the
	// rules then drop any packet to 127.0.0.0/8 that arrives from another
	// interface than lo and is not the reply of a connection
	// (CVE-2020-8558).
	Localhost bool
	// PodInterface is the host's interface that pods are reached through
	// (the CNI bridge: podunit0). Only Sysctls uses it.
	PodInterface string
}

func (n *Node) check() error {
	if !n.PodCIDR.IsValid() || !n.PodCIDR.Addr().Is4() {
		return fmt.Errorf("pod CIDR %q: want an IPv4 prefix", n.PodCIDR)
	}
	if !n.ServiceCIDR.IsValid() || !n.ServiceCIDR.Addr().Is4() {
		return fmt.Errorf("service CIDR %q: want an IPv4 prefix", n.ServiceCIDR)
	}
	if n.PodCIDR.Overlaps(n.ServiceCIDR) {
		return fmt.Errorf("pod CIDR %s overlaps service CIDR %s", n.PodCIDR, n.ServiceCIDR)
	}
	return nil
}

// Ruleset is the whole content of table podunit for one Snapshot: the
// objects a transaction adds, in an order nft accepts (chains, sets and
// maps before the rules and elements that name them), and what they
// amount to.
type Ruleset struct {
	Objects []knftables.Object
	// AffinitySets are the sets that remember sessionAffinity clients;
	// Sync carries their clients over from the table it replaces.
	AffinitySets []AffinitySet
	Stats        Stats
	// Skipped says what of the Snapshot got no rule and why: IPv6
	// addresses, an address and port (or a node port) that an earlier
	// Service already has.
	Skipped []string
}

// Stats counts a Ruleset, for /metrics and the journal.
type Stats struct {
	// ServicePorts are the Service ports with rules (ready endpoints or a
	// reject); Endpoints the endpoint chains (a ready pod for a port).
	ServicePorts, Endpoints       int
	Chains, Sets, Rules, Elements int
}

// The fixed chains, sets and maps of the table.
const (
	chainNATPrerouting   = "nat-prerouting"
	chainNATOutput       = "nat-output"
	chainNATPostrouting  = "nat-postrouting"
	chainFilterInput     = "filter-input"
	chainFilterForward   = "filter-forward"
	chainFilterOutput    = "filter-output"
	chainFilterOutputNAT = "filter-output-post-dnat"

	chainServices      = "services"
	chainMarkMasq      = "mark-for-masquerade"
	chainMasquerade    = "masquerading"
	chainNoEndpoints   = "no-endpoints"
	chainNoEndpointsNP = "no-endpoints-node-ports"
	chainClusterIPs    = "cluster-ips-check"
	chainRefuse        = "refuse"

	mapServiceIPs     = "service-ips"
	mapNodePorts      = "node-ports"
	mapNoEndpointIPs  = "no-endpoint-service-ips"
	mapNoEndpointPort = "no-endpoint-node-ports"
	setClusterIPs     = "cluster-ips"
)

// The prefixes of the per-Service objects. Each name goes on with
// <namespace>/<name>/<protocol>/<port> (and, for an endpoint,
// /<pod IP>/<pod port>): the characters of names, numbers and addresses are
// all valid in an nftables name, and "/" appears in no fixed name.
const (
	prefixService  = "service/"
	prefixEndpoint = "endpoint/"
	prefixAffinity = "affinity/"
)

// Plan is the Ruleset that serves snap on node: pure, deterministic (Services
// in namespace/name order, endpoints in the Snapshot's order), and complete
// (Sync replaces the table with it whole). Headless and ExternalName
// Services get no rules; a Service port's endpoints are the ready ones that
// have a port for it.
func Plan(snap *service.Snapshot, node Node) (*Ruleset, error) {
	if err := node.check(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	p := &planner{
		node:      node,
		serviceIP: map[string]string{},
		nodePort:  map[string]string{},
	}
	p.base()
	var services []*service.Service
	if snap != nil {
		for i := range snap.Services {
			services = append(services, &snap.Services[i])
		}
	}
	slices.SortStableFunc(services, func(a, b *service.Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, svc := range services {
		if svc.Type == service.ExternalName || svc.Headless() {
			continue
		}
		p.service(svc, snap.Endpoints[svc.Key()])
	}
	return p.ruleset(), nil
}

// planner gathers the objects of a Ruleset by kind, so that they come out
// in an order nft accepts, and remembers the keys already taken.
type planner struct {
	node                Node
	chains, sets        []knftables.Object
	rules, elements     []knftables.Object
	affinity            []AffinitySet
	stats               Stats
	skipped             []string
	serviceIP, nodePort map[string]string // key → Service port that has it
}

func (p *planner) ruleset() *Ruleset {
	objs := make([]knftables.Object, 0, 1+len(p.chains)+len(p.sets)+len(p.rules)+len(p.elements))
	objs = append(objs, &knftables.Table{Comment: knftables.PtrTo("podunit: the node's Services (cni/rules)")})
	objs = append(objs, p.chains...)
	objs = append(objs, p.sets...)
	objs = append(objs, p.rules...)
	objs = append(objs, p.elements...)
	p.stats.Chains, p.stats.Sets = len(p.chains), len(p.sets)
	p.stats.Rules, p.stats.Elements = len(p.rules), len(p.elements)
	return &Ruleset{Objects: objs, AffinitySets: p.affinity, Stats: p.stats, Skipped: p.skipped}
}

func (p *planner) chain(name string) {
	p.chains = append(p.chains, &knftables.Chain{Name: name})
}

func (p *planner) baseChain(name string, typ knftables.BaseChainType, hook knftables.BaseChainHook, prio knftables.BaseChainPriority) {
	p.chains = append(p.chains, &knftables.Chain{Name: name, Type: &typ, Hook: &hook, Priority: &prio})
}

func (p *planner) rule(chain string, parts ...any) {
	p.rules = append(p.rules, &knftables.Rule{Chain: chain, Rule: knftables.Concat(parts...)})
}

// base is the fixed part of the table: its base chains, the dispatch of
// Service traffic, the refusals and the masquerade.
func (p *planner) base() {
	// DNAT of connections from pods and other machines (prerouting) and
	// from the host itself (output); masquerade after routing.
	p.baseChain(chainNATPrerouting, knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority)
	p.baseChain(chainNATOutput, knftables.NATType, knftables.OutputHook, knftables.DNATPriority)
	p.baseChain(chainNATPostrouting, knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority)
	// Refusals see a connection's first packet before DNAT (a Service
	// without endpoints is never DNATed, so its address is still there)
	// in the hooks where reject is allowed, and after DNAT for what no
	// Service caught (filter-output-post-dnat; forward is after DNAT).
	p.baseChain(chainFilterInput, knftables.FilterType, knftables.InputHook, knftables.DNATPriority+"-10")
	p.baseChain(chainFilterForward, knftables.FilterType, knftables.ForwardHook, knftables.DNATPriority+"-10")
	p.baseChain(chainFilterOutput, knftables.FilterType, knftables.OutputHook, knftables.DNATPriority+"-10")
	p.baseChain(chainFilterOutputNAT, knftables.FilterType, knftables.OutputHook, knftables.DNATPriority+"+10")
	for _, c := range []string{chainServices, chainMasquerade, chainMarkMasq, chainNoEndpoints, chainNoEndpointsNP, chainClusterIPs, chainRefuse} {
		p.chain(c)
	}
	p.sets = append(p.sets,
		&knftables.Map{Name: mapServiceIPs, Type: "ipv4_addr . inet_proto . inet_service : verdict",
			Comment: knftables.PtrTo("ClusterIPs and external IPs of Services with ready endpoints")},
		&knftables.Map{Name: mapNodePorts, Type: "inet_proto . inet_service : verdict",
			Comment: knftables.PtrTo("NodePorts and LoadBalancer ports (on the node's local addresses) of Services with ready endpoints")},
		&knftables.Map{Name: mapNoEndpointIPs, Type: "ipv4_addr . inet_proto . inet_service : verdict",
			Comment: knftables.PtrTo("ClusterIPs and external IPs of Services without a ready endpoint: refused")},
		&knftables.Map{Name: mapNoEndpointPort, Type: "inet_proto . inet_service : verdict",
			Comment: knftables.PtrTo("NodePorts and LoadBalancer ports of Services without a ready endpoint: refused")},
		&knftables.Set{Name: setClusterIPs, Type: "ipv4_addr",
			Comment: knftables.PtrTo("every ClusterIP: a port it does not serve is refused")},
	)

	p.rule(chainNATPrerouting, "jump", chainServices)
	p.rule(chainNATOutput, "jump", chainServices)
	p.rule(chainNATPostrouting, "jump", chainMasquerade)

	p.rule(chainFilterInput, "ct state new jump", chainNoEndpoints)
	p.rule(chainFilterInput, "ct state new jump", chainNoEndpointsNP)
	if p.node.Localhost {
		// route_localnet lets 127.0.0.0/8 in from every interface it is
		// set on: only lo, replies and what someone DNATed may use it.
		p.rule(chainFilterInput, `iifname != "lo" ip daddr 127.0.0.0/8`,
			"ct state != { established, related } ct status & dnat == 0 drop")
	}
	p.rule(chainFilterForward, "ct state new jump", chainNoEndpoints)
	p.rule(chainFilterForward, "ct state new jump", chainClusterIPs)
	p.rule(chainFilterOutput, "ct state new jump", chainNoEndpoints)
	p.rule(chainFilterOutputNAT, "ct state new jump", chainClusterIPs)

	p.rule(chainServices, "ip daddr . meta l4proto . th dport vmap @"+mapServiceIPs)
	p.rule(chainServices, "fib daddr type local", p.notNodePortAddrs(), "meta l4proto . th dport vmap @"+mapNodePorts)

	p.rule(chainNoEndpoints, "ip daddr . meta l4proto . th dport vmap @"+mapNoEndpointIPs)
	p.rule(chainNoEndpointsNP, p.notNodePortAddrs(), "meta l4proto . th dport vmap @"+mapNoEndpointPort)

	p.rule(chainClusterIPs, "ip daddr @"+setClusterIPs, "goto", chainRefuse)
	p.rule(chainClusterIPs, "ip daddr", p.node.ServiceCIDR.Masked(), "fib daddr type != local goto", chainRefuse)

	p.rule(chainRefuse, "meta l4proto tcp reject with tcp reset")
	p.rule(chainRefuse, "reject")

	p.rule(chainMarkMasq, "meta mark set meta mark |", MasqueradeMark)
	p.rule(chainMasquerade, "meta mark &", MasqueradeMark, "== 0 return")
	p.rule(chainMasquerade, "meta mark set meta mark ^", MasqueradeMark)
	p.rule(chainMasquerade, "masquerade fully-random")
}

// notNodePortAddrs are the local addresses NodePorts and LoadBalancer ports
// stay off: the Service range, and 127.0.0.0/8 unless Localhost.
func (p *planner) notNodePortAddrs() string {
	if p.node.Localhost {
		return "ip daddr != " + p.node.ServiceCIDR.Masked().String()
	}
	return "ip daddr != { 127.0.0.0/8, " + p.node.ServiceCIDR.Masked().String() + " }"
}

// target is one ready endpoint of a Service port.
type target struct {
	ip   netip.Addr
	port int32
	// chain and affinity are the endpoint's chain and affinity set.
	chain, affinity string
}

// service adds the rules of one Service: per port, the dispatch from its
// addresses to its chain (or to a refusal) and its endpoints' chains.
func (p *planner) service(svc *service.Service, eps []service.Endpoint) {
	if !svc.ClusterIP.Is4() {
		p.skipped = append(p.skipped, fmt.Sprintf("%s: ClusterIP %s is not IPv4", svc.Key(), svc.ClusterIP))
		return
	}
	p.elements = append(p.elements, &knftables.Element{Set: setClusterIPs, Key: []string{svc.ClusterIP.String()}})
	var externalIPs []netip.Addr
	for _, ip := range svc.ExternalIPs {
		if !ip.Is4() {
			p.skipped = append(p.skipped, fmt.Sprintf("%s: external IP %s is not IPv4", svc.Key(), ip))
			continue
		}
		externalIPs = append(externalIPs, ip)
	}
	for _, port := range svc.Ports {
		p.port(svc, port, externalIPs, p.targets(svc, port, eps))
	}
}

// targets are the ready endpoints of port, each IP and port once.
func (p *planner) targets(svc *service.Service, port service.Port, eps []service.Endpoint) []target {
	base := portName(svc, port)
	var out []target
	for _, ep := range eps {
		n, ok := ep.Ports[port.Name]
		if !ep.Ready || !ok {
			continue
		}
		if !ep.IP.Is4() {
			p.skipped = append(p.skipped, fmt.Sprintf("%s: endpoint %s/%s: %s is not IPv4", svc.Key(), ep.Namespace, ep.Pod, ep.IP))
			continue
		}
		if slices.ContainsFunc(out, func(t target) bool { return t.ip == ep.IP && t.port == n }) {
			continue
		}
		suffix := base + "/" + ep.IP.String() + "/" + strconv.Itoa(int(n))
		out = append(out, target{ip: ep.IP, port: n, chain: prefixEndpoint + suffix, affinity: prefixAffinity + suffix})
	}
	return out
}

// portName is <namespace>/<name>/<protocol>/<port>, the name of a Service
// port's objects after their prefix.
func portName(svc *service.Service, port service.Port) string {
	return svc.Namespace + "/" + svc.Name + "/" + proto(port) + "/" + strconv.Itoa(int(port.Port))
}

// proto is a port's protocol as nftables writes it.
func proto(port service.Port) string {
	return strings.ToLower(string(cmp.Or(port.Protocol, service.TCP)))
}

// port adds one Service port: its addresses in the dispatch maps, its chain
// and its endpoints' chains; without a target, its addresses in the refusal
// maps instead.
func (p *planner) port(svc *service.Service, port service.Port, externalIPs []netip.Addr, targets []target) {
	p.stats.ServicePorts++
	name := portName(svc, port)
	chain := prefixService + name
	comment := svc.Key() + ":" + strconv.Itoa(int(port.Port))
	if port.Name != "" {
		comment = svc.Key() + ":" + port.Name
	}
	ipMap, portMap, verdict := mapServiceIPs, mapNodePorts, "goto "+chain
	if len(targets) == 0 {
		ipMap, portMap, verdict = mapNoEndpointIPs, mapNoEndpointPort, "goto "+chainRefuse
	}
	pr, n := proto(port), strconv.Itoa(int(port.Port))
	for _, ip := range append([]netip.Addr{svc.ClusterIP}, externalIPs...) {
		key := []string{ip.String(), pr, n}
		if p.claim(p.serviceIP, strings.Join(key, " . "), comment) {
			p.elements = append(p.elements, &knftables.Element{Map: ipMap, Key: key, Value: []string{verdict}, Comment: &comment})
		}
	}
	var nodePorts []string
	if svc.Type == service.LoadBalancer {
		nodePorts = append(nodePorts, n)
	}
	if (svc.Type == service.NodePort || svc.Type == service.LoadBalancer) && port.NodePort != 0 {
		nodePorts = append(nodePorts, strconv.Itoa(int(port.NodePort)))
	}
	for _, np := range nodePorts {
		key := []string{pr, np}
		if p.claim(p.nodePort, strings.Join(key, " . "), comment) {
			p.elements = append(p.elements, &knftables.Element{Map: portMap, Key: key, Value: []string{verdict}, Comment: &comment})
		}
	}
	if len(targets) == 0 {
		return
	}

	p.chain(chain)
	// From outside the pod network (the host, another machine,
	// 127.0.0.1): masquerade, so that the pod answers the node.
	p.rule(chain, "ip saddr !=", p.node.PodCIDR.Masked(), "jump", chainMarkMasq)
	if svc.SessionAffinity {
		timeout := cmp.Or(svc.AffinityTimeout, service.DefaultAffinityTimeout).Round(time.Second)
		for _, t := range targets {
			p.sets = append(p.sets, &knftables.Set{Name: t.affinity, Type: "ipv4_addr",
				Flags: []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag}, Timeout: &timeout})
			p.affinity = append(p.affinity, AffinitySet{Name: t.affinity, Timeout: timeout})
			p.rule(chain, "ip saddr @"+t.affinity, "goto", t.chain)
		}
	}
	if len(targets) == 1 {
		p.rule(chain, "goto", targets[0].chain)
	} else {
		var vmap []string
		for i, t := range targets {
			vmap = append(vmap, strconv.Itoa(i)+" : goto "+t.chain)
		}
		p.rule(chain, "numgen random mod", len(targets), "vmap {", strings.Join(vmap, " , "), "}")
	}
	for _, t := range targets {
		p.stats.Endpoints++
		p.chain(t.chain)
		// Hairpin: a pod that reaches itself through its Service must
		// see the connection come from elsewhere to answer it.
		p.rule(t.chain, "ip saddr", t.ip, "jump", chainMarkMasq)
		if svc.SessionAffinity {
			p.rule(t.chain, "update @"+t.affinity, "{ ip saddr }")
		}
		p.rule(t.chain, "meta l4proto", pr, "dnat to", netip.AddrPortFrom(t.ip, uint16(t.port)))
	}
}

// claim takes key in taken for the Service port named by owner; false (and
// a note in Skipped) when an earlier one has it.
func (p *planner) claim(taken map[string]string, key, owner string) bool {
	if first, ok := taken[key]; ok {
		p.skipped = append(p.skipped, fmt.Sprintf("%s: %s is %s's already", owner, key, first))
		return false
	}
	taken[key] = owner
	return true
}
