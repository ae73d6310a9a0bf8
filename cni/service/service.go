// Package service is the model of Services on one node, as plain data: each
// Service with the addresses and ports podunit gave it, and its endpoints,
// resolved from the pods' state. The node's rules (cni/rules) and its
// resolver (cni/names) are both built from a Snapshot, so that they agree on
// what a Service is and which pods serve it.
//
// Endpoints follows the EndpointSlice controller: a pod is an endpoint of a
// Service whose selector its labels match once it has an IP; it is ready
// when its Ready condition is true and it is not terminating (or always,
// with publishNotReadyAddresses); a target port given by name is resolved
// per pod against its containers' ports, and a pod that has no port of that
// name is no endpoint for that port.
package service

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// Type is a Service's spec.type.
type Type string

// The Service types (spec.type).
const (
	ClusterIP    Type = "ClusterIP"
	NodePort     Type = "NodePort"
	LoadBalancer Type = "LoadBalancer"
	ExternalName Type = "ExternalName"
)

// Protocol is a port's protocol: TCP or UDP (SCTP is refused when the
// manifest is read).
type Protocol string

// The protocols a Service port may have on podunit.
const (
	TCP Protocol = "TCP"
	UDP Protocol = "UDP"
)

// DefaultClusterDomain is the DNS domain of the Services' names
// (<service>.<namespace>.svc.<domain>) when none is configured, as the
// kubelet's clusterDomain is by convention.
const DefaultClusterDomain = "cluster.local"

// DefaultAffinityTimeout is sessionAffinityConfig.clientIP.timeoutSeconds'
// default: 3 hours.
const DefaultAffinityTimeout = 10800 * time.Second

// Port is one port of a Service.
type Port struct {
	// Name is the port's name ("" when the Service has a single unnamed
	// port); endpoints' ports are keyed by it.
	Name     string   `json:"name,omitempty"`
	Protocol Protocol `json:"protocol"`
	// Port is the Service's port, on its ClusterIP, external IPs and (for
	// LoadBalancer) the node's addresses.
	Port int32 `json:"port"`
	// NodePort is the port on every node address (NodePort and
	// LoadBalancer Services); 0: none.
	NodePort int32 `json:"nodePort,omitempty"`
	// TargetPort is the pod's port by number, or TargetPortName the name
	// of a container port, resolved per pod (one of the two is set).
	TargetPort     int32  `json:"targetPort,omitempty"`
	TargetPortName string `json:"targetPortName,omitempty"`
}

// Service is a Service as the node serves it.
//
// Its JSON (field names as the v1 Service's where they mean the same) is
// the Services part of the node's Service table (Table).
type Service struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Type      Type   `json:"type"`
	// ClusterIP is the Service's virtual address; not valid for a
	// headless Service (clusterIP: None) or an ExternalName one.
	ClusterIP netip.Addr `json:"clusterIP,omitzero"`
	Ports     []Port     `json:"ports,omitempty"`
	// Selector chooses the pods that serve it; empty: the Service selects
	// no pods (it has no endpoints on podunit, which has no other source
	// of them), as an empty selector does in Kubernetes (it is not kept).
	Selector map[string]string `json:"selector,omitempty"`
	// ExternalIPs are spec.externalIPs: addresses the node accepts the
	// Service's ports on, as on its ClusterIP.
	ExternalIPs []netip.Addr `json:"externalIPs,omitempty"`
	// ExternalName is the name an ExternalName Service answers with
	// (a CNAME).
	ExternalName string `json:"externalName,omitempty"`
	// SessionAffinity sends a client to the endpoint it reached before,
	// for AffinityTimeout after its last packet (sessionAffinity: ClientIP;
	// in JSON, the timeout in nanoseconds).
	SessionAffinity bool          `json:"sessionAffinityClientIP,omitempty"`
	AffinityTimeout time.Duration `json:"affinityTimeout,omitempty"`
	// PublishNotReadyAddresses makes every endpoint ready, whatever its
	// pod's readiness (the names of a StatefulSet's peers before they are
	// ready).
	PublishNotReadyAddresses bool `json:"publishNotReadyAddresses,omitempty"`
}

// Key is the Service's namespace/name.
func (s *Service) Key() string { return s.Namespace + "/" + s.Name }

// Headless tells whether the Service has no virtual address: its name
// answers its endpoints' addresses.
func (s *Service) Headless() bool { return s.Type != ExternalName && !s.ClusterIP.IsValid() }

// Pod is what Endpoints needs of a pod: its identity, labels, address,
// readiness and ports, from podshim's state.
type Pod struct {
	Namespace, Name string
	Labels          map[string]string
	// IP is the pod's address: its sandbox's, or the node's for a pod on
	// the host's network. Not valid: no address yet (not an endpoint).
	IP          netip.Addr
	HostNetwork bool
	// Ready is the pod's Ready condition; Terminating is true once it is
	// being stopped (it leaves rotation at once).
	Ready, Terminating bool
	// Hostname and Subdomain are the pod's spec.hostname and
	// spec.subdomain (a StatefulSet's pods: their name and serviceName).
	Hostname, Subdomain string
	Ports               []ContainerPort
}

// ContainerPort is a port a pod's container declares.
type ContainerPort struct {
	Name     string   `json:"name,omitempty"`
	Protocol Protocol `json:"protocol"`
	Port     int32    `json:"containerPort"`
	// HostPort is the port it maps on the node's addresses (0: none),
	// which the pod holds against Services (the sync reads it back).
	HostPort int32 `json:"hostPort,omitempty"`
}

// Endpoint is one pod serving a Service.
type Endpoint struct {
	Namespace, Pod string
	IP             netip.Addr
	// Ready: in rotation (ready and not terminating, or
	// publishNotReadyAddresses). Serving and Terminating are the pod's own
	// readiness and whether it stops, as an EndpointSlice says them.
	Ready, Serving, Terminating bool
	// Hostname is the endpoint's DNS label under the Service
	// (<hostname>.<service>.<ns>.svc): the pod's hostname when its
	// subdomain is the Service's name, else "".
	Hostname string
	// Ports maps each Service port's name to the pod's port for it; a
	// Service port whose named target the pod lacks is missing.
	Ports map[string]int32
}

// Snapshot is every Service of the node with its endpoints.
type Snapshot struct {
	Services []Service
	// Endpoints by Service key (namespace/name), sorted by pod key.
	Endpoints map[string][]Endpoint
}

// Endpoints are the endpoints of svc among pods, sorted by namespace and
// name. A Service without a selector, or an ExternalName one, has none.
func Endpoints(svc *Service, pods []Pod) []Endpoint {
	if len(svc.Selector) == 0 || svc.Type == ExternalName {
		return nil
	}
	var out []Endpoint
	for i := range pods {
		p := &pods[i]
		if p.Namespace != svc.Namespace || !p.IP.IsValid() || !matches(svc.Selector, p.Labels) {
			continue
		}
		ep := Endpoint{
			Namespace: p.Namespace, Pod: p.Name, IP: p.IP,
			Serving: p.Ready, Terminating: p.Terminating,
			Ready: svc.PublishNotReadyAddresses || (p.Ready && !p.Terminating),
			Ports: map[string]int32{},
		}
		if p.Hostname != "" && p.Subdomain == svc.Name {
			ep.Hostname = p.Hostname
		}
		for _, sp := range svc.Ports {
			if port, ok := targetPort(sp, p); ok {
				ep.Ports[sp.Name] = port
			}
		}
		out = append(out, ep)
	}
	slices.SortFunc(out, func(a, b Endpoint) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Pod, b.Pod))
	})
	return out
}

// Build is the Snapshot of services and the endpoints pods give them.
func Build(services []Service, pods []Pod) *Snapshot {
	s := &Snapshot{Services: services, Endpoints: make(map[string][]Endpoint, len(services))}
	for i := range services {
		if eps := Endpoints(&services[i], pods); eps != nil {
			s.Endpoints[services[i].Key()] = eps
		}
	}
	return s
}

// targetPort resolves a Service port's target on pod p: a number as it is,
// a name through the pod's container ports of the same protocol.
func targetPort(sp Port, p *Pod) (int32, bool) {
	if sp.TargetPortName == "" {
		return cmp.Or(sp.TargetPort, sp.Port), true
	}
	for _, cp := range p.Ports {
		if cp.Name == sp.TargetPortName && cmp.Or(cp.Protocol, TCP) == cmp.Or(sp.Protocol, TCP) {
			return cp.Port, true
		}
	}
	return 0, false
}

// matches tells whether labels carry every key of selector with its value.
func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
