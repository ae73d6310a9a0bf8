package generator

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The node's Service ranges when config.yaml names none: the kube-apiserver's
// default ClusterIP range (which does not overlap the packaged CNI network,
// 10.88.0.0/16) and its default node port range.
var (
	DefaultServiceClusterIPRange = netip.MustParsePrefix("10.96.0.0/12")
	DefaultNodePortRange         = PortRange{First: 30000, Last: 32767}
)

// DefaultClusterDNS is the address of the node's resolver in a ClusterIP
// range when config.yaml names none: the range's 10th address, as kubeadm
// gives kube-dns (10.96.0.10 in the default range). No Service may ask for
// it.
func DefaultClusterDNS(serviceRange netip.Prefix) netip.Addr {
	a := serviceRange.Masked().Addr()
	for range 10 {
		a = a.Next()
	}
	return a
}

// PortRange is a range of ports, both ends included.
type PortRange struct {
	First, Last int32
}

// Contains tells whether port is in the range.
func (r PortRange) Contains(port int32) bool { return port >= r.First && port <= r.Last }

// String is the range as config.yaml and the kube-apiserver's
// --service-node-port-range write it: "30000-32767".
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// Size is the number of ports in the range.
func (r PortRange) Size() int { return int(r.Last-r.First) + 1 }

// ParsePortRange reads "30000-32767", or a single port, as the
// kube-apiserver reads --service-node-port-range.
func ParsePortRange(s string) (PortRange, error) {
	first, last, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		last = first
	}
	a, errA := strconv.ParseInt(strings.TrimSpace(first), 10, 32)
	b, errB := strconv.ParseInt(strings.TrimSpace(last), 10, 32)
	switch {
	case errA != nil || errB != nil:
		return PortRange{}, fmt.Errorf("port range %q: want FIRST-LAST, e.g. 30000-32767", s)
	case a < 1 || b > 65535 || a > b:
		return PortRange{}, fmt.Errorf("port range %q: ports are 1-65535, the first not above the last", s)
	}
	return PortRange{First: int32(a), Last: int32(b)}, nil
}

// ServiceNetwork is what the Reader reads Services against, its defaults
// filled in: the ClusterIP range, the node port range and the address of
// the node's resolver (which the sync's allocator gives no Service either).
func (r Reader) ServiceNetwork() (clusterIPs netip.Prefix, nodePorts PortRange, clusterDNS netip.Addr) {
	return r.serviceRange(), r.nodePortRange(), r.clusterDNS()
}

// LastAddr is the highest address of an IPv4 prefix (its broadcast
// address), which no Service is given, as the first (its network address)
// is not; not valid for another prefix.
func LastAddr(p netip.Prefix) netip.Addr { return lastAddr(p) }

// serviceRange is the Reader's ClusterIP range.
func (r Reader) serviceRange() netip.Prefix {
	if r.ServiceClusterIPRange.IsValid() {
		return r.ServiceClusterIPRange.Masked()
	}
	return DefaultServiceClusterIPRange
}

func (r Reader) nodePortRange() PortRange {
	if r.NodePortRange == (PortRange{}) {
		return DefaultNodePortRange
	}
	return r.NodePortRange
}

func (r Reader) clusterDNS() netip.Addr {
	if r.ClusterDNS.IsValid() {
		return r.ClusterDNS
	}
	return DefaultClusterDNS(r.serviceRange())
}

// checkServiceRanges checks a file's Services against the node: an
// explicit clusterIP must be a usable address of the ClusterIP range (not
// its network or broadcast address, nor the resolver's), an explicit node
// port inside the node port range.
func (r Reader) checkServiceRanges(m *Manifest) []error {
	var errs []error
	ipRange, ports, dns := r.serviceRange(), r.nodePortRange(), r.clusterDNS()
	for _, s := range m.Services {
		fail := func(path, format string, args ...any) {
			errs = append(errs, &FieldError{File: s.Source, Line: s.lines.lineOf(path), Field: path, Msg: fmt.Sprintf(format, args...)})
		}
		if a, err := netip.ParseAddr(s.Spec.Spec.ClusterIP); err == nil {
			switch {
			case !ipRange.Contains(a):
				fail("spec.clusterIP", "%s: outside the node's ClusterIP range %s (serviceClusterIPRange in config.yaml)", a, ipRange)
			case a == ipRange.Addr() || a == lastAddr(ipRange):
				fail("spec.clusterIP", "%s: the first and the last address of %s are not given to Services", a, ipRange)
			case a == dns:
				fail("spec.clusterIP", "%s: the node's resolver has this address (clusterDNS): pods reach cluster DNS there", a)
			}
		}
		for i, p := range s.Spec.Spec.Ports {
			if p.NodePort != 0 && !ports.Contains(p.NodePort) {
				fail(fmt.Sprintf("spec.ports[%d].nodePort", i), "%d: outside the node port range %s", p.NodePort, ports)
			}
		}
	}
	return errs
}

// lastAddr is the highest address of an IPv4 prefix (its broadcast
// address); not valid for another prefix (which no IPv4 ClusterIP is in).
func lastAddr(p netip.Prefix) netip.Addr {
	if !p.Addr().Is4() {
		return netip.Addr{}
	}
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ServiceHolding is what a Service held after a sync: its ClusterIP and
// its ports on the node's addresses (node ports, a LoadBalancer's ports).
type ServiceHolding struct {
	ClusterIP netip.Addr
	Ports     []HeldPort
}

// HeldPort is a port on the node's addresses.
type HeldPort struct {
	Port     int32
	Protocol corev1.Protocol
}

// holds tells whether h holds what c asks for.
func (h ServiceHolding) holds(c claim) bool {
	if c.ip.IsValid() {
		return c.ip == h.ClusterIP
	}
	return slices.Contains(h.Ports, HeldPort{c.port.port, c.port.proto})
}

// holder is what holds an address or a port of the node: a Service, or a
// pod's hostPort.
type holder struct {
	what string // "Service default/web", "pod default/web"
	role string // "node port", "LoadBalancer port", "hostPort", "" for a ClusterIP
	file string
	line int
	pod  bool
	svc  *Service // the Service, for one
	p    *Pod     // the pod, for one
}

func (h holder) String() string {
	role := ""
	if h.role != "" {
		role = " " + h.role
	}
	return fmt.Sprintf("%s's%s (%s:%d)", h.what, role, h.file, h.line)
}

// nodePort is a port on the node's own addresses.
type nodePort struct {
	port  int32
	proto corev1.Protocol
}

func (p nodePort) String() string { return fmt.Sprintf("%d/%s", p.port, p.proto) }

// claim is one address or port an object asks for.
type claim struct {
	path string // the field that asks for it
	ip   netip.Addr
	port nodePort
	role string
}

// serviceClaims are the ClusterIP and the ports on the node's addresses
// that a Service asks for: its node ports and, for a LoadBalancer, its
// ports, which k3s's ServiceLB serves on the node's addresses.
func serviceClaims(s *Service) []claim {
	spec := &s.Spec.Spec
	var out []claim
	if a, err := netip.ParseAddr(spec.ClusterIP); err == nil {
		out = append(out, claim{path: "spec.clusterIP", ip: a, role: "ClusterIP"})
	}
	for i, p := range spec.Ports {
		if p.NodePort != 0 {
			out = append(out, claim{path: fmt.Sprintf("spec.ports[%d].nodePort", i), port: nodePort{p.NodePort, p.Protocol}, role: "node port"})
		}
		if spec.Type == corev1.ServiceTypeLoadBalancer && p.Port != p.NodePort {
			out = append(out, claim{path: fmt.Sprintf("spec.ports[%d].port", i), port: nodePort{p.Port, p.Protocol}, role: "LoadBalancer port"})
		}
	}
	return out
}

// podClaims are a pod's hostPorts, whatever their hostIP: a Service's
// ports are on every address of the node.
func podClaims(p *Pod) []claim {
	var out []claim
	spec := &p.Spec.Spec
	for _, list := range []struct {
		field      string
		containers []corev1.Container
	}{{"spec.initContainers", spec.InitContainers}, {"spec.containers", spec.Containers}} {
		for i, c := range list.containers {
			for j, port := range c.Ports {
				if port.HostPort != 0 {
					out = append(out, claim{path: fmt.Sprintf("%s[%d].ports[%d].hostPort", list.field, i, j),
						port: nodePort{port.HostPort, cmp.Or(port.Protocol, corev1.ProtocolTCP)}, role: "hostPort"})
				}
			}
		}
	}
	return out
}

// settleClaims gives each ClusterIP and each port on the node's addresses
// to the first object (in read order: by file, then document) that asks
// for it, among the Services and the pods that run; a later Service that
// asks for one is not served, a later pod that asks for a Service's port
// is not run, each with an error naming both files. Pods asking for the
// same hostPort are not compared here (their runtime reports that).
// order gives each file its place in the read order. held says what
// Services held after the last sync, hostPorts the hostPorts of the pods
// it ran: a Service or a pod asking for what it holds comes first for
// that, so that a manifest added or renamed to sort earlier does not take
// a running Service's address or port, or a running pod's hostPort (and
// make the running one's file the invalid one, or stop the pod).
func settleClaims(pods []*Pod, services []*Service, order map[string]int, held map[string]ServiceHolding, hostPorts map[string][]HeldPort) (keptPods []*Pod, keptServices []*Service, errs []error) {
	type item struct {
		file, doc int
		pod       *Pod
		svc       *Service
	}
	items := make([]item, 0, len(pods)+len(services))
	for _, p := range pods {
		items = append(items, item{file: order[p.Source], doc: p.lines.doc, pod: p})
	}
	for _, s := range services {
		items = append(items, item{file: order[s.Source], doc: s.lines.doc, svc: s})
	}
	// Stable: a workload's replicas share their document and keep their order.
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Or(cmp.Compare(a.file, b.file), cmp.Compare(a.doc, b.doc)) })

	ips := map[netip.Addr]holder{}
	ports := map[nodePort]holder{}
	// What Services hold from the last sync is theirs before anything is
	// read (of two claiming the same, which only a hand edit of the
	// record makes, the first in read order).
	for _, it := range items {
		if it.svc == nil {
			continue
		}
		h, ok := held[it.svc.Key()]
		if !ok {
			continue
		}
		for _, c := range serviceClaims(it.svc) {
			if !h.holds(c) {
				continue
			}
			hc := holder{what: "Service " + it.svc.Key(), role: c.role, file: it.svc.Source, line: it.svc.lines.lineOf(c.path), svc: it.svc}
			if _, taken := ips[c.ip]; c.ip.IsValid() && !taken {
				ips[c.ip] = hc
			} else if _, taken := ports[c.port]; !c.ip.IsValid() && !taken {
				ports[c.port] = hc
			}
		}
	}
	for _, it := range items {
		if it.pod == nil || it.pod.Rejected != nil {
			continue
		}
		for _, c := range podClaims(it.pod) {
			if _, taken := ports[c.port]; taken || !slices.Contains(hostPorts[it.pod.Key()], HeldPort{c.port.port, c.port.proto}) {
				continue
			}
			what := "pod " + it.pod.Key()
			if it.pod.Cron != nil {
				what = "CronJob " + it.pod.Key()
			}
			ports[c.port] = holder{what: what, role: c.role, file: it.pod.Source, line: it.pod.lines.lineOf(c.path), pod: true, p: it.pod}
		}
	}
	seen := map[string]bool{} // one error for the replicas of a template
	for _, it := range items {
		var (
			claims []claim
			lines  decoded
			h      holder
			lost   []string
		)
		if it.pod != nil {
			if it.pod.Rejected != nil {
				keptPods = append(keptPods, it.pod) // not run on this node: it holds nothing
				continue
			}
			claims, lines = podClaims(it.pod), it.pod.lines
			h = holder{what: "pod " + it.pod.Key(), file: it.pod.Source, pod: true}
			if it.pod.Cron != nil {
				h.what = "CronJob " + it.pod.Key()
			}
		} else {
			claims, lines = serviceClaims(it.svc), it.svc.lines
			h = holder{what: "Service " + it.svc.Key(), file: it.svc.Source, svc: it.svc}
		}
		for _, c := range claims {
			line, field := lines.lineOf(c.path), lines.field(c.path)
			var (
				first holder
				taken bool
			)
			if c.ip.IsValid() {
				first, taken = ips[c.ip]
			} else {
				first, taken = ports[c.port]
				if taken && first.pod && h.pod {
					continue // two pods' hostPorts: not a Service's concern
				}
			}
			if !taken || (first.svc != nil && first.svc == it.svc) || (first.p != nil && first.p == it.pod) {
				continue
			}
			what, outcome := c.port.String()+" on the node's addresses", "this Service is not served"
			if c.ip.IsValid() {
				what = c.ip.String()
			}
			if h.pod {
				outcome = "this pod is not run"
			}
			msg := fmt.Sprintf("%s is already %s, which keeps it: %s", what, first, outcome)
			key := fmt.Sprintf("%s:%d:%s:%s", h.file, line, field, msg)
			if !seen[key] {
				seen[key] = true
				errs = append(errs, &FieldError{File: h.file, Line: line, Field: field, Msg: msg})
			}
			lost = append(lost, c.path)
		}
		if len(lost) > 0 {
			continue
		}
		if it.pod != nil {
			keptPods = append(keptPods, it.pod)
		} else {
			keptServices = append(keptServices, it.svc)
		}
		for _, c := range claims {
			hc := h
			hc.role, hc.line = c.role, lines.lineOf(c.path)
			if c.ip.IsValid() {
				ips[c.ip] = hc
			} else if _, taken := ports[c.port]; !taken {
				ports[c.port] = hc
			}
		}
	}
	return keptPods, keptServices, errs
}

// selectorNotices are notices for the Services whose selector no pod of
// pods has: valid, as in Kubernetes, where the pods may come later, but
// most often a typo, and such a Service answers nobody.
func selectorNotices(services []*Service, pods []*Pod) []Notice {
	var out []Notice
	for _, s := range services {
		sel := s.Spec.Spec.Selector
		if len(sel) == 0 || s.Spec.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		if slices.ContainsFunc(pods, func(p *Pod) bool {
			return p.Namespace() == s.Namespace() && selects(sel, p.Spec.Labels)
		}) {
			continue
		}
		var labels []string
		for _, k := range slices.Sorted(maps.Keys(sel)) {
			labels = append(labels, k+"="+sel[k])
		}
		n := Notice{File: s.Source, Line: s.lines.lineOf("spec.selector"), Field: "spec.selector",
			Msg: fmt.Sprintf("no pod of the manifests has the labels %s in namespace %q: the Service has no endpoints until one does", strings.Join(labels, ","), s.Namespace())}
		s.Notices = sortNotices(append(s.Notices, n))
		out = append(out, n)
	}
	return out
}

// selects tells whether labels carry every key of selector with its value.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
