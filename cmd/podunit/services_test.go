package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/podunit/podunit/units/engine/enginetest"
	"github.com/podunit/podunit/units/status"
)

func testService(name string, typ corev1.ServiceType, ip string, ports ...corev1.ServicePort) corev1.Service {
	return corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: metav1.NewTime(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)),
			Annotations: map[string]string{"podunit.io/manifest": "/etc/podunit/manifests/" + name + ".yaml"}},
		Spec: corev1.ServiceSpec{Type: typ, ClusterIP: ip, Ports: ports, Selector: map[string]string{"app": name, "tier": "x"}},
	}
}

// The table reads as kubectl's: each type's CLUSTER-IP and EXTERNAL-IP,
// ports with their node ports, the selector with -o wide.
func TestPrintServices(t *testing.T) {
	lb := testService("frontend", corev1.ServiceTypeLoadBalancer, "10.96.120.7", corev1.ServicePort{Port: 80, NodePort: 31178, Protocol: corev1.ProtocolTCP})
	lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.168.1.20"}}
	pending := testService("pending", corev1.ServiceTypeLoadBalancer, "10.96.120.8", corev1.ServicePort{Port: 443, NodePort: 30443, Protocol: corev1.ProtocolTCP})
	db := testService("db", corev1.ServiceTypeClusterIP, "10.96.200.1", corev1.ServicePort{Name: "mysql", Port: 3306, Protocol: corev1.ProtocolTCP},
		corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
	db.Spec.ExternalIPs = []string{"203.0.113.9"}
	headless := testService("peers", corev1.ServiceTypeClusterIP, "None")
	ext := testService("ext", corev1.ServiceTypeExternalName, "")
	ext.Spec.ExternalName, ext.Spec.Selector = "db.example.org", nil
	list := []corev1.Service{lb, pending, db, headless, ext}
	now := time.Date(2026, 11, 23, 14, 30, 0, 0, time.UTC)
	var out bytes.Buffer
	if err := printServices(&out, list, "wide", false, "default", now); err != nil {
		t.Fatal(err)
	}
	want := `NAME       TYPE           CLUSTER-IP    EXTERNAL-IP      PORT(S)           AGE   SELECTOR
db         ClusterIP      10.96.200.1   203.0.113.9      3306/TCP,53/UDP   2h    app=db,tier=x
ext        ExternalName   <none>        db.example.org   <none>            2h    <none>
frontend   LoadBalancer   10.96.120.7   192.168.1.20     80:31178/TCP      2h    app=frontend,tier=x
peers      ClusterIP      None          <none>           <none>            2h    app=peers,tier=x
pending    LoadBalancer   10.96.120.8   <pending>        443:30443/TCP     2h    app=pending,tier=x
`
	if out.String() != want {
		t.Errorf("get services -o wide:\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	printServices(&out, list[:1], "", true, "default", now)
	if want := "NAMESPACE   NAME       TYPE           CLUSTER-IP    EXTERNAL-IP    PORT(S)        AGE\ndefault     frontend   LoadBalancer   10.96.120.7   192.168.1.20   80:31178/TCP   2h\n"; out.String() != want {
		t.Errorf("get services -A:\n%q\nwant\n%q", out.String(), want)
	}
	out.Reset()
	printServices(&out, list[:2], "name", false, "default", now)
	if out.String() != "service/frontend\nservice/pending\n" {
		t.Errorf("-o name: %q", out.String())
	}
	out.Reset()
	printServices(&out, nil, "", false, "shop", now)
	if out.String() != "No resources found in shop namespace.\n" {
		t.Errorf("none: %q", out.String())
	}
	out.Reset()
	printServices(&out, list[:1], "yaml", false, "default", now)
	var back corev1.ServiceList
	if err := yaml.Unmarshal(out.Bytes(), &back); err != nil || back.Kind != "ServiceList" || back.APIVersion != "v1" || back.Items[0].Status.LoadBalancer.Ingress[0].IP != "192.168.1.20" {
		t.Errorf("-o yaml: %v\n%s", err, out.String())
	}
}

// describe service reads as kubectl's, with the endpoints not ready too
// and the problem of a Service served as its last good definition.
func TestDescribeService(t *testing.T) {
	svc := testService("web", corev1.ServiceTypeNodePort, "10.96.9.9",
		corev1.ServicePort{Name: "http", Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")},
		corev1.ServicePort{Name: "metrics", Port: 9100, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9100)})
	svc.Spec.ClusterIPs = []string{"10.96.9.9"}
	svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	svc.Labels = map[string]string{"tier": "front"}
	svc.Status.Conditions = []metav1.Condition{{Type: status.ConditionServiceUpToDate, Status: "False", Reason: "InvalidManifest", Message: "web.yaml is invalid: …"}}
	ep := func(ip string, ready bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
	}
	port := func(name string, n int32) discoveryv1.EndpointPort {
		return discoveryv1.EndpointPort{Name: &name, Port: &n}
	}
	slices := []discoveryv1.EndpointSlice{
		{Ports: []discoveryv1.EndpointPort{port("http", 8080), port("metrics", 9100)}, Endpoints: []discoveryv1.Endpoint{ep("10.88.0.2", true), ep("10.88.0.4", false)}},
		{Ports: []discoveryv1.EndpointPort{port("metrics", 9100)}, Endpoints: []discoveryv1.Endpoint{ep("10.88.0.5", true)}},
	}
	now := time.Date(2026, 11, 23, 12, 10, 0, 0, time.UTC)
	var out bytes.Buffer
	if err := describeService(&out, &svc, slices, []event{{Time: now.Add(-5 * time.Minute), Source: "podunit-sync", Message: "Service default/web from web.yaml: ClusterIP 10.96.9.9"}}, now); err != nil {
		t.Fatal(err)
	}
	want := `Name:                web
Namespace:           default
Manifest:            /etc/podunit/manifests/web.yaml
Labels:              tier=front
Annotations:         <none>
Selector:            app=web,tier=x
Type:                NodePort
IP Families:         <none>
IP:                  10.96.9.9
IPs:                 10.96.9.9
Port:                http  80/TCP
TargetPort:          http/TCP
NodePort:            http  30080/TCP
Endpoints:           10.88.0.2:8080
Not Ready Endpoints: 10.88.0.4:8080
Port:                metrics  9100/TCP
TargetPort:          9100/TCP
Endpoints:           10.88.0.2:9100,10.88.0.5:9100
Not Ready Endpoints: 10.88.0.4:9100
Session Affinity:    None
Problem:             InvalidManifest: web.yaml is invalid: …
Events:
  Age  From          Message
  5m   podunit-sync  Service default/web from web.yaml: ClusterIP 10.96.9.9
`
	if got := out.String(); got != want {
		t.Errorf("describe service:\n%s\nwant\n%s", got, want)
	}
	if addressList([]string{"a", "b", "c", "d", "e"}) != "a,b,c + 2 more..." {
		t.Errorf("a long list: %s", addressList([]string{"a", "b", "c", "d", "e"}))
	}
	for msg, want := range map[string]bool{
		"Service default/web from /etc/web.yaml: ClusterIP 10.96.0.3":  true,
		"/etc/web.yaml: Service default/web: clusterIP x is taken":     true,
		"Service default/web2 from /etc/web.yaml: ClusterIP 10.96.0.4": false,
		"clusterIP is already Service default/web's (/etc/web.yaml)":   true,
		"Service default/webby is gone; Service default/web":           true,
	} {
		if mentionsService(msg, "default/web") != want {
			t.Errorf("%q mentions default/web: %t", msg, !want)
		}
	}
}

// get services and describe service ask the status API on its socket,
// which serves what a sync leaves: a Service that is not served is said
// why, by both.
func TestServicesFromTheStatusAPI(t *testing.T) {
	s, m, _, _ := enginetest.NewSyncer(t)
	s.StatePath = filepath.Join(t.TempDir(), "sync.json")
	s.Services.NodeIPs = []netip.Addr{netip.MustParseAddr("192.168.1.20")}
	enginetest.Write(t, s.Sources[0].Dir, "web.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}\n")
	ctx := context.Background()
	enginetest.Run(ctx, s)
	var first corev1.Service
	srv := &status.Server{SpecDir: s.UnitConfig.SpecDir, StateDir: t.TempDir(), SyncState: s.StatePath, Manager: m,
		ServiceDir: s.Services.Dir, ServiceTable: s.Services.TablePath}
	socket := filepath.Join(t.TempDir(), "status.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	run := func(args ...string) (string, error) {
		var cmd = newGetCommand()
		if args[0] == "describe" {
			cmd = newDescribeCommand()
		}
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append(args[1:], "--socket", socket))
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := run("get", "services", "-o", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var list corev1.ServiceList
	json.Unmarshal([]byte(out), &list)
	if len(list.Items) != 1 {
		t.Fatalf("get services -o json:\n%s", out)
	}
	first = list.Items[0]
	enginetest.Write(t, s.Sources[0].Dir, "other.yaml", fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec: {clusterIP: %s, ports: [{port: 80}]}\n", first.Spec.ClusterIP))
	enginetest.Run(ctx, s)
	out, err = run("get", "svc")
	if err != nil || !strings.Contains(out, "web    LoadBalancer   "+first.Spec.ClusterIP+"   192.168.1.20") || strings.Contains(out, "other") {
		t.Errorf("get svc: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"get", "services", "other"}, {"describe", "service", "other"}} {
		out, err = run(args...)
		if err == nil || !strings.Contains(err.Error(), "Service default/other is not served (Conflict): ") || !strings.Contains(err.Error(), "clusterIP "+first.Spec.ClusterIP+" is already Service default/web's") {
			t.Errorf("%v: %v", args, err)
		}
	}
	out, err = run("describe", "svc", "web")
	if err != nil || !hasField(out, "LoadBalancer Ingress", "192.168.1.20") || !hasField(out, "Endpoints", "<none>") || !hasField(out, "NodePort", "<unset>  3") {
		t.Errorf("describe svc web: %v\n%s", err, out)
	}
}

// hasField tells whether describe's output has a line "name: value…".
func hasField(out, name, value string) bool {
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name && strings.HasPrefix(strings.TrimSpace(v), value) {
			return true
		}
	}
	return false
}
