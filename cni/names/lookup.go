package names

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// maxChain bounds the CNAME chain followed inside the zone (ExternalName
// Services naming each other).
const maxChain = 8

// lookup is the zone's answer to one question.
type lookup struct {
	rcode         int
	answer, extra []dns.RR
	// chase is the target of a CNAME that leaves the zone: the server
	// asks the node's resolvers for it and appends what they answer, as a
	// recursive resolver does (a stub resolver does not follow a CNAME
	// alone).
	chase string
}

// inZone tells whether name (lower case, fully qualified) is the zone's.
func (z *zone) inZone(name string) bool {
	return name == z.origin || strings.HasSuffix(name, "."+z.origin)
}

// lookup answers qname (as asked: its case is kept in the answer) and
// qtype from the zone: the records, NODATA (success with no answer) for a
// name that exists without data of that type, NXDOMAIN for one that does
// not exist.
func (z *zone) lookup(qname string, qtype uint16) lookup {
	var l lookup
	owner, name := qname, strings.ToLower(qname)
	for range maxChain {
		n, ok := z.nodes[name]
		if !ok {
			addr, exists := z.podAddress(name)
			if !exists {
				l.rcode = dns.RcodeNameError
				return l
			}
			n = &node{}
			if addr.IsValid() {
				n.addrs = []netip.Addr{addr}
			}
		}
		if n.cname != "" && qtype != dns.TypeCNAME {
			l.answer = append(l.answer, &dns.CNAME{Hdr: z.header(owner, dns.TypeCNAME), Target: n.cname})
			if !z.inZone(n.cname) {
				l.chase = n.cname
				return l
			}
			owner, name = n.cname, n.cname
			continue
		}
		z.records(&l, owner, name, n, qtype)
		return l
	}
	return l
}

// records adds node n's records of qtype (all of them for ANY) to l.
func (z *zone) records(l *lookup, owner, name string, n *node, qtype uint16) {
	anyType := qtype == dns.TypeANY
	if qtype == dns.TypeA || qtype == dns.TypeAAAA || anyType {
		l.answer = append(l.answer, z.addresses(owner, n.addrs, qtype)...)
	}
	if (qtype == dns.TypeCNAME || anyType) && n.cname != "" {
		l.answer = append(l.answer, &dns.CNAME{Hdr: z.header(owner, dns.TypeCNAME), Target: n.cname})
	}
	if qtype == dns.TypeSRV || anyType {
		var glued []string
		for _, r := range n.srv {
			l.answer = append(l.answer, &dns.SRV{Hdr: z.header(owner, dns.TypeSRV), Priority: 0, Weight: r.weight, Port: r.port, Target: r.target})
			if !slices.Contains(glued, r.target) {
				glued = append(glued, r.target)
				l.extra = append(l.extra, z.addresses(r.target, r.addrs, dns.TypeANY)...)
			}
		}
	}
	if (qtype == dns.TypeTXT || anyType) && n.txt != "" {
		l.answer = append(l.answer, &dns.TXT{Hdr: z.header(owner, dns.TypeTXT), Txt: []string{n.txt}})
	}
	if name == z.origin {
		if qtype == dns.TypeSOA || anyType {
			l.answer = append(l.answer, z.soa(owner))
		}
		if qtype == dns.TypeNS || anyType {
			l.answer = append(l.answer, &dns.NS{Hdr: z.header(owner, dns.TypeNS), Ns: "ns.dns." + z.origin})
			l.extra = append(l.extra, z.addresses("ns.dns."+z.origin, z.nodes["ns.dns."+z.origin].addrsOrNil(), dns.TypeANY)...)
		}
	}
}

func (n *node) addrsOrNil() []netip.Addr {
	if n == nil {
		return nil
	}
	return n.addrs
}

// addresses are A records for the IPv4 addresses (qtype A), AAAA for the
// IPv6 ones (AAAA), or both (ANY), in a random order, as CoreDNS's
// loadbalance plugin (in kubeadm's configuration) shuffles them.
func (z *zone) addresses(owner string, addrs []netip.Addr, qtype uint16) []dns.RR {
	var out []dns.RR
	for _, a := range addrs {
		switch {
		case a.Is4() && (qtype == dns.TypeA || qtype == dns.TypeANY):
			out = append(out, &dns.A{Hdr: z.header(owner, dns.TypeA), A: a.AsSlice()})
		case a.Is6() && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
			out = append(out, &dns.AAAA{Hdr: z.header(owner, dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// reverse answers a PTR question for a ClusterIP or a ready endpoint's
// address; ok is false for any other address.
func (z *zone) reverse(qname string) (answer []dns.RR, ok bool) {
	names, ok := z.ptr[strings.ToLower(qname)]
	for _, target := range names {
		answer = append(answer, &dns.PTR{Hdr: z.header(qname, dns.TypePTR), Ptr: target})
	}
	return answer, ok
}

// soa is the zone's SOA record; its minimum (the time a client may cache
// an answer that a name does not exist) is the zone's TTL.
func (z *zone) soa(owner string) dns.RR {
	return &dns.SOA{
		Hdr: z.header(owner, dns.TypeSOA),
		Ns:  "ns.dns." + z.origin, Mbox: "hostmaster." + z.origin,
		Serial: z.serial, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: z.ttl,
	}
}

func (z *zone) header(owner string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: z.ttl}
}
