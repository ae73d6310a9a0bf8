package podshim

import (
	"bufio"
	"bytes"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Resolver configurations podunit reads for the host's DNS: systemd-resolved's
// upstream servers when it runs (its stub at 127.0.0.53 is unreachable from
// a pod's network namespace), else the classic file.
var resolvConfCandidates = []string{"/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"}

// DefaultResolvConf is the host's resolver configuration file.
func DefaultResolvConf() string {
	for _, p := range resolvConfCandidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// dnsConfig is the pod's resolver configuration, as the kubelet makes it
// without cluster DNS: the host's for ClusterFirst, ClusterFirstWithHostNet
// and Default; nothing for None; then dnsConfig merged in.
func (s *Shim) dnsConfig() *runtimeapi.DNSConfig {
	out := &runtimeapi.DNSConfig{}
	if s.pod.Spec.DNSPolicy != corev1.DNSNone && s.cfg.ResolvConf != "" {
		if b, err := os.ReadFile(s.cfg.ResolvConf); err == nil {
			out = parseResolvConf(b)
		} else {
			s.log.Warn("cannot read the host's resolver configuration; the pod gets none from it", "file", s.cfg.ResolvConf, "err", err)
		}
	}
	if c := s.pod.Spec.DNSConfig; c != nil {
		out.Servers = append(out.Servers, c.Nameservers...)
		out.Searches = append(out.Searches, c.Searches...)
		for _, o := range c.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			out.Options = mergeOption(out.Options, o.Name, opt)
		}
	}
	out.Servers = dedupe(out.Servers)
	if len(out.Servers) > 3 {
		s.log.Warn("more than 3 name servers; using the first 3", "servers", out.Servers)
		out.Servers = out.Servers[:3]
	}
	out.Searches = dedupe(out.Searches)
	if len(out.Searches) > 32 {
		out.Searches = out.Searches[:32]
	}
	return out
}

// parseResolvConf reads the nameserver, search and options lines of a
// resolv.conf; options are kept in CRI form (name or name:value).
func parseResolvConf(b []byte) *runtimeapi.DNSConfig {
	out := &runtimeapi.DNSConfig{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line, _, _ = strings.Cut(line, ";")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			out.Servers = append(out.Servers, f[1])
		case "search", "domain":
			out.Searches = f[1:] // the last one wins, as in the resolver
		case "options":
			for _, o := range f[1:] {
				name, _, _ := strings.Cut(o, ":")
				out.Options = mergeOption(out.Options, name, o)
			}
		}
	}
	return out
}

// mergeOption replaces the option called name in opts by opt, or adds it.
func mergeOption(opts []string, name, opt string) []string {
	for i, o := range opts {
		if n, _, _ := strings.Cut(o, ":"); n == name {
			opts[i] = opt
			return opts
		}
	}
	return append(opts, opt)
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	out := list[:0]
	for _, v := range list {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
