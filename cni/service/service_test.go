package service

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestEndpoints(t *testing.T) {
	ip := netip.MustParseAddr
	pods := []Pod{
		{Namespace: "default", Name: "web-1", Labels: map[string]string{"app": "web"}, IP: ip("10.88.0.3"), Ready: true,
			Ports: []ContainerPort{{Name: "http", Protocol: TCP, Port: 8080}}},
		{Namespace: "default", Name: "web-0", Labels: map[string]string{"app": "web", "tier": "x"}, IP: ip("10.88.0.2"), Ready: true,
			Hostname: "web-0", Subdomain: "web", Ports: []ContainerPort{{Name: "http", Port: 80}}},
		// unready, terminating, no IP yet, another namespace, other labels
		{Namespace: "default", Name: "web-2", Labels: map[string]string{"app": "web"}, IP: ip("10.88.0.4")},
		{Namespace: "default", Name: "web-3", Labels: map[string]string{"app": "web"}, IP: ip("10.88.0.5"), Ready: true, Terminating: true},
		{Namespace: "default", Name: "web-4", Labels: map[string]string{"app": "web"}, Ready: true},
		{Namespace: "other", Name: "web-0", Labels: map[string]string{"app": "web"}, IP: ip("10.88.0.6"), Ready: true},
		{Namespace: "default", Name: "db", Labels: map[string]string{"app": "db"}, IP: ip("10.88.0.7"), Ready: true},
	}
	svc := &Service{Namespace: "default", Name: "web", Type: ClusterIP, Selector: map[string]string{"app": "web"},
		Ports: []Port{{Name: "http", Protocol: TCP, Port: 80, TargetPortName: "http"}, {Name: "metrics", Protocol: TCP, Port: 9100, TargetPort: 9100}}}
	got := Endpoints(svc, pods)
	want := []Endpoint{
		{Namespace: "default", Pod: "web-0", IP: ip("10.88.0.2"), Ready: true, Serving: true, Hostname: "web-0", Ports: map[string]int32{"http": 80, "metrics": 9100}},
		{Namespace: "default", Pod: "web-1", IP: ip("10.88.0.3"), Ready: true, Serving: true, Ports: map[string]int32{"http": 8080, "metrics": 9100}},
		{Namespace: "default", Pod: "web-2", IP: ip("10.88.0.4"), Ports: map[string]int32{"metrics": 9100}},
		{Namespace: "default", Pod: "web-3", IP: ip("10.88.0.5"), Serving: true, Terminating: true, Ports: map[string]int32{"metrics": 9100}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("endpoints:\n got %+v\nwant %+v", got, want)
	}

	svc.PublishNotReadyAddresses = true
	for _, ep := range Endpoints(svc, pods) {
		if !ep.Ready {
			t.Errorf("publishNotReadyAddresses: %s not ready", ep.Pod)
		}
	}
	for _, s := range []*Service{
		{Namespace: "default", Name: "none", Type: ClusterIP},
		{Namespace: "default", Name: "empty", Type: ClusterIP, Selector: map[string]string{}},
		{Namespace: "default", Name: "ext", Type: ExternalName, ExternalName: "example.org", Selector: map[string]string{"app": "web"}},
	} {
		if eps := Endpoints(s, pods); eps != nil {
			t.Errorf("%s: endpoints %v, want none", s.Name, eps)
		}
	}
}

func TestUnnamedPortDefaultsToThePort(t *testing.T) {
	svc := &Service{Namespace: "default", Name: "db", Selector: map[string]string{"app": "db"}, ClusterIP: netip.MustParseAddr("10.96.0.10"),
		Ports: []Port{{Protocol: UDP, Port: 53}}}
	pods := []Pod{{Namespace: "default", Name: "db", Labels: map[string]string{"app": "db"}, IP: netip.MustParseAddr("10.88.0.9"), Ready: true}}
	snap := Build([]Service{*svc}, pods)
	eps := snap.Endpoints["default/db"]
	if len(eps) != 1 || eps[0].Ports[""] != 53 {
		t.Fatalf("endpoints %+v, want one on port 53", eps)
	}
	if svc.Headless() {
		t.Error("a Service with a ClusterIP is not headless")
	}
}
