package generator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/cni/service"
)

// Each file of testdata/services is read as a manifest source on its own
// and gives exactly its golden: every Service with its model (what the
// node serves) and its defaulted v1 spec, the pods, notices and errors
// (`go test ./generator -run TestServiceGolden -update` rewrites them).
func TestServiceGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/services/*.yaml")
	if len(files) < 6 {
		t.Fatalf("%d fixtures", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			set, err := ReadSources(Source{Dir: path})
			if err != nil {
				t.Fatal(err)
			}
			got := renderServiceSet(t, set)
			golden := strings.TrimSuffix(path, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := string(mustRead(t, golden)); got != want {
				t.Errorf("%s differs (-update rewrites it):\n%s", golden, got)
			}
		})
	}
}

func renderServiceSet(t *testing.T, set *Set) string {
	t.Helper()
	var b bytes.Buffer
	var pods []string
	for _, p := range set.Pods {
		pods = append(pods, p.Key())
	}
	fmt.Fprintf(&b, "pods: %s\n", strings.Join(pods, " "))
	for _, s := range set.Services {
		model, err := json.Marshal(s.Model())
		if err != nil {
			t.Fatal(err)
		}
		spec, err := json.Marshal(s.Spec.Spec)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "Service %s (line %d): %s\n  model %s\n  spec %s\n", s.Key(), s.lines.line, s.Summary(), model, spec)
	}
	for _, n := range set.Notices {
		fmt.Fprintln(&b, n)
	}
	for _, e := range set.Errors {
		for _, fe := range Flatten(e) {
			fmt.Fprintf(&b, "error: %v\n", fe)
		}
	}
	return b.String()
}

// What matters of the fixtures, asserted in code as well as in the goldens:
// the API server's defaults, the ports as the node serves them, headless and
// ExternalName Services, and the selector notice.
func TestServiceFixtures(t *testing.T) {
	read := func(name string) *Set {
		t.Helper()
		set, err := ReadSources(Source{Dir: filepath.Join("testdata/services", name)})
		if err != nil {
			t.Fatal(err)
		}
		if len(set.Errors) > 0 {
			t.Fatalf("%s: %v", name, set.Errors)
		}
		return set
	}
	byName := func(set *Set) map[string]service.Service {
		out := map[string]service.Service{}
		for _, s := range set.Services {
			out[s.Name()] = s.Model()
		}
		return out
	}

	guestbook := read("guestbook.yaml")
	if len(guestbook.Pods) != 6 || len(guestbook.Notices) != 0 {
		t.Errorf("guestbook: %d pods, notices %v", len(guestbook.Pods), guestbook.Notices)
	}
	svcs := byName(guestbook)
	leader, frontend := svcs["redis-leader"], svcs["frontend"]
	if leader.Type != service.ClusterIP || leader.ClusterIP.IsValid() || len(leader.Ports) != 1 ||
		leader.Ports[0] != (service.Port{Protocol: service.TCP, Port: 6379, TargetPort: 6379}) {
		t.Errorf("redis-leader: %+v", leader)
	}
	if f := svcs["redis-follower"].Ports[0]; f.TargetPort != 6379 {
		t.Errorf("redis-follower's targetPort defaults to its port: %+v", f)
	}
	if frontend.Type != service.LoadBalancer || frontend.Ports[0].NodePort != 0 || frontend.Selector["tier"] != "frontend" {
		t.Errorf("frontend: %+v", frontend)
	}
	for _, s := range guestbook.Services {
		if want := s.Name() == "frontend"; s.NeedsNodePorts() != want || !s.NeedsClusterIP() {
			t.Errorf("%s: NeedsNodePorts %v NeedsClusterIP %v", s.Name(), s.NeedsNodePorts(), s.NeedsClusterIP())
		}
	}

	wordpress := read("wordpress.yaml")
	if db, m := wordpress.Services[0], wordpress.Services[0].Model(); db.Name() != "wordpress-mysql" || !db.Headless() || db.NeedsClusterIP() || !m.Headless() || m.Ports[0].TargetPort != 3306 {
		t.Errorf("wordpress-mysql: %+v", db.Model())
	}
	if web := wordpress.Services[1]; web.Name() != "wordpress" || web.Model().Type != service.LoadBalancer || web.Headless() || !web.NeedsClusterIP() || !web.NeedsNodePorts() {
		t.Errorf("wordpress: %+v", web.Model())
	}

	lb := read("nginx-loadbalancer.yaml")
	if len(lb.Notices) != 0 || len(lb.Services) != 1 {
		t.Fatalf("what the API server wrote gives notices: %v", lb.Notices)
	}
	nginx := lb.Services[0]
	if m := nginx.Model(); m.ClusterIP != netip.MustParseAddr("10.96.120.15") || m.Ports[0].NodePort != 31380 || nginx.NeedsClusterIP() {
		t.Errorf("nginx: %+v", m)
	}

	sts := read("statefulset-headless.yaml")
	if web := byName(sts)["nginx"]; !web.Headless() || web.Ports[0].Name != "web" || len(sts.Pods) != 3 {
		t.Errorf("nginx (headless): %+v, %d pods", web, len(sts.Pods))
	}

	ext := read("externalname.yaml")
	if m := ext.Services[0].Model(); m.Key() != "prod/my-service" || m.Type != service.ExternalName || m.ExternalName != "my.database.example.com" ||
		m.Headless() || ext.Services[0].NeedsClusterIP() || ext.Services[0].Spec.Spec.IPFamilyPolicy != nil {
		t.Errorf("ExternalName: %+v", m)
	}

	sel := read("selector-nothing.yaml")
	svcs = byName(sel)
	fe := svcs["frontend"]
	if !fe.SessionAffinity || fe.AffinityTimeout != 3*time.Hour || fe.Ports[0].TargetPortName != "http" || fe.Ports[1].Protocol != service.UDP ||
		fe.ExternalIPs[0] != netip.MustParseAddr("198.51.100.20") {
		t.Errorf("frontend: %+v", fe)
	}
	var fields []string
	for _, n := range sel.Notices {
		fields = append(fields, n.Field)
	}
	if got, want := strings.Join(fields, " "), "spec.loadBalancerIP spec.loadBalancerClass spec.externalTrafficPolicy spec.healthCheckNodePort spec.trafficDistribution spec.ipFamilyPolicy spec.ipFamilies[1] spec.selector"; got != want {
		t.Errorf("notices on %s, want %s", got, want)
	}
	if s := sel.Services[0]; s.Name() != "typo" || len(s.Notices) != 8 || s.Spec.Spec.IPFamilies[0] != "IPv4" || len(s.Spec.Spec.IPFamilies) != 1 {
		t.Errorf("the Service's own notices and families: %v %v", s.Notices, s.Spec.Spec.IPFamilies)
	}
}

// A Service's selector is matched against the pods of every file and
// source, so a Service in a file of its own has no notice when a workload
// elsewhere has its labels; strict mode does not make the selector's notice
// an error, as it depends on other files.
func TestServiceSelectorAcrossFiles(t *testing.T) {
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n"
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: web}}\nspec: {containers: [{name: c, image: i}]}\n"
	set := readDir(t, map[string]string{"a-svc.yaml": svc, "b-pod.yaml": pod})
	if len(set.Services) != 1 || len(set.Notices) != 0 || len(set.Errors) != 0 {
		t.Errorf("Service with its pods elsewhere: %v %v", set.Notices, set.Errors)
	}

	dir := t.TempDir()
	writeFile(t, dir, "svc.yaml", svc)
	set, err := Reader{Strict: true}.Read(Source{Dir: dir})
	if err != nil || len(set.Services) != 1 || len(set.Errors) != 0 || len(set.Notices) != 1 ||
		set.Notices[0].String() != dir+`/svc.yaml:4: notice: spec.selector: no pod of the manifests has the labels app=web in namespace "default": the Service has no endpoints until one does` {
		t.Errorf("alone, strict: %v %v %v", err, set.Errors, set.Notices)
	}

	// validate: the file given, its pods in the configured sources.
	src := t.TempDir()
	writeFile(t, src, "pod.yaml", pod)
	set, err = Reader{}.Check([]File{{Path: "svc.yaml", Data: []byte(svc)}}, Source{Dir: src})
	if err != nil || len(set.Services) != 1 || len(set.Notices) != 0 {
		t.Errorf("checked beside the sources: %v %v", err, set.Notices)
	}
}

// What the generator sees across the whole set: a Service name, a
// ClusterIP, a port on the node's addresses (node port, LoadBalancer port,
// hostPort) defined twice is an error naming both files; the first in read
// order keeps it, whichever kind it is, and the other is not served (or
// not run). Node ports of different protocols do not clash.
func TestServiceConflicts(t *testing.T) {
	svc := func(name, spec string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + "}\nspec: " + spec + "\n"
	}
	hostPod := func(name string, port int, proto string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  containers:\n  - name: c\n    image: i\n    ports: [{containerPort: 80, hostPort: %d, protocol: %s}]\n", name, port, proto)
	}
	for _, tc := range []struct {
		name          string
		files         map[string]string
		services      string // names of the Services kept
		pods          string
		errs          []string // relative to the directory
		notices       int
		orderReversed bool
		// held: what Services held after the last sync (Reader.Held),
		// hostPorts the running pods' (Reader.HeldHostPorts)
		held      map[string]ServiceHolding
		hostPorts map[string][]HeldPort
	}{{
		name:     "same name",
		files:    map[string]string{"a.yaml": svc("web", "{selector: {x: y}, ports: [{port: 80}]}"), "b.yaml": svc("web", "{selector: {x: y}, ports: [{port: 81}]}")},
		services: "web",
		errs:     []string{"b.yaml:3: metadata.name: Service default/web is already defined in a.yaml, which keeps it; this definition is not served"},
		notices:  1,
	}, {
		name:     "same name, other namespace",
		files:    map[string]string{"a.yaml": svc("web", "{ports: [{port: 80}]}"), "b.yaml": strings.Replace(svc("web", "{ports: [{port: 80}]}"), "name: web", "name: web, namespace: shop", 1)},
		services: "web web",
	}, {
		name: "same clusterIP",
		files: map[string]string{
			"a.yaml": svc("one", "{clusterIP: 10.96.0.50, ports: [{port: 80}]}"),
			"b.yaml": svc("two", "\n  clusterIP: 10.96.0.50\n  ports: [{port: 80}]"),
		},
		services: "one",
		errs:     []string{"b.yaml:5: spec.clusterIP: 10.96.0.50 is already Service default/one's ClusterIP (a.yaml:4), which keeps it: this Service is not served"},
	}, {
		name: "same node port, and one of another protocol",
		files: map[string]string{
			"a.yaml": svc("one", "{type: NodePort, ports: [{port: 80, nodePort: 30080}]}"),
			"b.yaml": svc("two", "{type: NodePort, ports: [{port: 80, nodePort: 30080, protocol: UDP}]}"),
			"c.yaml": svc("three", "{type: LoadBalancer, ports: [{port: 80, nodePort: 30080}]}"),
		},
		services: "one two",
		errs:     []string{"c.yaml:4: spec.ports[0].nodePort: 30080/TCP on the node's addresses is already Service default/one's node port (a.yaml:4), which keeps it: this Service is not served"},
	}, {
		name: "two LoadBalancers on one port",
		files: map[string]string{
			"a.yaml": svc("web", "{type: LoadBalancer, ports: [{port: 443}]}"),
			"b.yaml": svc("api", "{type: LoadBalancer, ports: [{port: 443}]}"),
			"c.yaml": svc("internal", "{ports: [{port: 443}]}"),
		},
		services: "web internal",
		errs:     []string{"b.yaml:4: spec.ports[0].port: 443/TCP on the node's addresses is already Service default/web's LoadBalancer port (a.yaml:4), which keeps it: this Service is not served"},
	}, {
		name: "hostPort first",
		files: map[string]string{
			"a.yaml": hostPod("proxy", 80, "TCP"),
			"b.yaml": svc("web", "{type: LoadBalancer, ports: [{port: 80}]}"),
			"c.yaml": svc("dns", "{type: LoadBalancer, ports: [{port: 80, protocol: UDP}]}"),
		},
		services: "dns",
		pods:     "proxy",
		errs:     []string{"b.yaml:4: spec.ports[0].port: 80/TCP on the node's addresses is already pod default/proxy's hostPort (a.yaml:8), which keeps it: this Service is not served"},
	}, {
		name: "Service first",
		files: map[string]string{
			"a.yaml": svc("web", "{type: NodePort, ports: [{port: 80, nodePort: 30080}]}"),
			"b.yaml": hostPod("proxy", 30080, "TCP"),
			"c.yaml": hostPod("other", 30080, "UDP"),
		},
		services: "web",
		pods:     "other",
		errs:     []string{"b.yaml:8: spec.containers[0].ports[0].hostPort: 30080/TCP on the node's addresses is already Service default/web's node port (a.yaml:4), which keeps it: this pod is not run"},
	}, {
		name: "a Deployment's replicas: one error for the template",
		files: map[string]string{
			"a.yaml": svc("web", "{type: LoadBalancer, ports: [{port: 80}]}"),
			"b.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: proxy}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: proxy}}\n" +
				"  template:\n    metadata: {labels: {app: proxy}}\n    spec:\n      containers:\n      - name: c\n        image: i\n        ports: [{containerPort: 8080, hostPort: 80}]\n",
		},
		services: "web",
		errs:     []string{"b.yaml:13: spec.template.spec.containers[0].ports[0].hostPort: 80/TCP on the node's addresses is already Service default/web's LoadBalancer port (a.yaml:4), which keeps it: this pod is not run"},
	}, {
		name: "in one file, document order",
		files: map[string]string{
			"a.yaml": svc("web", "{type: LoadBalancer, ports: [{port: 8080}]}") + "---\n" + hostPod("proxy", 8080, "TCP"),
		},
		services: "web",
		errs:     []string{"a.yaml:13: spec.containers[0].ports[0].hostPort: 8080/TCP on the node's addresses is already Service default/web's LoadBalancer port (a.yaml:4), which keeps it: this pod is not run"},
	}, {
		// A manifest added that sorts before a running Service's asks
		// for its ClusterIP and its node port: the running one keeps
		// them, and its file is not the invalid one.
		name: "held from the last sync, the newcomer first in read order",
		files: map[string]string{
			"a.yaml": svc("new", "{clusterIP: 10.96.0.50, ports: [{port: 80}]}") + "---\n" + svc("np", "{type: NodePort, ports: [{port: 80, nodePort: 30080}]}"),
			"b.yaml": svc("running", "{type: NodePort, clusterIP: 10.96.0.50, ports: [{port: 80, nodePort: 30080}]}"),
		},
		held:     map[string]ServiceHolding{"default/running": {ClusterIP: netip.MustParseAddr("10.96.0.50"), Ports: []HeldPort{{30080, "TCP"}}}},
		services: "running",
		errs: []string{
			"a.yaml:4: spec.clusterIP: 10.96.0.50 is already Service default/running's ClusterIP (b.yaml:4), which keeps it: this Service is not served",
			"a.yaml:9: spec.ports[0].nodePort: 30080/TCP on the node's addresses is already Service default/running's node port (b.yaml:4), which keeps it: this Service is not served",
		},
	}, {
		// What a Service held and its manifest no longer asks for is not
		// kept for it; what another Service held is no claim of this one.
		name: "held, no longer asked for",
		files: map[string]string{
			"a.yaml": svc("new", "{clusterIP: 10.96.0.50, ports: [{port: 80}]}"),
			"b.yaml": svc("running", "{clusterIP: 10.96.0.51, ports: [{port: 80}]}"),
		},
		held:     map[string]ServiceHolding{"default/running": {ClusterIP: netip.MustParseAddr("10.96.0.50")}, "default/gone": {ClusterIP: netip.MustParseAddr("10.96.0.51")}},
		services: "new running",
	}, {
		// A running Service holds its explicit node port against a pod
		// added in a file read before it.
		name: "held against a newcomer's hostPort",
		files: map[string]string{
			"a.yaml": hostPod("proxy", 30080, "TCP"),
			"b.yaml": svc("web", "{type: NodePort, ports: [{port: 80, nodePort: 30080}]}"),
		},
		held:     map[string]ServiceHolding{"default/web": {Ports: []HeldPort{{30080, "TCP"}}}},
		services: "web",
		errs:     []string{"a.yaml:8: spec.containers[0].ports[0].hostPort: 30080/TCP on the node's addresses is already Service default/web's node port (b.yaml:4), which keeps it: this pod is not run"},
	}, {
		// A Service added in a file read before a running pod's asks for
		// the pod's hostPort: the pod keeps it and runs on.
		name: "a running pod's hostPort against a newcomer read first",
		files: map[string]string{
			"a.yaml": svc("web", "{type: LoadBalancer, ports: [{port: 8080}]}"),
			"b.yaml": hostPod("proxy", 8080, "TCP"),
		},
		hostPorts: map[string][]HeldPort{"default/proxy": {{8080, "TCP"}}},
		pods:      "proxy",
		errs:      []string{"a.yaml:4: spec.ports[0].port: 8080/TCP on the node's addresses is already pod default/proxy's hostPort (b.yaml:8), which keeps it: this Service is not served"},
	}, {
		// What the pod held is not what it asks for now: the read order.
		name: "a running pod asking for another hostPort",
		files: map[string]string{
			"a.yaml": svc("web", "{type: LoadBalancer, ports: [{port: 8080}]}"),
			"b.yaml": hostPod("proxy", 8080, "TCP"),
		},
		hostPorts: map[string][]HeldPort{"default/proxy": {{9090, "TCP"}}},
		services:  "web",
		errs:      []string{"b.yaml:8: spec.containers[0].ports[0].hostPort: 8080/TCP on the node's addresses is already Service default/web's LoadBalancer port (a.yaml:4), which keeps it: this pod is not run"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, dir, name, content)
			}
			for range 2 { // the same answer every time
				set, err := Reader{Held: tc.held, HeldHostPorts: tc.hostPorts}.Read(Source{Dir: dir})
				if err != nil {
					t.Fatal(err)
				}
				var names, pods, errs []string
				for _, s := range set.Services {
					names = append(names, s.Name())
				}
				for _, p := range set.Pods {
					pods = append(pods, p.Name())
				}
				for _, e := range set.Errors {
					for _, fe := range Flatten(e) {
						errs = append(errs, strings.ReplaceAll(fe.Error(), dir+"/", ""))
					}
				}
				if strings.Join(names, " ") != tc.services || strings.Join(pods, " ") != tc.pods {
					t.Errorf("Services %v, pods %v; want %s and %s", names, pods, tc.services, tc.pods)
				}
				if strings.Join(errs, "\n") != strings.Join(tc.errs, "\n") {
					t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tc.errs, "\n"))
				}
				if len(set.Notices) != tc.notices {
					t.Errorf("notices %v", set.Notices)
				}
			}
		})
	}
}

// A Service's explicit clusterIP and node ports are checked against the
// node's ranges (the defaults, or those the Reader is given): outside, or
// the range's first, last or resolver's address, the whole file is invalid,
// with the file, line and field.
func TestServiceRanges(t *testing.T) {
	svc := func(spec string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n" + spec
	}
	custom := Reader{ServiceClusterIPRange: netip.MustParsePrefix("172.20.0.0/16"), NodePortRange: PortRange{First: 8000, Last: 8999}}
	for _, tc := range []struct {
		name   string
		reader Reader
		spec   string
		err    string
	}{
		{"default range", Reader{}, "  clusterIP: 10.111.0.1\n  ports: [{port: 80}]\n", ""},
		{"outside the default range", Reader{}, "  clusterIP: 10.112.0.1\n  ports: [{port: 80}]\n",
			"x.yaml:5: spec.clusterIP: 10.112.0.1: outside the node's ClusterIP range 10.96.0.0/12 (serviceClusterIPRange in config.yaml)"},
		{"the network address", Reader{}, "  clusterIP: 10.96.0.0\n  ports: [{port: 80}]\n",
			"x.yaml:5: spec.clusterIP: 10.96.0.0: the first and the last address of 10.96.0.0/12 are not given to Services"},
		{"the broadcast address", Reader{}, "  clusterIP: 10.111.255.255\n  ports: [{port: 80}]\n",
			"x.yaml:5: spec.clusterIP: 10.111.255.255: the first and the last address of 10.96.0.0/12 are not given to Services"},
		{"the resolver's", Reader{}, "  clusterIP: 10.96.0.10\n  ports: [{port: 53, protocol: UDP}]\n",
			"x.yaml:5: spec.clusterIP: 10.96.0.10: the node's resolver has this address (clusterDNS): pods reach cluster DNS there"},
		{"another resolver address", Reader{ClusterDNS: netip.MustParseAddr("10.96.0.53")}, "  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n", ""},
		{"custom range", custom, "  clusterIP: 172.20.1.1\n  type: NodePort\n  ports: [{port: 80, nodePort: 8080}]\n", ""},
		{"custom range's resolver", custom, "  clusterIP: 172.20.0.10\n  ports: [{port: 80}]\n",
			"x.yaml:5: spec.clusterIP: 172.20.0.10: the node's resolver has this address (clusterDNS): pods reach cluster DNS there"},
		{"an IPv6 range (which config.yaml should refuse)", Reader{ServiceClusterIPRange: netip.MustParsePrefix("fd00::/108")}, "  clusterIP: 10.96.0.1\n  ports: [{port: 80}]\n",
			"x.yaml:5: spec.clusterIP: 10.96.0.1: outside the node's ClusterIP range fd00::/108 (serviceClusterIPRange in config.yaml)"},
		{"node port outside the default range", Reader{}, "  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 8080\n",
			"x.yaml:8: spec.ports[0].nodePort: 8080: outside the node port range 30000-32767"},
		{"node port outside a custom range", custom, "  type: LoadBalancer\n  ports:\n  - port: 80\n    nodePort: 30080\n",
			"x.yaml:8: spec.ports[0].nodePort: 30080: outside the node port range 8000-8999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "x.yaml", svc(tc.spec)+"---\n"+strings.ReplaceAll(plainPod, "%s", "web"))
			set, err := tc.reader.Read(Source{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			var errs []string
			for _, e := range set.Errors {
				for _, fe := range Flatten(e) {
					errs = append(errs, strings.ReplaceAll(fe.Error(), dir+"/", ""))
				}
			}
			if got := strings.Join(errs, "\n"); got != tc.err {
				t.Errorf("errors %q, want %q", got, tc.err)
			}
			if valid := tc.err == ""; valid != (len(set.Services) == 1) || valid != (len(set.Pods) == 1) {
				t.Errorf("valid %v: %d Services, %d pods (an invalid file runs nothing)", valid, len(set.Services), len(set.Pods))
			}
		})
	}
}

// A Service of 10,000 ports is refused at once with one error, not one a
// port.
func TestServiceTooManyPorts(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Service\nmetadata: {name: many}\nspec:\n  ports:\n")
	for i := 1; i <= 10000; i++ {
		fmt.Fprintf(&b, "  - {port: %d}\n", i)
	}
	start := time.Now()
	_, err := DecodeManifest("many.yaml", []byte(b.String()))
	if errs := Flatten(err); len(errs) != 1 || errs[0].Error() != "many.yaml:5: spec.ports: 10000 ports: at most 100 (an EndpointSlice, which carries a Service's ports and endpoints, holds at most 100)" {
		t.Errorf("%v", err)
	}
	t.Logf("decoded in %s", time.Since(start))
}

func TestPortRange(t *testing.T) {
	for in, want := range map[string]string{"30000-32767": "30000-32767", " 8000 - 8999 ": "8000-8999", "80": "80-80"} {
		r, err := ParsePortRange(in)
		if err != nil || r.String() != want {
			t.Errorf("%q: %v %v, want %s", in, r, err, want)
		}
	}
	for _, bad := range []string{"", "a-b", "0-100", "100-1", "1-65536", "30000+2768"} {
		if r, err := ParsePortRange(bad); err == nil {
			t.Errorf("%q: %v, want an error", bad, r)
		}
	}
	if r := DefaultNodePortRange; r.Size() != 2768 || !r.Contains(30000) || !r.Contains(32767) || r.Contains(32768) {
		t.Errorf("default range %v", r)
	}
	if a := DefaultClusterDNS(DefaultServiceClusterIPRange); a != netip.MustParseAddr("10.96.0.10") {
		t.Errorf("clusterDNS %s", a)
	}
}

// A Service's name is a DNS-1123 label, as Kubernetes v1.37 validates it
// (RelaxedServiceNameValidation, GA): a leading digit is a name, a dot or a
// trailing "-" is not.
func TestServiceNameIsDNS1123Label(t *testing.T) {
	for name, valid := range map[string]bool{"1st-redis": true, "redis": true, "7": true, "redis-": false, "redis.leader": false, "Redis": false} {
		t.Run(name, func(t *testing.T) {
			data := []byte("apiVersion: v1\nkind: Service\nmetadata: {name: \"" + name + "\"}\nspec: {ports: [{port: 6379}]}\n")
			set, err := Reader{}.Check([]File{{Path: "svc.yaml", Data: data}})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(set.Errors) == 0 && len(set.Services) == 1; got != valid {
				t.Errorf("valid = %v, want %v (errors %v)", got, valid, set.Errors)
			}
		})
	}
}
