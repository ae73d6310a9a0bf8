package criconfig

import (
	"bytes"
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod's resolv.conf for each dnsPolicy, hostNetwork and dnsConfig, as
// the kubelet composes it (pkg/kubelet/network/dns) and kubernetes.io's
// "DNS for Services and Pods" documents it: ClusterFirst gets the cluster
// resolver alone, the namespace's search list before the node's and
// ndots:5; hostNetwork pods get the node's unless ClusterFirstWithHostNet;
// None gets dnsConfig alone; dnsConfig is appended without duplicates and
// its options replace the policy's; without cluster DNS ClusterFirst
// falls back to Default and says so; the limits (3 name servers, 32
// search domains, 2048 characters, 253 per domain) cut the end.
func TestPodDNS(t *testing.T) {
	hostResolv := "nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch example.org corp.example.\noptions edns0 timeout:2\n"
	host := []string{"192.0.2.53", "192.0.2.54"}
	cluster := []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local"}
	hostSearch := []string{"example.org", "corp.example"}
	long := func(i int) string { return fmt.Sprintf("%02d%s", i, strings.Repeat("x", 248)) } // 250 characters
	var longs []string
	for i := range 10 {
		longs = append(longs, long(i))
	}
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("d%d.example", i))
	}

	for _, c := range []struct {
		name          string
		policy        corev1.DNSPolicy
		hostNetwork   bool
		dnsConfig     *corev1.PodDNSConfig
		clusterDNS    []string
		clusterDomain string
		hostResolv    string // "": hostResolv
		want          *runtimeapi.DNSConfig
		warning       string // in the log; "": none
	}{
		{name: "ClusterFirst", policy: corev1.DNSClusterFirst, clusterDNS: []string{"10.96.0.10"},
			want: &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: append(cluster, hostSearch...), Options: []string{"ndots:5"}}},
		{name: "no policy (the API's default)", clusterDNS: []string{"10.96.0.10"},
			want: &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: append(cluster, hostSearch...), Options: []string{"ndots:5"}}},
		{name: "ClusterFirst on the host's network", policy: corev1.DNSClusterFirst, hostNetwork: true, clusterDNS: []string{"10.96.0.10"},
			want: &runtimeapi.DNSConfig{Servers: host, Searches: hostSearch, Options: []string{"edns0", "timeout:2"}}},
		{name: "ClusterFirstWithHostNet on the host's network", policy: corev1.DNSClusterFirstWithHostNet, hostNetwork: true, clusterDNS: []string{"10.96.0.10"},
			want: &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: append(cluster, hostSearch...), Options: []string{"ndots:5"}}},
		{name: "ClusterFirstWithHostNet", policy: corev1.DNSClusterFirstWithHostNet, clusterDNS: []string{"10.96.0.10"},
			want: &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: append(cluster, hostSearch...), Options: []string{"ndots:5"}}},
		{name: "Default", policy: corev1.DNSDefault, clusterDNS: []string{"10.96.0.10"},
			want: &runtimeapi.DNSConfig{Servers: host, Searches: hostSearch, Options: []string{"edns0", "timeout:2"}}},
		// kubernetes.io's dnsConfig example, word for word.
		{name: "None", policy: corev1.DNSNone, clusterDNS: []string{"10.96.0.10"},
			dnsConfig: &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.1"}, Searches: []string{"ns1.svc.cluster-domain.example", "my.dns.search.suffix"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}, {Name: "edns0"}}},
			want: &runtimeapi.DNSConfig{Servers: []string{"192.0.2.1"}, Searches: []string{"ns1.svc.cluster-domain.example", "my.dns.search.suffix"}, Options: []string{"ndots:2", "edns0"}}},
		{name: "ClusterFirst with dnsConfig", policy: corev1.DNSClusterFirst, clusterDNS: []string{"10.96.0.10"},
			dnsConfig: &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.99", "10.96.0.10"}, Searches: []string{"extra.example", "shop.svc.cluster.local"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}, {Name: "single-request"}}},
			want: &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10", "192.0.2.99"}, Searches: append(append(cluster, hostSearch...), "extra.example"),
				Options: []string{"ndots:2", "single-request"}}},
		{name: "Default with dnsConfig", policy: corev1.DNSDefault,
			dnsConfig: &corev1.PodDNSConfig{Searches: []string{"example.org", "extra.example"}, Options: []corev1.PodDNSConfigOption{{Name: "timeout", Value: ptr("5")}}},
			want:      &runtimeapi.DNSConfig{Servers: host, Searches: append(hostSearch, "extra.example"), Options: []string{"edns0", "timeout:5"}}},
		{name: "ClusterFirst without cluster DNS", policy: corev1.DNSClusterFirst,
			want:    &runtimeapi.DNSConfig{Servers: host, Searches: hostSearch, Options: []string{"edns0", "timeout:2"}},
			warning: "falls back to Default"},
		{name: "another cluster domain", policy: corev1.DNSClusterFirst, clusterDNS: []string{"10.96.0.10"}, clusterDomain: "corp.local.",
			want: &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: append([]string{"shop.svc.corp.local", "svc.corp.local", "corp.local"}, hostSearch...), Options: []string{"ndots:5"}}},
		{name: "the node's search list names the cluster's, with trailing dots", policy: corev1.DNSClusterFirst, clusterDNS: []string{"10.96.0.10"},
			hostResolv: "nameserver 192.0.2.53\nsearch svc.cluster.local. cluster.local. .\n",
			want:       &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: append(cluster, "."), Options: []string{"ndots:5"}}},
		{name: "more than 3 name servers", policy: corev1.DNSDefault,
			dnsConfig: &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.55", "192.0.2.56"}},
			want:      &runtimeapi.DNSConfig{Servers: []string{"192.0.2.53", "192.0.2.54", "192.0.2.55"}, Searches: hostSearch, Options: []string{"edns0", "timeout:2"}},
			warning:   "the first 3 are used"},
		{name: "more than 32 search domains", policy: corev1.DNSClusterFirst, clusterDNS: []string{"10.96.0.10"},
			dnsConfig: &corev1.PodDNSConfig{Searches: many},
			want:      &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: append(append(cluster, hostSearch...), many[:27]...), Options: []string{"ndots:5"}},
			warning:   "some domains are left out"},
		{name: "a search list over 2048 characters, a domain over 253", policy: corev1.DNSClusterFirst, clusterDNS: []string{"10.96.0.10"},
			dnsConfig: &corev1.PodDNSConfig{Searches: append([]string{strings.Repeat("y", 254)}, longs...)},
			want:      &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: append(append(cluster, hostSearch...), longs[:7]...), Options: []string{"ndots:5"}},
			warning:   "some domains are left out"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pod := testPod()
			pod.Namespace = "shop"
			pod.Spec.DNSPolicy, pod.Spec.HostNetwork, pod.Spec.DNSConfig = c.policy, c.hostNetwork, c.dnsConfig
			in := testInput(pod)
			in.HostDNS = ParseResolvConf([]byte(cmp.Or(c.hostResolv, hostResolv)))
			hostCopy := fmt.Sprint(in.HostDNS)
			in.ClusterDNS, in.ClusterDomain = c.clusterDNS, c.clusterDomain
			var log bytes.Buffer
			in.Log = slog.New(slog.NewTextHandler(&log, nil))

			got := Sandbox(in, 0).DnsConfig
			if !slices.Equal(got.Servers, c.want.Servers) || !slices.Equal(got.Searches, c.want.Searches) || !slices.Equal(got.Options, c.want.Options) {
				t.Errorf("got\n nameserver %v\n search %v\n options %v\nwant\n nameserver %v\n search %v\n options %v",
					got.Servers, got.Searches, got.Options, c.want.Servers, c.want.Searches, c.want.Options)
			}
			if (c.warning == "") != (log.Len() == 0) || !strings.Contains(log.String(), c.warning) {
				t.Errorf("log %q, want a warning with %q", log.String(), c.warning)
			}
			if fmt.Sprint(in.HostDNS) != hostCopy {
				t.Errorf("the node's configuration changed: %v", in.HostDNS)
			}
		})
	}
}

// The fully qualified name of a pod with a subdomain is in the cluster
// domain given.
func TestHostnamesIn(t *testing.T) {
	pod := testPod()
	pod.Namespace, pod.Spec.Hostname, pod.Spec.Subdomain = "shop", "db-0", "db"
	for domain, want := range map[string]string{"": "db-0.db.shop.svc.cluster.local", "corp.local.": "db-0.db.shop.svc.corp.local"} {
		if host, fqdn := HostnamesIn(pod, domain); host != "db-0" || fqdn != want {
			t.Errorf("domain %q: %s %s, want %s", domain, host, fqdn, want)
		}
	}
}
