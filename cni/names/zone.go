package names

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/podunit/podunit/cni/service"
)

// schemaVersion is the version of the Kubernetes DNS-based service
// discovery specification the zone follows, answered as TXT at
// dns-version.<domain>.
const schemaVersion = "1.1.0"

// zone is the cluster's names at one moment, built from a Snapshot and
// never changed after, so that queries read it without a lock.
//
// Every name is kept lower case and fully qualified. Names are those of
// CoreDNS's kubernetes plugin: <svc>.<ns>.svc.<domain> (the ClusterIP, or
// a headless Service's ready endpoints, or an ExternalName's CNAME),
// <endpoint>.<svc>.<ns>.svc.<domain> for each ready endpoint (its hostname,
// or its address with dashes), _<port>._<proto>.<svc>.<ns>.svc.<domain>
// for each named port (SRV), and the empty names between them and the
// domain (<ns>.svc.<domain>, _tcp.<svc>...), which exist with no data: a
// name below them exists, so they answer NODATA, not NXDOMAIN.
type zone struct {
	origin string // the cluster domain: "cluster.local."
	ttl    uint32
	serial uint32
	nodes  map[string]*node
	// ptr maps reverse names (in-addr.arpa, ip6.arpa) of ClusterIPs and
	// ready endpoints to the names they belong to.
	ptr map[string][]string
}

// node is the data of one name.
type node struct {
	addrs []netip.Addr // A and AAAA records
	srv   []srvRecord
	cname string // an ExternalName Service's target
	txt   string
}

// srvRecord is one SRV record with its target's addresses, for the
// additional section.
type srvRecord struct {
	port   uint16
	weight uint16
	target string
	addrs  []netip.Addr
}

// buildZone indexes snap's names in the zone origin (lower case, fully
// qualified); nameservers are the resolver's own addresses, which the
// zone's NS name (ns.dns.<domain>) answers.
func buildZone(snap *service.Snapshot, origin string, ttl, serial uint32, nameservers []netip.Addr) *zone {
	z := &zone{origin: origin, ttl: ttl, serial: serial, nodes: map[string]*node{}, ptr: map[string][]string{}}
	z.add(origin)
	z.add("svc." + origin)
	z.add("pod." + origin)
	z.add("dns-version." + origin).txt = schemaVersion
	if len(nameservers) > 0 {
		z.add("ns.dns." + origin).addrs = nameservers
	}
	if snap == nil {
		return z
	}
	servicePTR := map[string]string{} // a ClusterIP's name wins over endpoints'
	for i := range snap.Services {
		svc := &snap.Services[i]
		z.addService(svc, snap.Endpoints[svc.Key()])
		if !svc.Headless() && svc.Type != service.ExternalName && svc.ClusterIP.IsValid() {
			servicePTR[reverseName(svc.ClusterIP)] = z.serviceName(svc)
		}
	}
	for rev, name := range servicePTR {
		z.ptr[rev] = []string{name}
	}
	for _, n := range z.nodes {
		n.srv = weigh(n.srv)
	}
	for rev, names := range z.ptr {
		slices.Sort(names)
		z.ptr[rev] = slices.Compact(names)
	}
	return z
}

// add makes name and every name between it and the origin exist.
func (z *zone) add(name string) *node {
	if n, ok := z.nodes[name]; ok {
		return n
	}
	n := &node{}
	z.nodes[name] = n
	if name != z.origin {
		z.add(name[strings.IndexByte(name, '.')+1:])
	}
	return n
}

func (z *zone) serviceName(svc *service.Service) string {
	return strings.ToLower(svc.Name + "." + svc.Namespace + ".svc." + z.origin)
}

// addService adds a Service's names: the Service's own, its ready
// endpoints' and its ports'.
func (z *zone) addService(svc *service.Service, eps []service.Endpoint) {
	base := z.serviceName(svc)
	z.add(base[strings.IndexByte(base, '.')+1:]) // the namespace exists even when the name does not
	if svc.Type == service.ExternalName {
		n := z.add(base)
		if ip, err := netip.ParseAddr(svc.ExternalName); err == nil {
			n.addrs = []netip.Addr{ip.Unmap()} // CoreDNS answers an address given as externalName as one
		} else {
			n.cname = dns.Fqdn(strings.ToLower(svc.ExternalName))
		}
		return
	}
	type member struct {
		name string
		ep   *service.Endpoint
	}
	var ready []member
	for i := range eps {
		ep := &eps[i]
		if !ep.Ready || !ep.IP.IsValid() {
			continue
		}
		name := endpointLabel(ep) + "." + base
		n := z.add(name)
		n.addrs = appendNew(n.addrs, ep.IP.Unmap())
		z.ptr[reverseName(ep.IP)] = append(z.ptr[reverseName(ep.IP)], name)
		ready = append(ready, member{name, ep})
	}
	var addrs []netip.Addr
	if svc.Headless() {
		for _, m := range ready {
			addrs = appendNew(addrs, m.ep.IP.Unmap())
		}
		if len(addrs) == 0 {
			return // as CoreDNS: a headless Service with no ready endpoint has no name (NXDOMAIN)
		}
	} else {
		addrs = []netip.Addr{svc.ClusterIP.Unmap()}
	}
	n := z.add(base)
	n.addrs = addrs
	for _, p := range svc.Ports {
		var recs []srvRecord
		var portAddrs []netip.Addr
		if svc.Headless() {
			for _, m := range ready {
				if port, ok := m.ep.Ports[p.Name]; ok {
					recs = append(recs, srvRecord{port: uint16(port), target: m.name, addrs: []netip.Addr{m.ep.IP.Unmap()}})
					portAddrs = appendNew(portAddrs, m.ep.IP.Unmap())
				}
			}
		} else {
			recs = []srvRecord{{port: uint16(p.Port), target: base, addrs: addrs}}
			portAddrs = addrs
		}
		n.srv = append(n.srv, recs...)
		if p.Name != "" && len(recs) > 0 {
			proto := strings.ToLower(string(cmp.Or(p.Protocol, service.TCP)))
			pn := z.add("_" + strings.ToLower(p.Name) + "._" + proto + "." + base)
			pn.srv = append(pn.srv, recs...)
			pn.addrs = portAddrs
		}
	}
}

// endpointLabel is an endpoint's name under its Service: its hostname, or
// its address with dashes for dots and colons (10-88-0-5), as CoreDNS
// names endpoints.
func endpointLabel(ep *service.Endpoint) string {
	if ep.Hostname != "" {
		return strings.ToLower(ep.Hostname)
	}
	ip := ep.IP.Unmap()
	if ip.Is4() {
		return strings.ReplaceAll(ip.String(), ".", "-")
	}
	label := strings.ReplaceAll(ip.String(), ":", "-")
	if strings.HasSuffix(label, "-") {
		label += "0"
	}
	return label
}

// podAddress is the address a pod name <a-b-c-d>.<ns>.pod.<domain>
// stands for, as CoreDNS answers it with `pods insecure` (kubeadm's
// configuration): any namespace, no check that such a pod exists.
// Namespace names (<ns>.pod.<domain>) exist with no address.
func (z *zone) podAddress(name string) (addr netip.Addr, exists bool) {
	rest, ok := strings.CutSuffix(name, ".pod."+z.origin)
	if !ok {
		return netip.Addr{}, false
	}
	label, ns, found := strings.Cut(rest, ".")
	if !found {
		return netip.Addr{}, true // <ns>.pod.<domain>
	}
	if strings.Contains(ns, ".") {
		return netip.Addr{}, false
	}
	s := strings.ReplaceAll(label, "-", ".")
	if strings.Count(label, "-") != 3 || strings.Contains(label, "--") {
		s = strings.ReplaceAll(label, "-", ":")
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// weigh dedupes SRV records by target and port and gives them equal
// weights that add up to about 100, as CoreDNS does.
func weigh(recs []srvRecord) []srvRecord {
	if len(recs) == 0 {
		return nil
	}
	out := recs[:0:0]
	for _, r := range recs {
		if !slices.ContainsFunc(out, func(o srvRecord) bool { return o.target == r.target && o.port == r.port }) {
			out = append(out, r)
		}
	}
	w := uint16(max(1, 100/len(out)))
	for i := range out {
		out[i].weight = w
	}
	return out
}

func appendNew(addrs []netip.Addr, a netip.Addr) []netip.Addr {
	if slices.Contains(addrs, a) {
		return addrs
	}
	return append(addrs, a)
}

// reverseName is addr's name in in-addr.arpa or ip6.arpa.
func reverseName(addr netip.Addr) string {
	name, _ := dns.ReverseAddr(addr.Unmap().String())
	return name
}
