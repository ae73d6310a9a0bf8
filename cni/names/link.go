package names

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
)

// DefaultLink is the interface that holds the resolver's address.
const DefaultLink = "podunit-dns"

// Link is an interface of podunit's own that holds the resolver's
// addresses (clusterDNS, e.g. 10.96.0.10/32), as NodeLocal DNSCache holds
// 169.254.20.10 on a dummy interface: a local address of the node, which
// pods reach through their bridge and the host directly, and that no
// outside interface carries. It is driven with iproute2's ip.
type Link struct {
	// Name is the interface's; "": DefaultLink.
	Name string
	// Kind is the link type made; "": dummy.
	Kind string
	// IP runs ip with args and returns its standard output; nil: the ip
	// command of the PATH.
	IP func(ctx context.Context, args ...string) ([]byte, error)
}

// Ensure makes the interface exist, up, with exactly addrs: it adds what
// is missing and removes the addresses that are not asked for any more.
// It does nothing when all is as asked, and refuses an interface of the
// same name that is of another kind (it is not podunit's).
func (l *Link) Ensure(ctx context.Context, addrs ...netip.Prefix) error {
	cur, err := l.state(ctx)
	if err != nil {
		return err
	}
	steps, err := ensurePlan(cur, l.name(), l.kind(), addrs)
	if err != nil {
		return err
	}
	return l.apply(ctx, steps)
}

// Remove deletes the interface, and its addresses with it; nothing when
// it does not exist.
func (l *Link) Remove(ctx context.Context) error {
	cur, err := l.state(ctx)
	if err != nil {
		return err
	}
	steps, err := removePlan(cur, l.name(), l.kind())
	if err != nil {
		return err
	}
	return l.apply(ctx, steps)
}

// linkState is what `ip -d -j addr show` says of one interface.
type linkState struct {
	Name     string   `json:"ifname"`
	Flags    []string `json:"flags"`
	LinkInfo *struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
	Addrs []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
	} `json:"addr_info"`
}

func (s *linkState) kind() string {
	if s.LinkInfo == nil {
		return ""
	}
	return s.LinkInfo.Kind
}

// prefixes are the interface's addresses but the link-local ones the
// kernel adds itself.
func (s *linkState) prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range s.Addrs {
		ip, err := netip.ParseAddr(a.Local)
		if err != nil || a.Scope == "link" {
			continue
		}
		out = append(out, netip.PrefixFrom(ip, a.PrefixLen))
	}
	return out
}

// ensurePlan is the ip commands that make the interface name of kind
// exist, up, with exactly want; cur is its state (nil: absent).
func ensurePlan(cur *linkState, name, kind string, want []netip.Prefix) ([][]string, error) {
	var steps [][]string
	var have []netip.Prefix
	switch {
	case cur == nil:
		steps = append(steps, []string{"link", "add", name, "type", kind})
	case cur.kind() != kind:
		return nil, fmt.Errorf("interface %s: it exists as a %q link, not podunit's %s: rename or remove it", name, cur.kind(), kind)
	default:
		have = cur.prefixes()
	}
	if cur == nil || !slices.Contains(cur.Flags, "UP") {
		steps = append(steps, []string{"link", "set", "dev", name, "up"})
	}
	for _, p := range want {
		if !slices.Contains(have, p) {
			steps = append(steps, []string{"addr", "add", p.String(), "dev", name})
		}
	}
	for _, p := range have {
		if !slices.Contains(want, p) {
			steps = append(steps, []string{"addr", "del", p.String(), "dev", name})
		}
	}
	return steps, nil
}

// removePlan is the ip commands that delete the interface.
func removePlan(cur *linkState, name, kind string) ([][]string, error) {
	switch {
	case cur == nil:
		return nil, nil
	case cur.kind() != kind:
		return nil, fmt.Errorf("interface %s: it exists as a %q link, not podunit's %s: left alone", name, cur.kind(), kind)
	}
	return [][]string{{"link", "del", "dev", name}}, nil
}

// state is the interface's state; nil when it does not exist.
func (l *Link) state(ctx context.Context) (*linkState, error) {
	out, err := l.run(ctx, "-d", "-j", "addr", "show")
	if err != nil {
		return nil, err
	}
	var links []linkState
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("ip -d -j addr show: %w", err)
	}
	for i := range links {
		if links[i].Name == l.name() {
			return &links[i], nil
		}
	}
	return nil, nil
}

func (l *Link) apply(ctx context.Context, steps [][]string) error {
	for _, args := range steps {
		if _, err := l.run(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

func (l *Link) run(ctx context.Context, args ...string) ([]byte, error) {
	if l.IP != nil {
		return l.IP(ctx, args...)
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ip %v: %w: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

func (l *Link) name() string { return cmp.Or(l.Name, DefaultLink) }
func (l *Link) kind() string { return cmp.Or(l.Kind, "dummy") }
