// Package names is the resolver pods use: it answers the cluster's names
// as Kubernetes' cluster DNS (CoreDNS's kubernetes plugin) does, from a
// service.Snapshot, and forwards every other name to the node's own
// resolvers. It also puts the resolver's address on an interface of its
// own (Link), where pods and the host reach it.
//
// In the zone <domain> (cluster.local by default):
//   - <svc>.<ns>.svc.<domain>: A (or AAAA) with the ClusterIP; for a
//     headless Service, its ready endpoints' addresses (a headless Service
//     with none does not exist, as in CoreDNS); for an ExternalName
//     Service, a CNAME to its name, followed to its addresses through the
//     node's resolvers;
//   - <endpoint>.<svc>.<ns>.svc.<domain> for each ready endpoint: its
//     hostname (a StatefulSet's db-0, a pod's hostname under a subdomain)
//     or its address with dashes (10-88-0-5);
//   - SRV for _<port>._<proto>.<svc>.<ns>.svc.<domain> (named ports) and
//     for <svc>.<ns>.svc.<domain> (all ports), with the targets' addresses
//     in the additional section;
//   - PTR for ClusterIPs and ready endpoints' addresses (other addresses
//     are forwarded, as kubeadm's CoreDNS configuration does);
//   - <a-b-c-d>.<ns>.pod.<domain> answers a.b.c.d (CoreDNS's `pods
//     insecure`, kubeadm's default); dns-version.<domain> TXT 1.1.0; SOA
//     and NS at the apex.
//
// A name that does not exist is NXDOMAIN; a name that exists without data
// of the type asked (AAAA for an IPv4 Service, or a name with names below
// it, such as <ns>.svc.<domain>) is NODATA: success with no answer, so a
// resolver's search-path walk stops at the right name and a negative
// answer is never cached for a name that exists. Negative answers carry
// the zone's SOA.
//
// Records have a TTL of one second (DefaultTTL): an answer changes as soon
// as Update returns, and a client or cache that honours the TTL sees it
// within a second, which the node's promise (a name follows an endpoint
// change within 1 s) needs. CoreDNS's 5 s would let a cache hold a removed
// endpoint for 5 s; queries are answered from memory on the same node, so
// the cost of the shorter TTL is small.
//
// Other names go to the node's resolvers (Upstreams reads them from a
// resolv.conf): each in turn, the one that answered last first, within a
// timeout each (DefaultTimeout, below glibc's 5 s), again over TCP when
// the UDP answer is truncated; SERVFAIL when none answers. The same
// question from several clients is asked once. An upstream that is the
// resolver itself is never used, and one that sends a random probe name
// back to it (a loop through another resolver) is left out, as CoreDNS's
// loop plugin finds loops.
//
// Where this differs from CoreDNS, knowingly: an empty name between the
// zone's names (_tcp.<svc>.<ns>.svc.<domain>) is NODATA where CoreDNS
// says NXDOMAIN, which a resolver that trusts NXDOMAIN for the names
// below (RFC 8020) would get wrong; an ExternalName asked for any type
// follows its CNAME, where CoreDNS answers NODATA for SRV; answers are
// not cached (CoreDNS's cache plugin keeps them 30 s).
//
// The server listens only on the addresses it is given, never on all of
// the node's (that would make it an open resolver), answers only the
// clients it is told to when told, bounds the queries waiting for an
// upstream and the TCP connections, and keeps no cache: its memory is the
// index of the current Snapshot.
package names
