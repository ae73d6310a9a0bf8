package generator

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// MaxServicePorts bounds a Service's ports: an EndpointSlice, which carries
// a Service's endpoints and ports in Kubernetes (and in podunit's status
// API), holds at most 100 ports.
const MaxServicePorts = 100

// maxAffinityTimeout is the longest sessionAffinityConfig.clientIP
// timeout the API server accepts: a day.
const maxAffinityTimeout = 86400

// setServiceDefaults defaults a Service as the API server does, on a
// single-stack IPv4 cluster: type ClusterIP, sessionAffinity None (and a
// ClientIP one's timeout 10800 s), TCP, targetPort = port, the traffic
// policies Cluster, and clusterIP from clusterIPs. What it cannot default
// (a clusterIPs[0] that is not clusterIP, an IPv6 family) validation
// reports.
func setServiceDefaults(s *corev1.Service) {
	if s.Namespace == "" {
		s.Namespace = corev1.NamespaceDefault
	}
	spec := &s.Spec
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		if spec.SessionAffinityConfig == nil {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{}
		}
		if spec.SessionAffinityConfig.ClientIP == nil {
			spec.SessionAffinityConfig.ClientIP = &corev1.ClientIPConfig{}
		}
		if spec.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			t := int32(corev1.DefaultClientIPServiceAffinitySeconds)
			spec.SessionAffinityConfig.ClientIP.TimeoutSeconds = &t
		}
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == (intstr.IntOrString{}) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if spec.ClusterIP == "" && len(spec.ClusterIPs) > 0 {
		spec.ClusterIP = spec.ClusterIPs[0]
	}
	if spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if spec.InternalTrafficPolicy == nil {
		p := corev1.ServiceInternalTrafficPolicyCluster
		spec.InternalTrafficPolicy = &p
	}
	if spec.ExternalTrafficPolicy == "" && externallyReachable(spec) {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		yes := true
		spec.AllocateLoadBalancerNodePorts = &yes
	}
	if spec.IPFamilyPolicy == nil {
		p := corev1.IPFamilyPolicySingleStack
		spec.IPFamilyPolicy = &p
	}
	if len(spec.IPFamilies) == 0 {
		spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
}

// externallyReachable tells whether a Service is reached from outside
// the node, where externalTrafficPolicy applies.
func externallyReachable(spec *corev1.ServiceSpec) bool {
	return spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer || len(spec.ExternalIPs) > 0
}

// validateService checks a defaulted Service as the API server of a
// single-stack IPv4 cluster does, plus what podunit cannot serve (SCTP,
// IPv6), and leaves the IPv6 parts of a dual-stack Service out with a
// notice. What depends on the node (the ClusterIP and node port ranges)
// and on other files (conflicts) is checked when the set is read.
func validateService(file string, d decoded, s *corev1.Service) ([]error, []Notice) {
	var (
		errs    []error
		notices []Notice
	)
	fail := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{File: file, Line: d.lineOf(path), Field: path, Msg: fmt.Sprintf(format, args...)})
	}
	note := func(path, format string, args ...any) {
		notices = append(notices, Notice{File: file, Line: d.lineOf(path), Field: path, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case s.Name == "":
		fail("metadata.name", "required")
	default:
		// A DNS-1123 label, as Kubernetes v1.37 validates it
		// (RelaxedServiceNameValidation, GA): "1st-redis" is a name; the
		// older DNS-1035 rule wanted a letter first.
		for _, msg := range validation.IsDNS1123Label(s.Name) {
			fail("metadata.name", "%q: %s (a Service's name is one label of its DNS name)", s.Name, msg)
		}
	}
	for _, msg := range validation.IsDNS1123Label(s.Namespace) {
		fail("metadata.namespace", "%q: %s", s.Namespace, msg)
	}
	validateLabels("metadata.labels", s.Labels, fail)
	for _, k := range slices.Sorted(maps.Keys(s.Annotations)) {
		for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
			fail(fmt.Sprintf("metadata.annotations[%s]", k), "%s", msg)
		}
	}

	spec := &s.Spec
	types := []string{"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"}
	switch spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName:
	default:
		fail("spec.type", "%q: must be %s%s", spec.Type, orList(types), caseHint(string(spec.Type), types...))
		return errs, notices // the rest depends on it
	}
	external := spec.Type == corev1.ServiceTypeExternalName
	validateServiceAddresses(spec, fail, note)
	validateServicePorts(spec, fail)
	validateLabels("spec.selector", spec.Selector, fail)

	for i, ip := range spec.ExternalIPs {
		p := fmt.Sprintf("spec.externalIPs[%d]", i)
		if a, ok := parseIPv4(ip, p, fail); ok {
			if msg := specialAddress(a); msg != "" {
				fail(p, "%q: %s, which cannot be a Service's address", ip, msg)
			}
		}
	}

	switch spec.SessionAffinity {
	case corev1.ServiceAffinityNone:
		if spec.SessionAffinityConfig != nil {
			fail("spec.sessionAffinityConfig", "only with sessionAffinity: ClientIP")
		}
	case corev1.ServiceAffinityClientIP:
		if t := *spec.SessionAffinityConfig.ClientIP.TimeoutSeconds; t < 1 || t > maxAffinityTimeout {
			fail("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "%d: must be between 1 and %d (a day)", t, maxAffinityTimeout)
		}
	default:
		fail("spec.sessionAffinity", "%q: must be None or ClientIP%s", spec.SessionAffinity, caseHint(string(spec.SessionAffinity), "None", "ClientIP"))
	}

	switch {
	case external && spec.ExternalName == "":
		fail("spec.externalName", "required with type: ExternalName")
	case external:
		for _, msg := range validation.IsDNS1123Subdomain(strings.TrimSuffix(spec.ExternalName, ".")) {
			fail("spec.externalName", "%q: %s", spec.ExternalName, msg)
		}
	case spec.ExternalName != "":
		fail("spec.externalName", "only with type: ExternalName")
	}

	if p := spec.InternalTrafficPolicy; p != nil {
		switch *p {
		case corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal:
		default:
			fail("spec.internalTrafficPolicy", "%q: must be Cluster or Local%s", *p, caseHint(string(*p), "Cluster", "Local"))
		}
	}
	switch p := spec.ExternalTrafficPolicy; {
	case p == "":
	case !externallyReachable(spec):
		fail("spec.externalTrafficPolicy", "only for NodePort and LoadBalancer Services and those with externalIPs")
	case p == corev1.ServiceExternalTrafficPolicyLocal:
		note("spec.externalTrafficPolicy", "Local: every endpoint is on this node, so the same endpoints serve as with Cluster; the node's rules do not promise to keep the client's source address")
	case p != corev1.ServiceExternalTrafficPolicyCluster:
		fail("spec.externalTrafficPolicy", "%q: must be Cluster or Local%s", p, caseHint(string(p), "Cluster", "Local"))
	}
	if spec.AllocateLoadBalancerNodePorts != nil && spec.Type != corev1.ServiceTypeLoadBalancer {
		fail("spec.allocateLoadBalancerNodePorts", "only with type: LoadBalancer")
	}
	return errs, notices
}

// validateServiceAddresses checks a Service's ClusterIP and IP families,
// and leaves out (with a notice) what is IPv6 in a dual-stack one: podunit's
// Services are IPv4, as on a cluster configured without IPv6 Service
// addresses.
func validateServiceAddresses(spec *corev1.ServiceSpec, fail, note failFunc) {
	external := spec.Type == corev1.ServiceTypeExternalName
	if external {
		for _, f := range []struct {
			path string
			set  bool
		}{{"spec.clusterIP", spec.ClusterIP != ""}, {"spec.clusterIPs", len(spec.ClusterIPs) > 0},
			{"spec.ipFamilies", len(spec.IPFamilies) > 0}, {"spec.ipFamilyPolicy", spec.IPFamilyPolicy != nil}} {
			if f.set {
				fail(f.path, "not with type: ExternalName (it has no address)")
			}
		}
		return
	}

	families := []string{"IPv4", "IPv6"}
	seen := map[corev1.IPFamily]bool{}
	for i, f := range spec.IPFamilies {
		p := fmt.Sprintf("spec.ipFamilies[%d]", i)
		switch {
		case f != corev1.IPv4Protocol && f != corev1.IPv6Protocol:
			fail(p, "%q: must be IPv4 or IPv6%s", f, caseHint(string(f), families...))
		case seen[f]:
			fail(p, "%s: listed twice", f)
		case i == 0 && f == corev1.IPv6Protocol:
			fail(p, "IPv6: podunit's Services are IPv4 only (ipFamilies: [IPv4])")
		case f == corev1.IPv6Protocol:
			note(p, "IPv6: left out, podunit's Services are IPv4 only: the Service is single-stack")
		}
		seen[f] = true
	}
	policies := []string{"SingleStack", "PreferDualStack", "RequireDualStack"}
	switch p := *spec.IPFamilyPolicy; p {
	case corev1.IPFamilyPolicySingleStack:
		if len(spec.IPFamilies) > 1 {
			fail("spec.ipFamilies", "two families need ipFamilyPolicy PreferDualStack or RequireDualStack")
		}
	case corev1.IPFamilyPolicyPreferDualStack:
		note("spec.ipFamilyPolicy", "PreferDualStack: podunit's Services are IPv4 only, so the Service is single-stack IPv4")
	case corev1.IPFamilyPolicyRequireDualStack:
		fail("spec.ipFamilyPolicy", "RequireDualStack: podunit's Services are IPv4 only (use SingleStack or PreferDualStack)")
	default:
		fail("spec.ipFamilyPolicy", "%q: must be %s%s", p, orList(policies), caseHint(string(p), policies...))
	}
	spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}

	switch ip := spec.ClusterIP; {
	case ip == "":
	case ip == corev1.ClusterIPNone:
		if spec.Type != corev1.ServiceTypeClusterIP {
			fail("spec.clusterIP", "None: only a ClusterIP Service may be headless, not a %s one", spec.Type)
		}
	default:
		parseIPv4(ip, "spec.clusterIP", fail)
	}
	switch ips := spec.ClusterIPs; {
	case len(ips) == 0:
	case ips[0] != spec.ClusterIP:
		fail("spec.clusterIPs[0]", "%q: must be clusterIP %q", ips[0], spec.ClusterIP)
	case len(ips) > 2:
		fail("spec.clusterIPs", "%d addresses: at most 2, one a family", len(ips))
	case len(ips) == 2 && spec.ClusterIP == corev1.ClusterIPNone:
		fail("spec.clusterIPs[1]", "%q: a headless Service has only None", ips[1])
	case len(ips) == 2:
		if a, err := netip.ParseAddr(ips[1]); err != nil || !a.Is6() || a.Is4In6() {
			fail("spec.clusterIPs[1]", "%q: must be the IPv6 address of a dual-stack Service", ips[1])
		} else {
			note("spec.clusterIPs[1]", "%s: left out, podunit's Services are IPv4 only", ips[1])
		}
	}
	spec.ClusterIPs = nil
	if spec.ClusterIP != "" {
		spec.ClusterIPs = []string{spec.ClusterIP}
	}
}

// validateServicePorts checks a Service's ports as the API server does,
// and refuses SCTP, which podunit's rules do not carry.
func validateServicePorts(spec *corev1.ServiceSpec, fail failFunc) {
	ports := spec.Ports
	headless := spec.ClusterIP == corev1.ClusterIPNone
	switch {
	case len(ports) > MaxServicePorts:
		// Checked no further: ten thousand errors say less than one.
		fail("spec.ports", "%d ports: at most %d (an EndpointSlice, which carries a Service's ports and endpoints, holds at most %d)", len(ports), MaxServicePorts, MaxServicePorts)
		return
	case len(ports) == 0 && !headless && spec.Type != corev1.ServiceTypeExternalName:
		fail("spec.ports", "required: at least one port (only a headless or an ExternalName Service may have none)")
	}
	type portKey struct {
		port  int32
		proto corev1.Protocol
	}
	names := map[string]int{}
	served := map[portKey]int{}
	nodePorts := map[portKey]int{}
	withNodePorts := spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer
	for i, port := range ports {
		p := fmt.Sprintf("spec.ports[%d]", i)
		switch {
		case port.Name == "" && len(ports) > 1:
			fail(p+".name", "required: a Service of several ports names each")
		case port.Name != "":
			for _, msg := range validation.IsDNS1123Label(port.Name) {
				fail(p+".name", "%q: %s", port.Name, msg)
			}
			if j, dup := names[port.Name]; dup {
				fail(p+".name", "%q: also the name of spec.ports[%d]", port.Name, j)
			}
			names[port.Name] = i
		}
		switch port.Protocol {
		case corev1.ProtocolTCP, corev1.ProtocolUDP:
		case corev1.ProtocolSCTP:
			fail(p+".protocol", "SCTP: not supported by podunit's Services (TCP or UDP)")
		default:
			fail(p+".protocol", "%q: must be TCP or UDP%s", port.Protocol, caseHint(string(port.Protocol), "TCP", "UDP", "SCTP"))
		}
		if port.Port < 1 || port.Port > 65535 {
			fail(p+".port", "%d: must be between 1 and 65535", port.Port)
		} else if j, dup := served[portKey{port.Port, port.Protocol}]; dup {
			fail(p+".port", "%d/%s: also spec.ports[%d]", port.Port, port.Protocol, j)
		} else {
			served[portKey{port.Port, port.Protocol}] = i
		}
		if t := port.TargetPort; t.Type == intstr.String {
			for _, msg := range validation.IsValidPortName(t.StrVal) {
				fail(p+".targetPort", "%q: %s", t.StrVal, msg)
			}
		} else if (t.IntVal < 1 || t.IntVal > 65535) && t.IntVal != port.Port { // else defaulted from port, said above
			fail(p+".targetPort", "%d: must be between 1 and 65535", t.IntVal)
		}
		switch np := port.NodePort; {
		case np == 0:
		case !withNodePorts:
			fail(p+".nodePort", "%d: only a NodePort or LoadBalancer Service has node ports, not a %s one", np, spec.Type)
		case np < 1 || np > 65535:
			fail(p+".nodePort", "%d: must be between 1 and 65535", np)
		default:
			if j, dup := nodePorts[portKey{np, port.Protocol}]; dup {
				fail(p+".nodePort", "%d/%s: also the node port of spec.ports[%d]", np, port.Protocol, j)
			}
			nodePorts[portKey{np, port.Protocol}] = i
		}
		if a := port.AppProtocol; a != nil {
			for _, msg := range validation.IsQualifiedName(*a) {
				fail(p+".appProtocol", "%q: %s", *a, msg)
			}
		}
	}
}

// validateLabels checks a map of labels (or a selector) as the API server
// does.
func validateLabels(path string, labels map[string]string, fail failFunc) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v, p := labels[k], fmt.Sprintf("%s[%s]", path, k)
		for _, msg := range validation.IsQualifiedName(k) {
			fail(p, "%s", msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			fail(p, "%q: %s", v, msg)
		}
	}
}

// parseIPv4 reads an IPv4 address in its usual form; anything else is
// reported on path.
func parseIPv4(s, path string, fail failFunc) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		fail(path, "%q: not an IPv4 address", s)
	case a.Is6():
		fail(path, "%q: IPv6: podunit's Services are IPv4 only", s)
	default:
		return a, true
	}
	return netip.Addr{}, false
}

// specialAddress says why an address cannot be a Service's, as the API
// server says it of external IPs, or "".
func specialAddress(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsLoopback():
		return "a loopback address"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "a link-local address"
	case a.IsMulticast():
		return "a multicast address"
	}
	return ""
}
