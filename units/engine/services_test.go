package engine

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/cni/service"
	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/units"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/services")

// serviceStep is one sync of a story: the manifests it finds (a file's
// content, or "" to remove it) and the node's ranges.
type serviceStep struct {
	what  string
	files map[string]string
	// ipRange, ports and dns change the node's Service network ("": as
	// before; the first step's default is a /28 and 30000-30015).
	ipRange, ports, dns string
}

// Each story plays its syncs through planServices, the record of each
// read back from its JSON as the next sync reads it from disk, and the
// plans must be exactly the golden file's: what each Service holds, what
// was given and freed, the problems, and the node's Service table
// (`go test ./units/engine -run TestServicePlans -update` rewrites them).
// In-test assertions below say what matters of each.
func TestServicePlans(t *testing.T) {
	for _, tc := range servicePlanStories {
		t.Run(tc.name, func(t *testing.T) {
			plans, text := playServices(t, tc.steps)
			golden := filepath.Join("testdata", "services", tc.name+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (-update writes it)", err)
			}
			if string(want) != text {
				t.Errorf("%s differs (-update rewrites it); got:\n%s", golden, text)
			}
			if tc.check != nil {
				tc.check(t, plans)
			}
		})
	}
}

// svc is a Service's manifest.
func svc(name, typ, extra string, ports ...string) string {
	m := fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec:\n  type: %s\n  selector: {app: %s}\n", name, typ, name)
	if len(ports) > 0 {
		m += "  ports:\n"
		for _, p := range ports {
			m += "  - " + p + "\n"
		}
	}
	return m + extra
}

// podWithPort is a pod labelled app: name whose container has port http
// (and hostPort, when not 0).
func podWithPort(name, app string, port, hostPort int) string {
	hp := ""
	if hostPort != 0 {
		hp = fmt.Sprintf(", hostPort: %d", hostPort)
	}
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s, labels: {app: %s}}\nspec:\n  containers:\n  - name: c\n    image: img:1\n    ports: [{name: http, containerPort: %d%s}]\n", name, app, port, hp)
}

type servicePlanStory struct {
	name  string
	steps []serviceStep
	check func(t *testing.T, plans []*servicePlan)
}

var servicePlanStories = []servicePlanStory{
	{
		name: "kept-across-edits",
		steps: []serviceStep{
			{what: "a ClusterIP, a NodePort of two ports, a headless and an ExternalName Service, and their pods", files: map[string]string{
				"10-web.yaml": svc("web", "ClusterIP", "", "{name: http, port: 80, targetPort: http}") + "---\n" + podWithPort("web-0", "web", 8080, 0),
				"20-db.yaml":  svc("db", "NodePort", "", "{name: mysql, port: 3306}", "{name: admin, port: 8081, protocol: UDP}"),
				"30-peers.yaml": svc("peers", "ClusterIP", "  clusterIP: None\n") + "---\n" +
					"apiVersion: v1\nkind: Pod\nmetadata: {name: peer-0, labels: {app: peers}}\nspec:\n  hostname: peer-0\n  subdomain: peers\n  containers: [{name: c, image: img:1}]\n",
				"40-ext.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {type: ExternalName, externalName: db.example.org}\n",
			}},
			{what: "web gains a port and db loses one: both keep their addresses, db its other node port", files: map[string]string{
				"10-web.yaml": svc("web", "ClusterIP", "", "{name: http, port: 80, targetPort: http}", "{name: metrics, port: 9100}") + "---\n" + podWithPort("web-0", "web", 8080, 0),
				"20-db.yaml":  svc("db", "NodePort", "", "{name: mysql, port: 3306}"),
			}},
			{what: "db becomes a ClusterIP Service: its node ports are free again", files: map[string]string{
				"20-db.yaml": svc("db", "ClusterIP", "", "{name: mysql, port: 3306}"),
			}},
			{what: "web's file is removed: web's address is free again", files: map[string]string{"10-web.yaml": ""}},
		},
		check: func(t *testing.T, plans []*servicePlan) {
			ip := func(i int, key string) string { return plans[i].Record[key].Service.Spec.ClusterIP }
			if ip(0, "default/web") != ip(1, "default/web") || ip(0, "default/db") != ip(2, "default/db") {
				t.Error("an edit changed a Service's ClusterIP")
			}
			if plans[0].Record["default/db"].Service.Spec.Ports[0].NodePort != plans[1].Record["default/db"].Service.Spec.Ports[0].NodePort {
				t.Error("an edit changed a node port")
			}
			if _, ok := plans[3].Record["default/web"]; ok || len(plans[3].Freed) != 1 {
				t.Errorf("a removed Service is still held: %v", plans[3].Freed)
			}
			if ip(0, "default/peers") != "None" || plans[0].Record["default/ext"].Service.Spec.ClusterIP != "" {
				t.Error("a headless or ExternalName Service got an address")
			}
		},
	},
	{
		name: "explicit-ask-for-a-held-address",
		steps: []serviceStep{
			{what: "a gets an address", files: map[string]string{"10-a.yaml": svc("a", "NodePort", "", "{port: 80}")}},
			{what: "b, read first, asks for a's address and node port: a keeps them, b is not served", files: map[string]string{
				"05-b.yaml": svc("b", "ClusterIP", "  clusterIP: {{ip default/a}}\n", "{port: 80}") + "---\n" + svc("c", "NodePort", "", "{port: 81, nodePort: {{nodePort default/a}}}"),
			}},
			{what: "b asks for another address, c for another port: served", files: map[string]string{
				"05-b.yaml": svc("b", "ClusterIP", "  clusterIP: 10.96.0.2\n", "{port: 80}") + "---\n" + svc("c", "NodePort", "", "{port: 81, nodePort: 30001}"),
			}},
			{what: "b then asks for a's address: refused, b keeps its last good definition", files: map[string]string{
				"05-b.yaml": svc("b", "ClusterIP", "  clusterIP: {{ip default/a}}\n", "{port: 80}") + "---\n" + svc("c", "NodePort", "", "{port: 81, nodePort: 30001}"),
			}},
		},
		check: func(t *testing.T, plans []*servicePlan) {
			if _, ok := plans[1].Record["default/b"]; ok || plans[1].Invalid != 2 {
				t.Errorf("b and c asking for what a holds: record %v, %d conflicts", slices.Sorted(maps.Keys(plans[1].Record)), plans[1].Invalid)
			}
			if plans[1].Record["default/a"].Service.Spec.ClusterIP != plans[0].Record["default/a"].Service.Spec.ClusterIP {
				t.Error("a lost its address to an explicit ask")
			}
			if got := plans[3].Record["default/b"].Service.Spec.ClusterIP; got != "10.96.0.2" {
				t.Errorf("b's last good address: %s", got)
			}
		},
	},
	{
		name: "exhausted",
		steps: []serviceStep{
			{what: "a /29 holds 6 Services' addresses, 30000-30002 three node ports: the last in read order get none", ipRange: "10.96.0.0/29", ports: "30000-30002", dns: "169.254.20.10",
				files: map[string]string{
					"10-ips.yaml": strings.Join([]string{svc("s1", "ClusterIP", "", "{port: 80}"), svc("s2", "ClusterIP", "", "{port: 80}"),
						svc("s3", "ClusterIP", "", "{port: 80}"), svc("s4", "ClusterIP", "", "{port: 80}"), svc("s5", "ClusterIP", "", "{port: 80}")}, "---\n"),
					"20-np.yaml": svc("np1", "NodePort", "", "{name: a, port: 80}", "{name: b, port: 81}") + "---\n" + svc("np2", "NodePort", "", "{name: a, port: 80}", "{name: b, port: 81}"),
				}},
			{what: "s1 is removed: np2 gets its address, and still no node port", files: map[string]string{
				"10-ips.yaml": strings.Join([]string{svc("s2", "ClusterIP", "", "{port: 80}"),
					svc("s3", "ClusterIP", "", "{port: 80}"), svc("s4", "ClusterIP", "", "{port: 80}"), svc("s5", "ClusterIP", "", "{port: 80}")}, "---\n"),
			}},
		},
		check: func(t *testing.T, plans []*servicePlan) {
			if len(plans[0].Record) != 6 || plans[0].Failed != 1 || !strings.Contains(fmt.Sprint(plans[0].Problems["default/np2"]), "20-np.yaml: Service default/np2 is not served: no address of serviceClusterIPRange 10.96.0.0/29 is free") {
				t.Errorf("the /29: %d served, %d failed, np2: %v", len(plans[0].Record), plans[0].Failed, plans[0].Problems["default/np2"])
			}
			if _, ok := plans[1].Record["default/np2"]; ok || !strings.Contains(fmt.Sprint(plans[1].Problems["default/np2"]), "no port of serviceNodePortRange 30000-30002 is free") {
				t.Errorf("np2 with an address and no node port: %v", plans[1].Problems["default/np2"])
			}
		},
	},
	{
		name: "hostport-takes-a-given-node-port",
		steps: []serviceStep{
			{what: "web gets a node port", files: map[string]string{"10-web.yaml": svc("web", "NodePort", "", "{name: http, port: 80}")}},
			{what: "a pod's hostPort asks for it: the Service's node port moves", files: map[string]string{
				"20-pod.yaml": podWithPort("proxy", "proxy", 8080, -1),
			}},
		},
		check: func(t *testing.T, plans []*servicePlan) {
			before, after := plans[0].Record["default/web"].Service.Spec.Ports[0].NodePort, plans[1].Record["default/web"].Service.Spec.Ports[0].NodePort
			if before == after || len(plans[1].Given) != 1 || !strings.Contains(plans[1].Given[0], "pod default/proxy's hostPort") {
				t.Errorf("node port %d → %d: %q", before, after, plans[1].Given)
			}
		},
	},
	{
		name: "invalid-manifest-keeps-the-last-good",
		steps: []serviceStep{
			{what: "web is served", files: map[string]string{"10-web.yaml": svc("web", "LoadBalancer", "", "{name: http, port: 80}")}},
			{what: "its file turns invalid: web is served as before", files: map[string]string{"10-web.yaml": svc("web", "LoadBalancer", "  sessionAfinity: ClientIP\n", "{name: http, port: 8080}")}},
			{what: "another Service asks for web's LoadBalancer port: web keeps it", files: map[string]string{"20-other.yaml": svc("other", "LoadBalancer", "", "{name: http, port: 80}")}},
			{what: "the file is removed: web is gone, other gets the port", files: map[string]string{"10-web.yaml": ""}},
		},
		check: func(t *testing.T, plans []*servicePlan) {
			if plans[1].Record["default/web"] == nil || plans[1].Record["default/web"].Service.Spec.Ports[0].Port != 80 {
				t.Error("web is not served on its last good definition")
			}
			if plans[2].Record["default/other"] != nil || plans[3].Record["default/other"] == nil {
				t.Error("other took the port web kept")
			}
		},
	},
	{
		name: "range-changed",
		steps: []serviceStep{
			{what: "web and dns are served", files: map[string]string{"10-web.yaml": svc("web", "NodePort", "", "{name: http, port: 80}") + "---\n" + svc("dns", "ClusterIP", "", "{port: 53, protocol: UDP}")}},
			{what: "the node's ranges change: both move into them", ipRange: "172.20.0.0/28", ports: "31000-31015"},
		},
		check: func(t *testing.T, plans []*servicePlan) {
			for _, r := range plans[1].Record {
				if !netip.MustParsePrefix("172.20.0.0/28").Contains(netip.MustParseAddr(r.Service.Spec.ClusterIP)) {
					t.Errorf("%s outside the new range", r.Service.Spec.ClusterIP)
				}
			}
		},
	},
}

// playServices plays steps and renders their plans.
func playServices(t *testing.T, steps []serviceStep) ([]*servicePlan, string) {
	t.Helper()
	dir := t.TempDir()
	record := map[string]*ServiceRecord{}
	reader := generator.Reader{ServiceClusterIPRange: netip.MustParsePrefix("10.96.0.0/28"), NodePortRange: generator.PortRange{First: 30000, Last: 30015}}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var (
		plans []*servicePlan
		b     strings.Builder
	)
	for i, st := range steps {
		if st.ipRange != "" {
			reader.ServiceClusterIPRange = netip.MustParsePrefix(st.ipRange)
		}
		if st.ports != "" {
			reader.NodePortRange, _ = generator.ParsePortRange(st.ports)
		}
		if st.dns != "" {
			reader.ClusterDNS = netip.MustParseAddr(st.dns)
		}
		for _, name := range slices.Sorted(maps.Keys(st.files)) {
			content := st.files[name]
			if content == "" {
				os.Remove(filepath.Join(dir, name))
				continue
			}
			content = fillHeld(content, record)
			if strings.Contains(content, "hostPort: -1") { // the node port web holds
				content = strings.Replace(content, "hostPort: -1", fmt.Sprintf("hostPort: %d", record["default/web"].Service.Spec.Ports[0].NodePort), 1)
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		reader.Held = holdings(record) // as the sync reads
		if len(plans) > 0 {
			reader.HeldHostPorts = hostPortsOf(plans[len(plans)-1].Table)
		}
		set, err := reader.Read(generator.Source{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		invalid := map[string]string{}
		for _, e := range set.Errors {
			for _, fe := range generator.Flatten(e) {
				var f *generator.FieldError
				if errors.As(fe, &f) {
					if _, seen := invalid[f.File]; !seen {
						invalid[f.File] = f.Error()
					}
				}
			}
		}
		in := serviceInputs{Desired: set.Services, Invalid: invalid, Record: record, Pods: set.Pods, CronJobs: set.CronJobs,
			ClusterDomain: "cluster.local", PodNetwork: []netip.Prefix{netip.MustParsePrefix("10.88.0.0/16")}, NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.1.20")}, Now: now.Add(time.Duration(i) * time.Minute)}
		in.ClusterIPs, in.NodePorts, in.ClusterDNS = reader.ServiceNetwork()
		plan := planServices(in)
		plans = append(plans, plan)
		fmt.Fprintf(&b, "== sync %d: %s\n", i+1, st.what)
		for _, e := range set.Errors {
			for _, fe := range generator.Flatten(e) {
				fmt.Fprintf(&b, "manifest error: %s\n", strings.ReplaceAll(fe.Error(), dir+"/", ""))
			}
		}
		b.WriteString(strings.ReplaceAll(renderPlan(t, plan), dir+"/", ""))
		// The next sync reads the record from its file.
		data, err := marshalServiceRecords(plan.Record)
		if err != nil {
			t.Fatal(err)
		}
		var f serviceRecordFile
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		record = f.Services
	}
	return plans, b.String()
}

// fillHeld puts what the record holds into a manifest: {{ip KEY}} and
// {{nodePort KEY}} (its first port's).
func fillHeld(content string, record map[string]*ServiceRecord) string {
	for key, r := range record {
		content = strings.ReplaceAll(content, "{{ip "+key+"}}", r.Service.Spec.ClusterIP)
		if len(r.Service.Spec.Ports) > 0 {
			content = strings.ReplaceAll(content, "{{nodePort "+key+"}}", fmt.Sprint(r.Service.Spec.Ports[0].NodePort))
		}
	}
	return content
}

// renderPlan is a plan as text: each Service held, with what it holds,
// the journal's lines, and the table.
func renderPlan(t *testing.T, plan *servicePlan) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("record:\n")
	for _, key := range slices.Sorted(maps.Keys(plan.Record)) {
		r := plan.Record[key]
		spec := &r.Service.Spec
		fmt.Fprintf(&b, "  %s from %s, created %s: %s %s", key, r.Manifest, r.Created.Format(time.RFC3339), spec.Type, orNone(spec.ClusterIP))
		for _, p := range spec.Ports {
			fmt.Fprintf(&b, ", %s", portName(p))
			if p.NodePort != 0 {
				fmt.Fprintf(&b, " node port %d", p.NodePort)
			}
		}
		b.WriteString("\n")
	}
	for _, l := range plan.Given {
		fmt.Fprintf(&b, "given: %s\n", l)
	}
	for _, l := range plan.Freed {
		fmt.Fprintf(&b, "freed: %s\n", l)
	}
	for _, key := range slices.Sorted(maps.Keys(plan.Problems)) {
		for _, p := range plan.Problems[key] {
			served := "not served"
			if p.Served {
				served = "served as its record says"
			}
			fmt.Fprintf(&b, "problem (%s, %s): %s\n", p.Reason, served, p.Message)
		}
	}
	fmt.Fprintf(&b, "conflicts %d, failed %d\n", plan.Invalid, plan.Failed)
	table, err := plan.Table.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "table:\n%s\n", table)
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// The allocator never gives the range's first or last address nor the
// resolver's, fills a range whole, and then says it cannot.
func TestAllocatorFillsTheRange(t *testing.T) {
	in := serviceInputs{ClusterIPs: netip.MustParsePrefix("10.96.0.0/28"), ClusterDNS: netip.MustParseAddr("10.96.0.10"),
		NodePorts: generator.PortRange{First: 30000, Last: 30002}}
	pl := &planner{in: in, plan: &servicePlan{}, ips: map[netip.Addr]holder{}, ports: map[nodePort]holder{}, numbers: map[int32]bool{},
		askedIPs: map[netip.Addr]bool{netip.MustParseAddr("10.96.0.5"): true}, askedPorts: map[int32]bool{}}
	var got []string
	for i := range 20 {
		a, ok := pl.allocateIP(fmt.Sprint("default/s", i))
		if !ok {
			break
		}
		pl.ips[a] = holder{}
		got = append(got, a.String())
	}
	slices.Sort(got)
	// 16 addresses, less the network's, the broadcast, clusterDNS and
	// the one a manifest asks for.
	if strings.Join(got, " ") != "10.96.0.1 10.96.0.11 10.96.0.12 10.96.0.13 10.96.0.14 10.96.0.2 10.96.0.3 10.96.0.4 10.96.0.6 10.96.0.7 10.96.0.8 10.96.0.9" {
		t.Errorf("given: %v", got)
	}
	// A large range: dynamic addresses come from above the lower band,
	// which explicit asks keep.
	pl.in.ClusterIPs = netip.MustParsePrefix("10.96.0.0/12")
	for i := range 200 {
		a, _ := pl.allocateIP(fmt.Sprint("default/s", i))
		if netip.MustParsePrefix("10.96.0.0/24").Contains(a) {
			t.Fatalf("%s in the lower band", a)
		}
	}
	if a, b := rangeBand(1<<20, 16, 256), rangeBand(2768, 32, 128); a != 256 || b != 86 {
		t.Errorf("bands %d, %d; the kube-apiserver's are 256 and 86", a, b)
	}
}

// A sync serves the Services of the manifests: their record survives a
// reboot (a new sync with /run emptied finds the same addresses), the
// table is rewritten only when it changes, and the sync's record for the
// status API has the Services' problems.
func TestSyncServicesAcrossReboot(t *testing.T) {
	s, _, _, out := newSyncer(t)
	run := t.TempDir()
	s.Services = ServiceConfig{Dir: filepath.Join(t.TempDir(), "services"), TablePath: filepath.Join(run, "services", "services.json"), ClusterDomain: "cluster.local"}
	s.StatePath = filepath.Join(run, "sync.json")
	manifests := s.Sources[0].Dir
	writeFile(t, manifests, "web.yaml", svc("web", "NodePort", "", "{name: http, port: 80, targetPort: http}")+"---\n"+podWithPort("web", "web", 8080, 0))
	if err := runSync(context.Background(), s); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	table, err := service.ReadTable(s.Services.TablePath)
	if err != nil {
		t.Fatal(err)
	}
	if len(table.Services) != 1 || !table.Services[0].ClusterIP.IsValid() || table.Services[0].Ports[0].NodePort == 0 ||
		len(table.Pods) != 1 || table.Pods[0].Ports[0].Name != "http" || table.ClusterDNS.String() != "10.96.0.10" {
		t.Fatalf("table %+v", table)
	}
	web := table.Services[0]
	if !strings.Contains(out.String(), "Service default/web from "+filepath.Join(manifests, "web.yaml")+": ClusterIP "+web.ClusterIP.String()) {
		t.Errorf("the journal does not say what web got:\n%s", out)
	}
	tableInfo, _ := os.Stat(s.Services.TablePath)
	recordInfo, _ := os.Stat(ServiceRecordPath(s.Services.Dir))

	// The same manifests: nothing is written.
	if err := runSync(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(s.Services.TablePath); !os.SameFile(tableInfo, fi) {
		t.Error("an unchanged table was rewritten")
	}
	if fi, _ := os.Stat(ServiceRecordPath(s.Services.Dir)); !os.SameFile(recordInfo, fi) {
		t.Error("an unchanged record was rewritten")
	}

	// A reboot: /run is empty, a new syncer finds the record.
	os.RemoveAll(run)
	s2, _, _, out2 := newSyncer(t)
	s2.Sources, s2.Services = s.Sources, s.Services
	s2.StatePath = s.StatePath
	if err := runSync(context.Background(), s2); err != nil {
		t.Fatal(err)
	}
	after, err := service.ReadTable(s.Services.TablePath)
	if err != nil {
		t.Fatal(err)
	}
	if after.Services[0].ClusterIP != web.ClusterIP || after.Services[0].Ports[0].NodePort != web.Ports[0].NodePort {
		t.Errorf("after a reboot: %+v, before %+v", after.Services[0], web)
	}
	if strings.Contains(out2.String(), "Service default/web from") {
		t.Errorf("after a reboot the journal says web got something new:\n%s", out2)
	}

	// A Service asking for web's address is a conflict, which the sync's
	// exit status and its record for the status API say.
	writeFile(t, manifests, "other.yaml", svc("other", "ClusterIP", "  clusterIP: "+web.ClusterIP.String()+"\n", "{port: 80}"))
	if err := runSync(context.Background(), s2); !errors.Is(err, errInvalid) {
		t.Errorf("a conflict: %v", err)
	}
	st, err := ReadState(s2.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	want := "other.yaml: Service default/other is not served: clusterIP " + web.ClusterIP.String() + " is already Service default/web's (" + filepath.Join(manifests, "web.yaml") + "), which keeps it"
	if p := st.ServiceProblems["default/other"]; len(p) != 1 || !strings.HasSuffix(p[0].Message, want) || p[0].Reason != ReasonConflict || p[0].Served {
		t.Errorf("other's problems: %v, want %q", p, want)
	}

	// Off: nothing is touched, the sync fails.
	s2.Services.Off = errors.New("config.yaml: serviceClusterIPRange: overlaps")
	before, _ := os.ReadFile(s.Services.TablePath)
	os.Remove(filepath.Join(manifests, "web.yaml"))
	if err := runSync(context.Background(), s2); !errors.Is(err, errFailed) {
		t.Errorf("a sync with Services off: %v", err)
	}
	if now, _ := os.ReadFile(s.Services.TablePath); string(now) != string(before) {
		t.Error("Services off rewrote the table")
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The table describes the pods that run: a pod whose manifest turned
// invalid runs on its last good spec, and stays in the table as that spec
// says, with its Service.
func TestServiceTableKeepsLastGoodPods(t *testing.T) {
	s, _, _, out := newSyncer(t)
	s.Services = ServiceConfig{Dir: t.TempDir(), TablePath: filepath.Join(t.TempDir(), "services.json")}
	manifests := s.Sources[0].Dir
	writeFile(t, manifests, "web.yaml", svc("web", "ClusterIP", "", "{name: http, port: 80, targetPort: http}")+"---\n"+podWithPort("web", "web", 8080, 0))
	if err := runSync(context.Background(), s); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	writeFile(t, manifests, "web.yaml", svc("web", "ClusterIP", "", "{name: http, port: 80, targetPort: http}")+"---\n"+podWithPort("web", "web", 8080, 0)+"  restartPolcy: Never\n")
	if err := runSync(context.Background(), s); !errors.Is(err, errInvalid) {
		t.Fatalf("an invalid manifest: %v", err)
	}
	table, err := service.ReadTable(s.Services.TablePath)
	if err != nil {
		t.Fatal(err)
	}
	if len(table.Services) != 1 || len(table.Pods) != 1 || table.Pods[0].Name != "web" || table.Pods[0].Labels["app"] != "web" || table.Pods[0].Ports[0].Port != 8080 {
		t.Errorf("table with web's manifest invalid: %+v", table)
	}
	if !strings.Contains(out.String(), "Service default/web keeps its last good definition until the file is fixed or removed") {
		t.Errorf("the journal does not say web is kept:\n%s", out)
	}
	os.Remove(filepath.Join(manifests, "web.yaml"))
	runSync(context.Background(), s)
	if table, _ = service.ReadTable(s.Services.TablePath); len(table.Services) != 0 || len(table.Pods) != 0 {
		t.Errorf("table with web removed: %+v", table)
	}
}

// Two records holding the same address (only a hand edit of the record
// makes that): the first Service in read order keeps it, the other gets
// another.
func TestRecordContestFirstInReadOrderKeeps(t *testing.T) {
	plans, _ := playServices(t, []serviceStep{{what: "a and b", files: map[string]string{
		"10-b.yaml": svc("b", "NodePort", "", "{port: 80}"),
		"20-a.yaml": svc("a", "NodePort", "", "{port: 80}"),
	}}})
	rec := plans[0].Record
	rec["default/a"].Service.Spec.ClusterIP = rec["default/b"].Service.Spec.ClusterIP
	rec["default/a"].Service.Spec.ClusterIPs = rec["default/b"].Service.Spec.ClusterIPs
	rec["default/a"].Service.Spec.Ports[0].NodePort = rec["default/b"].Service.Spec.Ports[0].NodePort
	contested, port := rec["default/b"].Service.Spec.ClusterIP, rec["default/b"].Service.Spec.Ports[0].NodePort

	dir := t.TempDir()
	writeFile(t, dir, "10-b.yaml", svc("b", "NodePort", "", "{port: 80}"))
	writeFile(t, dir, "20-a.yaml", svc("a", "NodePort", "", "{port: 80}"))
	reader := generator.Reader{ServiceClusterIPRange: netip.MustParsePrefix("10.96.0.0/28"), NodePortRange: generator.PortRange{First: 30000, Last: 30015}}
	set, err := reader.Read(generator.Source{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	in := serviceInputs{Desired: set.Services, Record: rec, Now: time.Now()}
	in.ClusterIPs, in.NodePorts, in.ClusterDNS = reader.ServiceNetwork()
	plan := planServices(in)
	a, b := plan.Record["default/a"].Service.Spec, plan.Record["default/b"].Service.Spec
	if b.ClusterIP != contested || b.Ports[0].NodePort != port || a.ClusterIP == contested || a.Ports[0].NodePort == port {
		t.Errorf("b (read first) %s:%d, a %s:%d; contested %s:%d", b.ClusterIP, b.Ports[0].NodePort, a.ClusterIP, a.Ports[0].NodePort, contested, port)
	}
	if len(plan.Given) != 1 || !strings.Contains(plan.Given[0], "Service default/a") || !strings.Contains(plan.Given[0], "is Service default/b's") {
		t.Errorf("given: %q", plan.Given)
	}
}

// A manifest added that is read before a running Service's and asks for
// its ClusterIP and node port: the running Service keeps both, its file is
// not the invalid one (an edit of it still applies), and the error is the
// newcomer's, naming both files. The generator reads with the record
// (Reader.Held), so it and the plan agree on who keeps what.
func TestNewcomerReadFirstDoesNotTakeAHeldAddress(t *testing.T) {
	s, _, _, out := newSyncer(t)
	s.Services = ServiceConfig{Dir: t.TempDir(), TablePath: filepath.Join(t.TempDir(), "services.json")}
	s.StatePath = filepath.Join(t.TempDir(), "sync.json")
	manifests := s.Sources[0].Dir
	writeFile(t, manifests, "20-web.yaml", svc("web", "NodePort", "  clusterIP: 10.96.0.50\n", "{port: 80, nodePort: 30080}"))
	if err := runSync(context.Background(), s); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	writeFile(t, manifests, "10-new.yaml", svc("new", "NodePort", "  clusterIP: 10.96.0.50\n", "{port: 80, nodePort: 30080}"))
	for range 2 { // and the same at the next sync
		out.Reset()
		if err := runSync(context.Background(), s); !errors.Is(err, errInvalid) {
			t.Fatalf("a conflict: %v\n%s", err, out)
		}
		table, err := service.ReadTable(s.Services.TablePath)
		if err != nil {
			t.Fatal(err)
		}
		if len(table.Services) != 1 || table.Services[0].Name != "web" || table.Services[0].ClusterIP.String() != "10.96.0.50" || table.Services[0].Ports[0].NodePort != 30080 {
			t.Errorf("table %+v: want web alone, on 10.96.0.50 and node port 30080", table.Services)
		}
		st, err := ReadState(s.StatePath)
		if err != nil {
			t.Fatal(err)
		}
		if p := st.ServiceProblems["default/web"]; len(p) != 0 {
			t.Errorf("the running Service has problems: %v", p)
		}
		want := filepath.Join(manifests, "10-new.yaml") + ":9: spec.clusterIP: 10.96.0.50 is already Service default/web's ClusterIP (" + filepath.Join(manifests, "20-web.yaml") + ":9), which keeps it: this Service is not served"
		if !strings.Contains(out.String(), want) || strings.Contains(out.String(), "20-web.yaml is invalid") {
			t.Errorf("the journal:\n%s\nwant the newcomer's error %q, and nothing of web's file invalid", out, want)
		}
	}
}

// A LoadBalancer Service added in a file read before a running pod's asks
// for the pod's hostPort: the pod keeps it and runs on (the sync reads the
// running pods' hostPorts from the node's Service table), and the error
// is the newcomer's, naming both files.
func TestNewcomerReadFirstDoesNotTakeARunningPodsHostPort(t *testing.T) {
	s, m, _, out := newSyncer(t)
	s.Services = ServiceConfig{Dir: t.TempDir(), TablePath: filepath.Join(t.TempDir(), "services.json")}
	manifests := s.Sources[0].Dir
	writeFile(t, manifests, "20-proxy.yaml", podWithPort("proxy", "proxy", 80, 8080))
	if err := runSync(context.Background(), s); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	unit := units.ServiceName("default", "proxy")
	if !m.Has(unit) {
		t.Fatalf("%s not started", unit)
	}
	writeFile(t, manifests, "10-web.yaml", svc("web", "LoadBalancer", "", "{port: 8080, targetPort: 80}"))
	out.Reset()
	if err := runSync(context.Background(), s); !errors.Is(err, errInvalid) {
		t.Fatalf("a conflict: %v\n%s", err, out)
	}
	if u, ok := m.Get(unit); !ok || u.ActiveState != "active" {
		t.Errorf("the running pod's unit: %+v, want it active still\n%s", u, out)
	}
	table, err := service.ReadTable(s.Services.TablePath)
	if err != nil {
		t.Fatal(err)
	}
	if len(table.Services) != 0 || len(table.Pods) != 1 {
		t.Errorf("table: Services %+v, pods %+v; want no Service and the pod", table.Services, table.Pods)
	}
	want := filepath.Join(manifests, "10-web.yaml") + ":8: spec.ports[0].port: 8080/TCP on the node's addresses is already pod default/proxy's hostPort (" + filepath.Join(manifests, "20-proxy.yaml") + ":8), which keeps it: this Service is not served"
	if !strings.Contains(out.String(), want) || strings.Contains(out.String(), "20-proxy.yaml is invalid") {
		t.Errorf("the journal:\n%s\nwant %q, and nothing of the pod's file invalid", out, want)
	}
}
