package generator

import (
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podunit/podunit/cni/service"
)

// Service is one desired Service: the defaulted v1 Service and the file it
// came from. Its ClusterIP and node ports are those the manifest gives;
// the sync allocates the ones it leaves empty (NeedsClusterIP,
// NeedsNodePorts).
type Service struct {
	// Source is the manifest file the Service was read from.
	Source string
	// Spec is the Service, defaulted as the API server defaults it.
	Spec *corev1.Service
	// Notices are what podunit accepted in the Service's document without
	// acting on it, sorted by line.
	Notices []Notice

	lines decoded // where the Service's fields are in Source
}

// Namespace and Name are the Service's identity.
func (s *Service) Namespace() string { return s.Spec.Namespace }
func (s *Service) Name() string      { return s.Spec.Name }

// Key is "namespace/name", the Service's identity, as service.Service's.
func (s *Service) Key() string { return s.Spec.Namespace + "/" + s.Spec.Name }

// Headless tells whether the Service asked for no virtual address
// (clusterIP: None).
func (s *Service) Headless() bool { return s.Spec.Spec.ClusterIP == corev1.ClusterIPNone }

// NeedsClusterIP tells whether the sync must give the Service an address:
// it is not headless, not an ExternalName, and its manifest names none.
func (s *Service) NeedsClusterIP() bool {
	return s.Spec.Spec.Type != corev1.ServiceTypeExternalName && s.Spec.Spec.ClusterIP == ""
}

// NeedsNodePorts tells whether each of the Service's ports without a
// nodePort gets one from the sync: a NodePort Service, or a LoadBalancer
// one unless allocateLoadBalancerNodePorts is false.
func (s *Service) NeedsNodePorts() bool {
	switch spec := &s.Spec.Spec; spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return spec.AllocateLoadBalancerNodePorts == nil || *spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// Model is the Service as the node serves it (package cni/service), with
// the ClusterIP and node ports the manifest gives: ClusterIP is not valid
// when the manifest leaves it to the sync (NeedsClusterIP) or the Service
// is headless, and a NodePort of 0 is one the sync allocates
// (NeedsNodePorts) or none.
func (s *Service) Model() service.Service {
	spec := &s.Spec.Spec
	m := service.Service{
		Namespace:                s.Spec.Namespace,
		Name:                     s.Spec.Name,
		Type:                     service.Type(spec.Type),
		ExternalName:             spec.ExternalName,
		PublishNotReadyAddresses: spec.PublishNotReadyAddresses,
	}
	if a, err := netip.ParseAddr(spec.ClusterIP); err == nil {
		m.ClusterIP = a
	}
	for _, p := range spec.Ports {
		port := service.Port{Name: p.Name, Protocol: service.Protocol(p.Protocol), Port: p.Port, NodePort: p.NodePort}
		if p.TargetPort.Type == intstr.String {
			port.TargetPortName = p.TargetPort.StrVal
		} else {
			port.TargetPort = p.TargetPort.IntVal
		}
		m.Ports = append(m.Ports, port)
	}
	if len(spec.Selector) > 0 {
		m.Selector = maps.Clone(spec.Selector)
	}
	for _, ip := range spec.ExternalIPs {
		if a, err := netip.ParseAddr(ip); err == nil {
			m.ExternalIPs = append(m.ExternalIPs, a)
		}
	}
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		m.SessionAffinity = true
		m.AffinityTimeout = service.DefaultAffinityTimeout
		if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			m.AffinityTimeout = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	return m
}

// Summary says in one line what the Service is, for `podunit validate`
// and the sync's log: "LoadBalancer, http: 80/TCP → 8080 (node port from
// the range)".
func (s *Service) Summary() string {
	spec := &s.Spec.Spec
	var b strings.Builder
	b.WriteString(string(spec.Type))
	switch {
	case spec.Type == corev1.ServiceTypeExternalName:
		b.WriteString(" " + spec.ExternalName)
	case s.Headless():
		b.WriteString(" None (headless)")
	case spec.ClusterIP != "":
		b.WriteString(" " + spec.ClusterIP)
	}
	for _, p := range spec.Ports {
		b.WriteString(", ")
		if p.Name != "" {
			b.WriteString(p.Name + ": ")
		}
		fmt.Fprintf(&b, "%d/%s → %s", p.Port, p.Protocol, p.TargetPort.String())
		switch {
		case p.NodePort != 0:
			fmt.Fprintf(&b, " (node port %d)", p.NodePort)
		case s.NeedsNodePorts():
			b.WriteString(" (node port from the range)")
		}
	}
	if len(spec.ExternalIPs) > 0 {
		b.WriteString(", external IPs " + strings.Join(spec.ExternalIPs, " "))
	}
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		b.WriteString(", sticky per client for " + strconv.Itoa(int(*spec.SessionAffinityConfig.ClientIP.TimeoutSeconds)) + " s")
	}
	return b.String()
}
