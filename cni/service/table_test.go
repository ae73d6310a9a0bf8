package service

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The table is read back as written, in one byte order whatever the order
// it was built in, and its JSON keeps the names the daemons read.
func TestTableRoundTrip(t *testing.T) {
	ip := netip.MustParseAddr
	table := &Table{
		ClusterIPRange: netip.MustParsePrefix("10.96.0.0/12"), NodePortRange: "30000-32767",
		ClusterDomain: "cluster.local", ClusterDNS: ip("10.96.0.10"), PodNetwork: []netip.Prefix{netip.MustParsePrefix("10.88.0.0/16")},
		NodeIPs: []netip.Addr{ip("192.168.1.20")},
		Services: []Service{
			{Namespace: "default", Name: "web", Type: NodePort, ClusterIP: ip("10.97.0.3"), Selector: map[string]string{"app": "web"},
				Ports: []Port{{Name: "http", Protocol: TCP, Port: 80, NodePort: 30086, TargetPortName: "http"}}, SessionAffinity: true, AffinityTimeout: 3 * time.Hour},
			{Namespace: "default", Name: "db", Type: ClusterIP, Selector: map[string]string{"app": "db"}, Ports: []Port{{Protocol: TCP, Port: 3306, TargetPort: 3306}}},
		},
		Pods: []PodInfo{
			{Namespace: "default", Name: "web-1", Labels: map[string]string{"app": "web"}, Ports: []ContainerPort{{Name: "http", Protocol: TCP, Port: 8080}}},
			{Namespace: "default", Name: "web-0", Labels: map[string]string{"app": "web"}, Hostname: "web-0", Subdomain: "web"},
		},
	}
	b, err := table.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	reversed := *table
	reversed.Services = []Service{table.Services[1], table.Services[0]}
	reversed.Pods = []PodInfo{table.Pods[1], table.Pods[0]}
	if b2, _ := reversed.Marshal(); string(b2) != string(b) {
		t.Errorf("the same table in another order gives other bytes:\n%s\n%s", b, b2)
	}
	for _, want := range []string{`"serviceClusterIPRange": "10.96.0.0/12"`, `"clusterDNS": "10.96.0.10"`, `"nodeIPs": ["192.168.1.20"]`, `"clusterIP":"10.97.0.3"`,
		`"nodePort":30086`, `"targetPortName":"http"`, `"containerPort":8080`, `"sessionAffinityClientIP":true`, `"affinityTimeout":10800000000000`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the table's JSON lacks %s:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), `"clusterIP":""`) {
		t.Errorf("a Service without a ClusterIP has an empty one in JSON:\n%s", b)
	}
	// A line a Service, then a line a pod.
	if lines := strings.Split(string(b), "\n"); len(lines) != 17 || !strings.HasPrefix(lines[8], `  {"namespace":"default","name":"db"`) || !strings.HasPrefix(lines[12], `  {"namespace":"default","name":"web-0"`) {
		t.Errorf("lines:\n%s", b)
	}
	path := filepath.Join(t.TempDir(), "services.json")
	os.WriteFile(path, b, 0o644)
	got, err := ReadTable(path)
	if err != nil {
		t.Fatal(err)
	}
	if b3, _ := got.Marshal(); string(b3) != string(b) {
		t.Errorf("read back:\n%s\nwant\n%s", b3, b)
	}
	os.WriteFile(path, b[:len(b)/2], 0o644)
	if _, err := ReadTable(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("half a table: %v", err)
	}
}

// Join gives the table's pods the addresses and readiness their states
// say: a pod without state is no endpoint, a terminating one is out of
// rotation, and a named target port resolves through the table's ports.
func TestJoin(t *testing.T) {
	ip := netip.MustParseAddr
	table := &Table{
		Services: []Service{{Namespace: "default", Name: "web", Type: ClusterIP, ClusterIP: ip("10.96.0.20"), Selector: map[string]string{"app": "web"},
			Ports: []Port{{Name: "http", Protocol: TCP, Port: 80, TargetPortName: "http"}}}},
		Pods: []PodInfo{
			{Namespace: "default", Name: "web-0", Labels: map[string]string{"app": "web"}, Ports: []ContainerPort{{Name: "http", Protocol: TCP, Port: 8080}}},
			{Namespace: "default", Name: "web-1", Labels: map[string]string{"app": "web"}, Ports: []ContainerPort{{Name: "http", Protocol: TCP, Port: 8081}}},
			{Namespace: "default", Name: "web-2", Labels: map[string]string{"app": "web"}, Ports: []ContainerPort{{Name: "http", Protocol: TCP, Port: 8082}}},
			{Namespace: "default", Name: "web-3", Labels: map[string]string{"app": "web"}},
		},
	}
	states := map[string]PodStatus{
		"web-0": {IP: ip("10.88.0.2"), Ready: true},
		"web-1": {IP: ip("10.88.0.3"), Ready: true, Terminating: true},
		"web-3": {IP: ip("10.88.0.5"), Ready: true},
	}
	snap := table.Join(func(ns, name string) (PodStatus, bool) {
		st, ok := states[name]
		return st, ok && ns == "default"
	})
	want := []Endpoint{
		{Namespace: "default", Pod: "web-0", IP: ip("10.88.0.2"), Ready: true, Serving: true, Ports: map[string]int32{"http": 8080}},
		{Namespace: "default", Pod: "web-1", IP: ip("10.88.0.3"), Serving: true, Terminating: true, Ports: map[string]int32{"http": 8081}},
		{Namespace: "default", Pod: "web-3", IP: ip("10.88.0.5"), Ready: true, Serving: true, Ports: map[string]int32{}},
	}
	if got := snap.Endpoints["default/web"]; !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints:\n got %+v\nwant %+v", got, want)
	}
}
