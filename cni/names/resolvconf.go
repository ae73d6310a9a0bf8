package names

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// ResolvedConf is where systemd-resolved lists the servers it forwards to,
// and resolvedStub the address of its own stub resolver.
const (
	ResolvedConf = "/run/systemd/resolve/resolv.conf"
	resolvedStub = "127.0.0.53"
)

// Upstreams are the name servers of the resolv.conf at path, as
// "ip:53": the node's resolvers that names outside the cluster are
// forwarded to. When the file names systemd-resolved's stub (127.0.0.53),
// the servers resolved itself uses (ResolvedConf) are read instead, as
// the kubelet is configured on such hosts, so that the resolver forwards
// where the pods' Default policy points; the stub stays when that file
// cannot be read.
func Upstreams(path string) ([]string, error) {
	return upstreams(path, ResolvedConf)
}

func upstreams(path, resolved string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("upstream resolvers: %w", err)
	}
	servers := nameservers(b)
	for _, s := range servers {
		if s == netip.AddrPortFrom(netip.MustParseAddr(resolvedStub), 53).String() {
			if b, err := os.ReadFile(resolved); err == nil && len(nameservers(b)) > 0 {
				return nameservers(b), nil
			}
			break
		}
	}
	return servers, nil
}

// nameservers are a resolv.conf's nameserver lines, as "ip:53"; lines
// that name no IP address are skipped, as the C library skips them.
func nameservers(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(f[1]); err == nil {
			out = append(out, netip.AddrPortFrom(a, 53).String())
		}
	}
	return out
}
