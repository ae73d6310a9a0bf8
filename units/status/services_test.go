package status

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/podunit/podunit/cni/service"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units/engine/enginetest"
)

// webApp is three replicas behind a LoadBalancer Service whose target
// port is named (one replica declares it on another number), a headless
// Service of one of them.
const webApp = `apiVersion: v1
kind: Service
metadata: {name: web, labels: {tier: front}}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: peers}
spec:
  clusterIP: None
  selector: {app: web, role: first}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, labels: {app: web, role: first}}
spec:
  hostname: web-0
  subdomain: peers
  containers: [{name: c, image: img:1, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec:
  containers: [{name: c, image: img:1, ports: [{name: http, containerPort: 8081}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, labels: {app: web}}
spec:
  containers: [{name: c, image: img:1, ports: [{name: http, containerPort: 8080}]}]
`

// /services and /endpointslices are the Services the sync serves in
// Kubernetes' shapes, their endpoints the pods of /pods: web-0 ready,
// web-1 ready but stopping (its unit deactivating), web-2 not ready, and
// the metrics count them.
func TestServicesAPI(t *testing.T) {
	s, m, _, _ := enginetest.NewSyncer(t)
	s.StatePath = filepath.Join(t.TempDir(), "sync.json")
	s.Services.NodeIPs = []netip.Addr{netip.MustParseAddr("192.168.1.20")}
	enginetest.Write(t, s.Sources[0].Dir, "web.yaml", webApp)
	ctx := context.Background()
	if err := enginetest.Run(ctx, s); err != nil {
		t.Fatal(err)
	}
	// other asks for the node port the sync gave web: web keeps it.
	table, err := service.ReadTable(s.Services.TablePath)
	if err != nil {
		t.Fatal(err)
	}
	webPort := table.Services[1].Ports[0].NodePort
	enginetest.Write(t, s.Sources[0].Dir, "zz-other.yaml", fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec: {type: NodePort, ports: [{port: 80, nodePort: %d}]}\n", webPort))
	enginetest.Run(ctx, s)

	stateDir := t.TempDir()
	for _, p := range []struct {
		name, ip string
		ready    bool
	}{{"web-0", "10.88.0.2", true}, {"web-1", "10.88.0.3", true}, {"web-2", "10.88.0.4", false}} {
		specs, _ := filepath.Glob(filepath.Join(s.UnitConfig.SpecDir, "default_"+p.name+"-*.json"))
		var pod corev1.Pod
		b, _ := os.ReadFile(specs[0])
		json.Unmarshal(b, &pod)
		ready := corev1.ConditionFalse
		if p.ready {
			ready = corev1.ConditionTrue
		}
		st := podshim.State{Namespace: "default", Name: p.name, UID: string(pod.UID), Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: p.ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}}}
		sb, _ := json.Marshal(st)
		enginetest.Write(t, stateDir, "default_"+p.name+".json", string(sb))
	}
	u, _ := m.Get("pod-web-1.service")
	u.ActiveState = "deactivating"
	m.Set(u)

	srv := &Server{SpecDir: s.UnitConfig.SpecDir, StateDir: stateDir, SyncState: s.StatePath, Manager: m, Runtime: fakeVersioner{},
		ServiceDir: s.Services.Dir, ServiceTable: s.Services.TablePath}
	code, body := get(t, srv, "/services")
	var list corev1.ServiceList
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || list.Kind != "ServiceList" || list.APIVersion != "v1" || len(list.Items) != 2 {
		t.Fatalf("/services: %d %v\n%s", code, err, body)
	}
	peers, web := list.Items[0], list.Items[1]
	if web.Name != "web" || web.Spec.ClusterIP == "" || len(web.Spec.ClusterIPs) != 1 || web.Spec.ClusterIPs[0] != web.Spec.ClusterIP ||
		web.Spec.Ports[0].NodePort < 30000 || web.Labels["tier"] != "front" || web.CreationTimestamp.IsZero() ||
		web.Annotations["podunit.io/manifest"] != filepath.Join(s.Sources[0].Dir, "web.yaml") || web.Kind != "Service" {
		t.Errorf("web: %+v", web)
	}
	if in := web.Status.LoadBalancer.Ingress; len(in) != 1 || in[0].IP != "192.168.1.20" {
		t.Errorf("web's ingress: %+v, want the node's address", in)
	}
	if peers.Spec.ClusterIP != "None" || len(peers.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("peers: %+v", peers)
	}
	if code, body := get(t, srv, "/services/default/web"); code != 200 || !strings.Contains(body, `"clusterIP":"`+web.Spec.ClusterIP+`"`) {
		t.Errorf("/services/default/web: %d %s", code, body)
	}
	if code, body := get(t, srv, "/services/default/other"); code != 404 || !strings.Contains(body, "Service default/other is not served (Conflict): ") ||
		!strings.Contains(body, fmt.Sprintf("node port %d/TCP of port 80/TCP is already Service default/web's", webPort)) {
		t.Errorf("/services/default/other: %d %s", code, body)
	}
	if code, body := get(t, srv, "/services/default/nope"); code != 404 || strings.TrimSpace(body) != "Service default/nope not found" {
		t.Errorf("/services/default/nope: %d %s", code, body)
	}

	code, body = get(t, srv, "/endpointslices")
	var slices discoveryv1.EndpointSliceList
	if err := json.Unmarshal([]byte(body), &slices); code != 200 || err != nil || slices.Kind != "EndpointSliceList" || slices.APIVersion != "discovery.k8s.io/v1" {
		t.Fatalf("/endpointslices: %d %v\n%s", code, err, body)
	}
	want := `peers: service-name=peers headless=true managed-by=podunit.io IPv4 ports []
  10.88.0.2 ready=true serving=true terminating=false hostname=web-0 Pod default/web-0
web: service-name=web headless=false managed-by=podunit.io IPv4 ports [http/TCP/8080]
  10.88.0.2 ready=true serving=true terminating=false hostname= Pod default/web-0
  10.88.0.4 ready=false serving=false terminating=false hostname= Pod default/web-2
web: service-name=web headless=false managed-by=podunit.io IPv4 ports [http/TCP/8081]
  10.88.0.3 ready=false serving=true terminating=true hostname= Pod default/web-1
`
	if got := renderSlices(slices.Items); got != want {
		t.Errorf("endpoint slices:\n%s\nwant\n%s", got, want)
	}
	for _, sl := range slices.Items {
		if !strings.HasPrefix(sl.Name, sl.Labels["kubernetes.io/service-name"]+"-") || len(sl.Name) != len(sl.Labels["kubernetes.io/service-name"])+6 {
			t.Errorf("slice name %q", sl.Name)
		}
		for _, ep := range sl.Endpoints {
			if ep.TargetRef.UID == "" {
				t.Errorf("%s: no pod UID", ep.Addresses[0])
			}
		}
	}

	_, metrics := get(t, srv, "/metrics")
	for _, line := range []string{`podunit_service_endpoints{namespace="default",ready="true",service="web"} 1`,
		`podunit_service_endpoints{namespace="default",ready="false",service="web"} 2`,
		`podunit_service_endpoints{namespace="default",ready="true",service="peers"} 1`} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("metrics lack %s", line)
		}
	}
}

func renderSlices(items []discoveryv1.EndpointSlice) string {
	var b strings.Builder
	for _, sl := range items {
		_, headless := sl.Labels["service.kubernetes.io/headless"]
		var ports []string
		for _, p := range sl.Ports {
			ports = append(ports, fmt.Sprintf("%s/%s/%d", *p.Name, *p.Protocol, *p.Port))
		}
		fmt.Fprintf(&b, "%s: service-name=%s headless=%t managed-by=%s %s ports %v\n", sl.Labels["kubernetes.io/service-name"], sl.Labels["kubernetes.io/service-name"],
			headless, sl.Labels["endpointslice.kubernetes.io/managed-by"], sl.AddressType, ports)
		for _, ep := range sl.Endpoints {
			host := ""
			if ep.Hostname != nil {
				host = *ep.Hostname
			}
			fmt.Fprintf(&b, "  %s ready=%t serving=%t terminating=%t hostname=%s %s %s/%s\n", strings.Join(ep.Addresses, ","), *ep.Conditions.Ready,
				*ep.Conditions.Serving, *ep.Conditions.Terminating, host, ep.TargetRef.Kind, ep.TargetRef.Namespace, ep.TargetRef.Name)
		}
	}
	return b.String()
}
