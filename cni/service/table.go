package service

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
)

// DefaultTablePath is where `podunit sync` writes the node's Service table.
const DefaultTablePath = "/run/podunit/services/services.json"

// Table is the node's Service table, which `podunit sync` writes (to
// DefaultTablePath, replaced atomically and only when it changed) for the
// node's rules, its resolver and the status API: every Service the node
// serves, with the ClusterIP and node ports the sync gave it, and what the
// manifests say of the pods that the Services' selectors may match. What
// changes while pods run, their addresses and readiness, is not in it:
// podshim's state files say that, and Join adds it.
//
// Its JSON:
//
//	{
//	  "serviceClusterIPRange": "10.96.0.0/12",
//	  "serviceNodePortRange": "30000-32767",
//	  "clusterDomain": "cluster.local",
//	  "clusterDNS": "10.96.0.10",
//	  "podNetwork": ["10.88.0.0/16"],
//	  "nodeIPs": ["192.168.1.20"],
//	  "services": [{"namespace": "default", "name": "web", "type": "NodePort",
//	                "clusterIP": "10.97.12.34", "selector": {"app": "web"},
//	                "ports": [{"name": "http", "protocol": "TCP", "port": 80,
//	                           "nodePort": 30086, "targetPortName": "http"}]}],
//	  "pods": [{"namespace": "default", "name": "web-0", "labels": {"app": "web"},
//	            "hostname": "web-0", "subdomain": "web",
//	            "ports": [{"name": "http", "protocol": "TCP", "containerPort": 8080}]}]
//	}
//
// Services and pods are sorted by namespace and name.
type Table struct {
	// ClusterIPRange, NodePortRange, ClusterDomain and ClusterDNS are the
	// node's Service network as config.yaml gave it to the sync.
	ClusterIPRange netip.Prefix `json:"serviceClusterIPRange"`
	NodePortRange  string       `json:"serviceNodePortRange"`
	ClusterDomain  string       `json:"clusterDomain"`
	ClusterDNS     netip.Addr   `json:"clusterDNS"`
	// PodNetwork are the subnets of the pods' CNI network, when the sync
	// could tell them.
	PodNetwork []netip.Prefix `json:"podNetwork"`
	// NodeIPs are the node's IPv4 addresses (those podshim gives pods as
	// status.hostIPs), where LoadBalancer Services answer: their
	// status.loadBalancer.ingress, as k3s's ServiceLB reports a node's.
	NodeIPs  []netip.Addr `json:"nodeIPs"`
	Services []Service    `json:"services"`
	Pods     []PodInfo    `json:"pods"`
}

// PodInfo is what a pod's manifest says that its endpoints depend on:
// the pods of the sync's desired units (those that run or are about to,
// a pod kept on its last good spec included).
type PodInfo struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Hostname and Subdomain are spec.hostname and spec.subdomain.
	Hostname  string `json:"hostname,omitempty"`
	Subdomain string `json:"subdomain,omitempty"`
	// HostNetwork: the pod's address is the node's.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// Ports are the ports its containers (and sidecars) declare.
	Ports []ContainerPort `json:"ports,omitempty"`
}

// Key is the pod's namespace/name.
func (p *PodInfo) Key() string { return p.Namespace + "/" + p.Name }

// PodStatus is what a pod's state says of it now.
type PodStatus struct {
	// IP is its address (status.podIP); not valid: none yet.
	IP netip.Addr
	// Ready is its Ready condition.
	Ready bool
	// Terminating: the pod is being stopped (its unit deactivating), so it
	// leaves rotation at once, whatever its Ready condition still says.
	Terminating bool
}

// ReadTable reads the table at path.
func ReadTable(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Table
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("Service table %s: %w", path, err)
	}
	return &t, nil
}

// Marshal is the table's JSON, a line for each Service and each pod,
// sorted so that the same table is always the same bytes.
func (t *Table) Marshal() ([]byte, error) {
	services := slices.Clone(t.Services)
	slices.SortFunc(services, func(a, b Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	pods := slices.Clone(t.Pods)
	slices.SortFunc(pods, func(a, b PodInfo) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	podNetwork, nodeIPs := t.PodNetwork, t.NodeIPs
	if podNetwork == nil {
		podNetwork = []netip.Prefix{}
	}
	if nodeIPs == nil {
		nodeIPs = []netip.Addr{}
	}
	var b bytes.Buffer
	field := func(name string, v any, last bool) error {
		enc, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, " %q: %s", name, enc)
		if !last {
			b.WriteString(",")
		}
		b.WriteString("\n")
		return nil
	}
	list := func(name string, n int, item func(i int) any, last bool) error {
		fmt.Fprintf(&b, " %q: [", name)
		for i := range n {
			enc, err := json.Marshal(item(i))
			if err != nil {
				return err
			}
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n  ")
			b.Write(enc)
		}
		if n > 0 {
			b.WriteString("\n ")
		}
		b.WriteString("]")
		if !last {
			b.WriteString(",")
		}
		b.WriteString("\n")
		return nil
	}
	b.WriteString("{\n")
	err := errors.Join(
		field("serviceClusterIPRange", t.ClusterIPRange, false),
		field("serviceNodePortRange", t.NodePortRange, false),
		field("clusterDomain", t.ClusterDomain, false),
		field("clusterDNS", t.ClusterDNS, false),
		field("podNetwork", podNetwork, false),
		field("nodeIPs", nodeIPs, false),
		list("services", len(services), func(i int) any { return &services[i] }, false),
		list("pods", len(pods), func(i int) any { return &pods[i] }, true),
	)
	b.WriteString("}\n")
	return b.Bytes(), err
}

// Pods are the table's pods as status says they are now: status returns
// a pod's status by namespace and name, and false for a pod with no state
// yet (not started: it has no address, so it is no endpoint).
func (t *Table) PodsWith(status func(namespace, name string) (PodStatus, bool)) []Pod {
	out := make([]Pod, 0, len(t.Pods))
	for i := range t.Pods {
		info := &t.Pods[i]
		p := Pod{Namespace: info.Namespace, Name: info.Name, Labels: info.Labels, HostNetwork: info.HostNetwork,
			Hostname: info.Hostname, Subdomain: info.Subdomain, Ports: info.Ports}
		if st, ok := status(info.Namespace, info.Name); ok {
			p.IP, p.Ready, p.Terminating = st.IP, st.Ready, st.Terminating
		}
		out = append(out, p)
	}
	return out
}

// Join is the Snapshot of the table's Services, their endpoints resolved
// from its pods as status says they are now (see PodsWith). The rules
// and the resolver build theirs with it from podshim's state files, the
// status API from its own view of the pods, so they agree.
func (t *Table) Join(status func(namespace, name string) (PodStatus, bool)) *Snapshot {
	return Build(t.Services, t.PodsWith(status))
}
