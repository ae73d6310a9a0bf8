package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Sysctl is one kernel setting the rules rely on: Path under /proc/sys
// (net/ipv4/ip_forward) and its Value.
type Sysctl struct {
	Path, Value string
	// Why the rules need it.
	Why string
}

// Name is the setting as sysctl(8) names it (net.ipv4.ip_forward; a dot
// inside an interface's name is written "/").
func (s Sysctl) Name() string {
	parts := strings.Split(s.Path, "/")
	for i := range parts {
		parts[i] = strings.ReplaceAll(parts[i], ".", "/")
	}
	return strings.Join(parts, ".")
}

// Sysctls are the settings of the node's network namespace that the rules
// of node need, as the daemon that programs them must keep them:
//
//   - net.ipv4.ip_forward = 1: pods and other machines are routed to the
//     endpoints (the CNI bridge plugin sets it too).
//   - net.bridge.bridge-nf-call-iptables = 1 (module br_netfilter, which
//     the daemon or packaging must load first): a pod's reply to another
//     pod on the same bridge is bridged, not routed, and only with it does
//     conntrack see that reply and restore the Service's address, as
//     kubeadm and k3s require of bridge networks.
//   - net.ipv4.conf.<PodInterface>.route_localnet: 1 with Node.Localhost, so
//     that a connection from 127.0.0.1 may leave for a pod and its reply
//     come back; 0 without it (the kernel's default), which is also what to
//     write after Remove. With no PodInterface, none is set.
func Sysctls(node Node) []Sysctl {
	out := []Sysctl{
		{Path: "net/ipv4/ip_forward", Value: "1", Why: "route connections to the pods"},
		{Path: "net/bridge/bridge-nf-call-iptables", Value: "1", Why: "un-NAT a pod's reply bridged to another pod (module br_netfilter)"},
	}
	if node.PodInterface != "" {
		v := "0"
		if node.Localhost {
			v = "1"
		}
		out = append(out, Sysctl{Path: "net/ipv4/conf/" + node.PodInterface + "/route_localnet", Value: v,
			Why: "let connections from 127.0.0.1 to NodePorts and LoadBalancer ports reach the pods"})
	}
	return out
}

// WriteSysctls writes each setting under procSys (/proc/sys on a node; the
// network namespace is the writing thread's), all it can: the error says
// which failed. One that does not exist yet (the pods' bridge before the
// first pod, net/bridge before br_netfilter is loaded) matches
// fs.ErrNotExist; writing again at the next Sync is the remedy.
func WriteSysctls(procSys string, settings []Sysctl) error {
	var errs []error
	for _, s := range settings {
		if err := os.WriteFile(filepath.Join(procSys, s.Path), []byte(s.Value+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("sysctl %s=%s (%s): %w", s.Name(), s.Value, s.Why, err))
		}
	}
	return errors.Join(errs...)
}
