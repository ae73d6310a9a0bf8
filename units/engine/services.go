package engine

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podunit/podunit/cni/service"
	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/atomicfile"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
)

// DefaultServiceDir holds the Services' record (ServiceRecordPath): the
// addresses and ports each Service holds, kept across reboots and power
// cuts.
const DefaultServiceDir = "/var/lib/podunit/services"

// ServiceRecordPath is the record's file in dir.
func ServiceRecordPath(dir string) string { return filepath.Join(dir, "services.json") }

// ServiceConfig is how a sync serves Services: where it keeps what each
// holds and writes the node's Service table. The ranges are the Reader's
// (generator.Reader.ServiceNetwork).
type ServiceConfig struct {
	// Dir holds the record (DefaultServiceDir); "": Services are not
	// reconciled, and neither the record nor the table is written.
	Dir string
	// TablePath is the node's Service table (service.DefaultTablePath).
	TablePath string
	// ClusterDomain is the Services' DNS domain, written into the table
	// ("": service.DefaultClusterDomain); PodNetwork the subnets of the
	// pods' network, when known.
	ClusterDomain string
	PodNetwork    []netip.Prefix
	// NodeIPs are the node's addresses, for the table.
	NodeIPs []netip.Addr
	// Off says why no Service can be served (config.yaml's range overlaps
	// the pods' network): each sync reports it as a failure and leaves the
	// record and the table as they are.
	Off error
}

// ServiceProblem is why a Service is not served as its manifest says.
type ServiceProblem struct {
	// Reason is ReasonInvalidManifest, ReasonConflict or
	// ReasonRangeExhausted.
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Served: the Service is served all the same, as its record says
	// (its last good definition); else it is not served at all.
	Served bool `json:"served,omitempty"`
}

// The reasons of ServiceProblem.
const (
	// ReasonInvalidManifest: the Service's manifest has errors.
	ReasonInvalidManifest = "InvalidManifest"
	// ReasonConflict: the manifest asks for an address or a port that
	// another Service or a pod holds.
	ReasonConflict = "Conflict"
	// ReasonRangeExhausted: no address or node port of the node's ranges
	// is free.
	ReasonRangeExhausted = "RangeExhausted"
)

// ServiceRecord is one Service as the sync last served it, in the record:
// the manifest it came from, when podunit first served it, and the
// defaulted v1 Service with the ClusterIP and node ports it was given. A
// Service keeps what its record holds until its manifest is gone: while
// its manifest is invalid, it is served as its record says.
type ServiceRecord struct {
	Manifest string          `json:"manifest"`
	Created  time.Time       `json:"created"`
	Service  *corev1.Service `json:"service"`
}

// serviceRecordFile is the record's JSON.
type serviceRecordFile struct {
	Services map[string]*ServiceRecord `json:"services"`
}

// ReadServiceRecords reads the record in dir: the Services served, by
// namespace/name. No record is an empty one.
func ReadServiceRecords(dir string) (map[string]*ServiceRecord, error) {
	b, err := os.ReadFile(ServiceRecordPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]*ServiceRecord{}, nil
	}
	if err != nil {
		return nil, err
	}
	var f serviceRecordFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("Services' record %s: %w", ServiceRecordPath(dir), err)
	}
	if f.Services == nil {
		f.Services = map[string]*ServiceRecord{}
	}
	for key, r := range f.Services {
		if r == nil || r.Service == nil {
			return nil, fmt.Errorf("Services' record %s: %s has no Service", ServiceRecordPath(dir), key)
		}
	}
	return f.Services, nil
}

func marshalServiceRecords(records map[string]*ServiceRecord) ([]byte, error) {
	b, err := json.MarshalIndent(serviceRecordFile{Services: records}, "", " ") // map keys sorted
	return append(b, '\n'), err
}

// syncServices is the Services' reconciler: it reads the Services the
// manifests want (set) and the record of what each holds, plans which are
// served with which ClusterIP and node ports (planServices), and applies
// the plan: the record (fsync'ed: addresses survive a power cut) and the
// node's Service table, each written only when it changed. It never waits
// on anything: the rules and the resolver follow the table on their own.
// desired are the pod units the sync wants: their pods are the ones the
// table describes for the Services' endpoints.
func (s *Syncer) syncServices(set *generator.Set, desired []*units.Unit) (invalid, failed int) {
	cfg := s.Services
	s.serviceProblems = nil
	if cfg.Dir == "" {
		return 0, 0
	}
	if cfg.Off != nil {
		s.Report.Errorf("no Service is served: %v", cfg.Off)
		return 0, 1
	}
	record, err := ReadServiceRecords(cfg.Dir)
	if err != nil {
		// Only a hand edit breaks it (it is replaced atomically and
		// fsync'ed): put it aside and start over; the hashing allocator
		// gives most Services their addresses back.
		bad := ServiceRecordPath(cfg.Dir) + ".bad"
		os.Rename(ServiceRecordPath(cfg.Dir), bad)
		s.Report.Errorf("%v: moved to %s; Services get their addresses anew", err, bad)
		record = map[string]*ServiceRecord{}
	}
	in := serviceInputs{
		Desired: set.Services, Invalid: s.invalid, Record: record,
		Pods: s.desiredPods(set, desired), CronJobs: set.CronJobs,
		ClusterDomain: cmp.Or(cfg.ClusterDomain, service.DefaultClusterDomain), PodNetwork: cfg.PodNetwork, NodeIPs: cfg.NodeIPs,
		Now: s.clock().UTC().Truncate(time.Second),
	}
	in.ClusterIPs, in.NodePorts, in.ClusterDNS = s.Reader.ServiceNetwork()
	plan := planServices(in)

	for _, line := range plan.Freed {
		s.Report.Infof("%s", line)
	}
	for _, line := range plan.Given {
		s.Report.Infof("%s", line)
	}
	for _, key := range slices.Sorted(maps.Keys(plan.Problems)) {
		for _, p := range plan.Problems[key] {
			s.Report.Errorf("%s", p.Message)
		}
	}
	s.serviceProblems = plan.Problems

	b, err := marshalServiceRecords(plan.Record)
	if err == nil {
		err = writeIfChanged(ServiceRecordPath(cfg.Dir), b, true)
	}
	if err != nil {
		s.Report.Errorf("record the Services' addresses (they may change after a reboot): %v", err)
		failed++
	}
	if b, err = plan.Table.Marshal(); err == nil {
		err = writeIfChanged(cmp.Or(cfg.TablePath, service.DefaultTablePath), b, false)
	}
	if err != nil {
		s.Report.Errorf("write the node's Service table (the rules and the resolver keep the last one): %v", err)
		failed++
	}
	return plan.Invalid, failed + plan.Failed
}

// heldByServices is what each Service held after the last sync, from the
// record, for the manifests' reading (generator.Reader.Held): a Service
// asking again for what it holds keeps it whatever the read order, so that
// the generator and the plan agree on who keeps a contested address or
// port. No record (Services off, or one that cannot be read): nil.
func (s *Syncer) heldByServices() map[string]generator.ServiceHolding {
	if s.Services.Dir == "" || s.Services.Off != nil {
		return nil
	}
	record, err := ReadServiceRecords(s.Services.Dir)
	if err != nil {
		return nil // syncServices reports it
	}
	return holdings(record)
}

// hostPortsHeld are the hostPorts of the pods the last sync ran, by
// namespace/name, from the node's Service table (generator.Reader.
// HeldHostPorts): a running pod keeps its hostPort against a Service
// added in a file read before its own. No table (none written yet, or
// after a reboot: it is in /run): nil, the read order decides.
func (s *Syncer) hostPortsHeld() map[string][]generator.HeldPort {
	if s.Services.Dir == "" || s.Services.Off != nil {
		return nil
	}
	t, err := service.ReadTable(cmp.Or(s.Services.TablePath, service.DefaultTablePath))
	if err != nil {
		return nil
	}
	return hostPortsOf(t)
}

// hostPortsOf are the hostPorts of the table's pods, by namespace/name.
func hostPortsOf(t *service.Table) map[string][]generator.HeldPort {
	out := map[string][]generator.HeldPort{}
	for _, p := range t.Pods {
		for _, port := range p.Ports {
			if port.HostPort != 0 {
				out[p.Key()] = append(out[p.Key()], generator.HeldPort{Port: port.HostPort, Protocol: corev1.Protocol(port.Protocol)})
			}
		}
	}
	return out
}

// holdings is what each recorded Service holds: its ClusterIP, its node
// ports and a LoadBalancer's ports on the node's addresses.
func holdings(record map[string]*ServiceRecord) map[string]generator.ServiceHolding {
	out := make(map[string]generator.ServiceHolding, len(record))
	for key, rec := range record {
		ip, nodePorts, lbPorts := held(rec.Service)
		h := generator.ServiceHolding{ClusterIP: ip}
		for _, np := range append(nodePorts, lbPorts...) {
			h.Ports = append(h.Ports, generator.HeldPort{Port: np.port, Protocol: np.proto})
		}
		out[key] = h
	}
	return out
}

// writeIfChanged replaces path with b unless it holds b already; sync: on
// disk when it returns.
func writeIfChanged(path string, b []byte, sync bool) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if sync {
		return atomicfile.WriteSync(path, b, 0o644)
	}
	return atomicfile.Write(path, b, 0o644)
}

// desiredPods are the pods of the desired units: the manifest's pod, or
// the spec the unit runs when that is another generation (a pod kept on
// its last good spec, or rolled back).
func (s *Syncer) desiredPods(set *generator.Set, desired []*units.Unit) []*generator.Pod {
	byKey := make(map[string]*generator.Pod, len(set.Pods))
	for _, p := range set.Pods {
		byKey[p.Key()] = p
	}
	out := make([]*generator.Pod, 0, len(desired))
	for _, u := range desired {
		p := byKey[u.Namespace+"/"+u.PodName]
		if p == nil || p.Hash != u.ConfigHash {
			if spec, err := generator.FromSpec(podspec.ReadSpec(generator.SpecPath(s.UnitConfig, u.Namespace, u.PodName, u.ConfigHash))); err == nil {
				p = spec
			}
		}
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// serviceInputs are what planServices decides from.
type serviceInputs struct {
	// The node's Service network.
	ClusterIPs    netip.Prefix
	NodePorts     generator.PortRange
	ClusterDNS    netip.Addr
	ClusterDomain string
	PodNetwork    []netip.Prefix
	NodeIPs       []netip.Addr
	// Desired are the manifests' Services, in read order.
	Desired []*generator.Service
	// Invalid are the manifest files with errors: a recorded Service of
	// one that the manifests no longer give keeps its record.
	Invalid map[string]string
	// Record is what each Service held after the last sync.
	Record map[string]*ServiceRecord
	// Pods are the desired pods (the table describes them; their hostPorts
	// are theirs), CronJobs the CronJobs' templates (their runs' hostPorts).
	Pods, CronJobs []*generator.Pod
	// Now is when a Service first served is created.
	Now time.Time
}

// servicePlan is what the Services' reconciler does: the record to keep,
// the table to write, and what to tell.
type servicePlan struct {
	// Record holds every Service served, with its addresses and ports.
	Record map[string]*ServiceRecord
	Table  *service.Table
	// Given says, a line each, what Services got that they did not hold
	// before; Freed what Services gone held.
	Given, Freed []string
	// Problems are each Service's errors, by namespace/name.
	Problems map[string][]ServiceProblem
	// Invalid counts the conflicts (a manifest asks for what another
	// Service holds), Failed the Services an exhausted range left out.
	Invalid, Failed int
}

// planServices decides which Services the node serves and with what,
// as a pure function of its inputs:
//
//   - A Service keeps what its record holds: its ClusterIP and node ports
//     stay across edits, syncs and reboots, and are freed when its
//     manifest is gone. While its manifest is invalid, it is served as its
//     record says (its last good definition), as a pod keeps its last good
//     spec.
//   - A Service that needs a ClusterIP (one that is not headless nor an
//     ExternalName, whose manifest names none) gets a free address of the
//     range: never its first or last address, never clusterDNS, never one
//     that any Service's manifest asks for. Each port of a NodePort or
//     LoadBalancer Service that names no nodePort gets a free port of the
//     node port range: never one that a Service's manifest or a pod's
//     hostPort asks for, nor a LoadBalancer's port. Free values are picked
//     as the kube-apiserver picks them, from the upper part of the range
//     first, leaving the lower band to explicit asks, at a place given by
//     a hash of the Service's name: the same Service tends to get the same
//     address on every node.
//   - Contests: what a Service holds from an earlier sync it keeps, as in
//     Kubernetes (the first to have it); a manifest asking for it is
//     refused with an error naming both (the Service keeps its last good
//     definition if it has one, else it is not served). Between Services
//     that hold nothing yet, the first in read order wins (the generator
//     settles those between manifests). A pod's hostPort takes precedence
//     over a node port the sync gave, which moves. An exhausted range is an
//     error naming the file and the Service; the others are served.
func planServices(in serviceInputs) *servicePlan {
	pl := &planner{in: in, plan: &servicePlan{Record: map[string]*ServiceRecord{}, Problems: map[string][]ServiceProblem{}},
		ips: map[netip.Addr]holder{}, ports: map[nodePort]holder{}, numbers: map[int32]bool{},
		askedIPs: map[netip.Addr]bool{}, askedPorts: map[int32]bool{}}
	pl.reserveHostPorts()
	cands := pl.candidates()
	pl.reserveRecords(cands)
	for _, c := range cands {
		pl.serve(c)
	}
	for _, key := range slices.Sorted(maps.Keys(in.Record)) {
		if _, kept := pl.plan.Record[key]; !kept {
			pl.plan.Freed = append(pl.plan.Freed, freedLine(key, in.Record[key]))
		}
	}
	pl.plan.Table = pl.table()
	return pl.plan
}

// holder is who holds an address or a port of the node.
type holder struct {
	service string // namespace/name; "" for a pod
	what    string // "Service default/web's", "pod default/x's hostPort"
	file    string
}

func (h holder) String() string { return fmt.Sprintf("%s (%s)", h.what, h.file) }

// nodePort is a port on the node's addresses.
type nodePort struct {
	port  int32
	proto corev1.Protocol
}

func (p nodePort) String() string { return fmt.Sprintf("%d/%s", p.port, p.proto) }

// candidate is a Service that may be served: a manifest's, or one kept
// on its record because its manifest is invalid.
type candidate struct {
	key, file string
	spec      *corev1.Service
	rec       *ServiceRecord
	// invalid is the error of the manifest of a Service served as its
	// record says; "" for a manifest's Service.
	invalid string
}

type planner struct {
	in   serviceInputs
	plan *servicePlan
	// Who holds what: addresses, ports by protocol, and port numbers of
	// any protocol (the allocator gives none of those).
	ips     map[netip.Addr]holder
	ports   map[nodePort]holder
	numbers map[int32]bool
	// What the manifests ask for: the allocator gives none of it.
	askedIPs   map[netip.Addr]bool
	askedPorts map[int32]bool
}

// reserveHostPorts gives the pods' hostPorts to their pods.
func (pl *planner) reserveHostPorts() {
	for _, p := range append(slices.Clone(pl.in.Pods), pl.in.CronJobs...) {
		spec := &p.Spec.Spec
		for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			for _, port := range c.Ports {
				if port.HostPort == 0 {
					continue
				}
				np := nodePort{port.HostPort, cmp.Or(port.Protocol, corev1.ProtocolTCP)}
				if _, taken := pl.ports[np]; !taken {
					pl.ports[np] = holder{what: "pod " + p.Key() + "'s hostPort", file: p.Source}
				}
				pl.numbers[port.HostPort] = true
			}
		}
	}
}

// candidates are the manifests' Services in read order, then those kept
// on their records (their manifest invalid), by name.
func (pl *planner) candidates() []*candidate {
	var out []*candidate
	wanted := map[string]bool{}
	for _, s := range pl.in.Desired {
		wanted[s.Key()] = true
		out = append(out, &candidate{key: s.Key(), file: s.Source, spec: s.Spec.DeepCopy(), rec: pl.in.Record[s.Key()]})
		spec := &s.Spec.Spec
		if a, err := netip.ParseAddr(spec.ClusterIP); err == nil {
			pl.askedIPs[a] = true
		}
		for _, p := range spec.Ports {
			if p.NodePort != 0 {
				pl.askedPorts[p.NodePort] = true
			}
			if spec.Type == corev1.ServiceTypeLoadBalancer {
				pl.askedPorts[p.Port] = true
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(pl.in.Record)) {
		rec := pl.in.Record[key]
		if msg, bad := pl.in.Invalid[rec.Manifest]; bad && !wanted[key] {
			out = append(out, &candidate{key: key, file: rec.Manifest, spec: rec.Service.DeepCopy(), rec: rec, invalid: msg})
		}
	}
	return out
}

// reserveRecords gives each candidate what its record holds (in read
// order: of two records holding the same, which only a hand edit makes,
// the first keeps it). What a pod's hostPort asks for stays the pod's.
func (pl *planner) reserveRecords(cands []*candidate) {
	for _, c := range cands {
		if c.rec == nil {
			continue
		}
		h := holder{service: c.key, what: "Service " + c.key + "'s", file: c.rec.Manifest}
		ip, ports, lb := held(c.rec.Service)
		if ip.IsValid() {
			if _, taken := pl.ips[ip]; !taken {
				pl.ips[ip] = h
			}
		}
		for _, np := range append(ports, lb...) {
			if _, taken := pl.ports[np]; !taken {
				pl.ports[np] = h
				pl.numbers[np.port] = true
			}
		}
	}
}

// held is what a Service holds: its ClusterIP, its node ports, and a
// LoadBalancer's ports on the node's addresses.
func held(svc *corev1.Service) (ip netip.Addr, nodePorts, lbPorts []nodePort) {
	spec := &svc.Spec
	if a, err := netip.ParseAddr(spec.ClusterIP); err == nil {
		ip = a
	}
	for _, p := range spec.Ports {
		if p.NodePort != 0 {
			nodePorts = append(nodePorts, nodePort{p.NodePort, p.Protocol})
		}
		if spec.Type == corev1.ServiceTypeLoadBalancer && p.Port != p.NodePort {
			lbPorts = append(lbPorts, nodePort{p.Port, p.Protocol})
		}
	}
	return ip, nodePorts, lbPorts
}

// serve gives candidate c what it asks for and what it needs, or falls
// back to its record (its last good definition), or leaves it out, with
// the problem said.
func (pl *planner) serve(c *candidate) {
	if c.invalid != "" {
		pl.problem(c.key, ReasonInvalidManifest, true, "%s is invalid: Service %s keeps its last good definition until the file is fixed or removed (%s)", c.file, c.key, c.invalid)
		pl.assign(c)
		return
	}
	a, conflict, exhausted := pl.try(c, c.spec, false)
	if conflict == "" && exhausted == "" {
		pl.commit(c, c.spec, a, c.file)
		return
	}
	why, reason := conflict, ReasonConflict
	if conflict != "" {
		pl.plan.Invalid++
	} else {
		why, reason = exhausted, ReasonRangeExhausted
		pl.plan.Failed++
	}
	if c.rec == nil {
		pl.problem(c.key, reason, false, "%s: Service %s is not served: %s", c.file, c.key, why)
		return
	}
	pl.problem(c.key, reason, true, "%s: Service %s: %s; it keeps its last good definition (that of the last sync) until this is fixed", c.file, c.key, why)
	pl.assign(&candidate{key: c.key, file: c.rec.Manifest, rec: c.rec})
}

// assign serves c as its record says, giving it new values where the
// recorded ones cannot be kept.
func (pl *planner) assign(c *candidate) {
	spec := c.rec.Service.DeepCopy()
	a, conflict, exhausted := pl.try(c, spec, true)
	if why := cmp.Or(conflict, exhausted); why != "" {
		reason := ReasonConflict
		if conflict == "" {
			reason = ReasonRangeExhausted
		}
		pl.dropProblems(c.key)
		pl.problem(c.key, reason, false, "%s: Service %s is not served: %s", c.file, c.key, why)
		pl.plan.Failed++
		return
	}
	pl.commit(c, spec, a, c.rec.Manifest)
}

// assignment is what a Service is given: its ClusterIP and each port's
// node port, and how each came (for the journal).
type assignment struct {
	ip        netip.Addr
	nodePorts []int32
	notes     []string // why a recorded value moved
}

// try works out what spec gets, without taking anything: explicit values
// (the manifest's; with fromRecord, only a LoadBalancer's ports) must be
// free or c's own, recorded values are kept where they are c's and
// usable, the rest is allocated. conflict or exhausted says why spec
// cannot be served.
func (pl *planner) try(c *candidate, spec *corev1.Service, fromRecord bool) (a assignment, conflict, exhausted string) {
	s := &spec.Spec
	gs := &generator.Service{Spec: spec}
	recIP, recPorts := netip.Addr{}, map[string]int32{}
	if c.rec != nil {
		rs := &c.rec.Service.Spec
		if ip, err := netip.ParseAddr(rs.ClusterIP); err == nil {
			recIP = ip
		}
		for _, p := range rs.Ports {
			if p.NodePort != 0 {
				recPorts[p.Name] = p.NodePort
			}
		}
	}
	mine := func(h holder, taken bool) bool { return !taken || h.service == c.key }

	// The ClusterIP.
	switch ip, err := netip.ParseAddr(s.ClusterIP); {
	case s.Type == corev1.ServiceTypeExternalName || s.ClusterIP == corev1.ClusterIPNone:
	case err == nil && !fromRecord:
		if h, taken := pl.ips[ip]; !mine(h, taken) {
			return a, fmt.Sprintf("clusterIP %s is already %s, which keeps it", ip, h), ""
		}
		a.ip = ip
	default:
		if fromRecord {
			recIP = ip
		}
		if h, taken := pl.ips[recIP]; recIP.IsValid() && mine(h, taken) && pl.usableIP(recIP) {
			a.ip = recIP
			break
		}
		if recIP.IsValid() {
			a.notes = append(a.notes, fmt.Sprintf("ClusterIP %s %s", recIP, pl.whyNotIP(recIP, c.key)))
		}
		var ok bool
		if a.ip, ok = pl.allocateIP(c.key); !ok {
			return a, "", fmt.Sprintf("no address of serviceClusterIPRange %s is free for its ClusterIP; remove a Service or give config.yaml a larger range", pl.in.ClusterIPs)
		}
	}

	// The node ports, and a LoadBalancer's ports on the node's addresses.
	given := map[nodePort]bool{} // to this Service's ports already
	numbers := map[int32]bool{}
	for _, p := range s.Ports {
		np := nodePort{p.NodePort, p.Protocol}
		switch {
		case p.NodePort != 0 && !fromRecord:
			if h, taken := pl.ports[np]; !mine(h, taken) {
				return a, fmt.Sprintf("node port %s of %s is already %s, which keeps it", np, portName(p), h), ""
			}
		case p.NodePort == 0 && !gs.NeedsNodePorts():
		default:
			rec := recPorts[p.Name]
			if fromRecord {
				rec = p.NodePort
			}
			np = nodePort{rec, p.Protocol}
			if h, taken := pl.ports[np]; rec != 0 && mine(h, taken) && pl.in.NodePorts.Contains(rec) && !given[np] {
				break
			}
			if rec != 0 {
				a.notes = append(a.notes, fmt.Sprintf("node port %s of %s %s", np, portName(p), pl.whyNotPort(np, c.key)))
			}
			port, ok := pl.allocatePort(c.key+"/"+p.Name, numbers)
			if !ok {
				return a, "", fmt.Sprintf("no port of serviceNodePortRange %s is free for the node port of %s; remove a Service or give config.yaml a larger range", pl.in.NodePorts, portName(p))
			}
			np.port = port
		}
		if np.port != 0 {
			given[np], numbers[np.port] = true, true
		}
		a.nodePorts = append(a.nodePorts, np.port)
		if s.Type == corev1.ServiceTypeLoadBalancer && p.Port != np.port {
			lb := nodePort{p.Port, p.Protocol}
			if h, taken := pl.ports[lb]; !mine(h, taken) {
				return a, fmt.Sprintf("%s on the node's addresses (LoadBalancer %s) is already %s, which keeps it", lb, portName(p), h), ""
			}
		}
	}
	return a, "", ""
}

// commit takes what a gives for c's spec, records it and adds it to the
// plan.
func (pl *planner) commit(c *candidate, spec *corev1.Service, a assignment, manifest string) {
	s := &spec.Spec
	if a.ip.IsValid() {
		s.ClusterIP, s.ClusterIPs = a.ip.String(), []string{a.ip.String()}
	}
	for i := range s.Ports {
		s.Ports[i].NodePort = a.nodePorts[i]
	}
	h := holder{service: c.key, what: "Service " + c.key + "'s", file: manifest}
	ip, ports, lb := held(spec)
	if ip.IsValid() {
		pl.ips[ip] = h
	}
	for _, np := range append(ports, lb...) {
		pl.ports[np] = h
		pl.numbers[np.port] = true
	}
	created := pl.in.Now
	if c.rec != nil {
		created = c.rec.Created
	}
	rec := &ServiceRecord{Manifest: manifest, Created: created, Service: spec}
	pl.plan.Record[c.key] = rec
	if line := givenLine(c.key, manifest, c.rec, rec, a.notes); line != "" {
		pl.plan.Given = append(pl.plan.Given, line)
	}
	if line := releasedLine(c.key, c.rec, rec); line != "" {
		pl.plan.Freed = append(pl.plan.Freed, line)
	}
}

func (pl *planner) problem(key, reason string, served bool, format string, args ...any) {
	pl.plan.Problems[key] = append(pl.plan.Problems[key], ServiceProblem{Reason: reason, Message: fmt.Sprintf(format, args...), Served: served})
}

// dropProblems marks key's problems so far as those of a Service that is
// not served after all.
func (pl *planner) dropProblems(key string) {
	for i := range pl.plan.Problems[key] {
		pl.plan.Problems[key][i].Served = false
	}
}

// usableIP tells whether a recorded address may stay a Service's: inside
// the range, neither its first nor its last address, not the resolver's.
func (pl *planner) usableIP(a netip.Addr) bool {
	r := pl.in.ClusterIPs
	return r.Contains(a) && a != r.Addr() && a != generator.LastAddr(r) && a != pl.in.ClusterDNS
}

// whyNotIP says why a recorded address cannot stay key's.
func (pl *planner) whyNotIP(a netip.Addr, key string) string {
	if h, taken := pl.ips[a]; taken && h.service != key {
		return "is " + h.String()
	}
	if a == pl.in.ClusterDNS {
		return "is the resolver's (clusterDNS)"
	}
	return "is not a Service address of serviceClusterIPRange " + pl.in.ClusterIPs.String()
}

// whyNotPort says why a recorded node port cannot stay key's.
func (pl *planner) whyNotPort(np nodePort, key string) string {
	if h, taken := pl.ports[np]; taken && h.service != key {
		return "is " + h.String()
	}
	if !pl.in.NodePorts.Contains(np.port) {
		return "is outside serviceNodePortRange " + pl.in.NodePorts.String()
	}
	return "is another port's of the Service"
}

// allocateIP picks a free address of the range for key.
func (pl *planner) allocateIP(key string) (netip.Addr, bool) {
	r := pl.in.ClusterIPs
	if !r.Addr().Is4() {
		return netip.Addr{}, false
	}
	b := r.Addr().As4()
	base := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	size := 1 << (32 - r.Bits())
	addr := func(off int) netip.Addr {
		v := base + uint32(off)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	// Offsets 1 to size-2: not the network's address nor the broadcast.
	off, ok := pick(key, size-2, rangeBand(size, 16, 256), func(i int) bool {
		a := addr(i + 1)
		_, taken := pl.ips[a]
		return !taken && !pl.askedIPs[a] && a != pl.in.ClusterDNS
	})
	return addr(off + 1), ok
}

// allocatePort picks a free node port for key, none of also.
func (pl *planner) allocatePort(key string, also map[int32]bool) (int32, bool) {
	r := pl.in.NodePorts
	off, ok := pick(key, r.Size(), rangeBand(r.Size(), 32, 128), func(i int) bool {
		port := r.First + int32(i)
		return !pl.numbers[port] && !pl.askedPorts[port] && !also[port]
	})
	return r.First + int32(off), ok
}

// rangeBand is the lower band of a range of size values that dynamic
// allocation leaves to explicit asks as long as the rest has room: size/
// step, at least 16 and at most max, none in a range of 16 or fewer (the
// kube-apiserver's static subranges).
func rangeBand(size, step, max int) int {
	const min = 16
	if size <= min {
		return 0
	}
	return int(clamp(size/step, min, max))
}

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }

// pick finds a free offset in [0, n): in the upper part [band, n) from a
// place given by key's hash, then in the band.
func pick(key string, n, band int, free func(int) bool) (int, bool) {
	if n <= 0 {
		return 0, false
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	sum := h.Sum64()
	search := func(lo, hi int) (int, bool) {
		if hi <= lo {
			return 0, false
		}
		start := int(sum % uint64(hi-lo))
		for i := range hi - lo {
			if off := lo + (start+i)%(hi-lo); free(off) {
				return off, true
			}
		}
		return 0, false
	}
	if off, ok := search(min(band, n), n); ok {
		return off, true
	}
	return search(0, min(band, n))
}

// portName names a Service port in messages: "port http (80/TCP)".
func portName(p corev1.ServicePort) string {
	if p.Name == "" {
		return fmt.Sprintf("port %d/%s", p.Port, p.Protocol)
	}
	return fmt.Sprintf("port %s (%d/%s)", p.Name, p.Port, p.Protocol)
}

// givenLine says what a Service got that its record did not hold ("" when
// nothing): its ClusterIP and node ports.
func givenLine(key, manifest string, before, after *ServiceRecord, notes []string) string {
	var got []string
	ip, _, _ := held(after.Service)
	if before == nil || before.Service.Spec.ClusterIP != after.Service.Spec.ClusterIP {
		if ip.IsValid() {
			got = append(got, "ClusterIP "+ip.String())
		}
	}
	old := map[nodePort]bool{}
	if before != nil {
		_, ports, _ := held(before.Service)
		for _, np := range ports {
			old[np] = true
		}
	}
	for _, p := range after.Service.Spec.Ports {
		if np := (nodePort{p.NodePort, p.Protocol}); p.NodePort != 0 && !old[np] {
			got = append(got, fmt.Sprintf("node port %d for %s", p.NodePort, portName(p)))
		}
	}
	if len(got) == 0 {
		return ""
	}
	line := fmt.Sprintf("Service %s from %s: %s", key, manifest, strings.Join(got, ", "))
	if len(notes) > 0 {
		line += " (" + strings.Join(notes, "; ") + ")"
	}
	return line
}

// releasedLine says what a Service held before and holds no more ("" when
// nothing): an edit dropped a port or made it a ClusterIP Service.
func releasedLine(key string, before, after *ServiceRecord) string {
	if before == nil {
		return ""
	}
	var gone []string
	ip, _, _ := held(before.Service)
	if now, _, _ := held(after.Service); ip.IsValid() && ip != now {
		gone = append(gone, "ClusterIP "+ip.String())
	}
	now := map[nodePort]bool{}
	_, ports, _ := held(after.Service)
	for _, np := range ports {
		now[np] = true
	}
	for _, p := range before.Service.Spec.Ports {
		if np := (nodePort{p.NodePort, p.Protocol}); p.NodePort != 0 && !now[np] {
			gone = append(gone, fmt.Sprintf("node port %d", p.NodePort))
		}
	}
	if len(gone) == 0 {
		return ""
	}
	return fmt.Sprintf("Service %s no longer holds %s: free again", key, strings.Join(gone, ", "))
}

// freedLine says what a Service that is gone held.
func freedLine(key string, rec *ServiceRecord) string {
	var held []string
	if ip, err := netip.ParseAddr(rec.Service.Spec.ClusterIP); err == nil {
		held = append(held, "ClusterIP "+ip.String())
	}
	for _, p := range rec.Service.Spec.Ports {
		if p.NodePort != 0 {
			held = append(held, fmt.Sprintf("node port %d", p.NodePort))
		}
	}
	if len(held) == 0 {
		return fmt.Sprintf("Service %s is gone (its manifest %s no longer defines it)", key, rec.Manifest)
	}
	return fmt.Sprintf("Service %s is gone (its manifest %s no longer defines it): %s free again", key, rec.Manifest, strings.Join(held, ", "))
}

// table is the node's Service table: the Services served and the pods'
// facts.
func (pl *planner) table() *service.Table {
	t := &service.Table{ClusterIPRange: pl.in.ClusterIPs, NodePortRange: pl.in.NodePorts.String(),
		ClusterDomain: pl.in.ClusterDomain, ClusterDNS: pl.in.ClusterDNS, PodNetwork: pl.in.PodNetwork, NodeIPs: pl.in.NodeIPs,
		Services: []service.Service{}, Pods: []service.PodInfo{}}
	for _, key := range slices.Sorted(maps.Keys(pl.plan.Record)) {
		rec := pl.plan.Record[key]
		t.Services = append(t.Services, (&generator.Service{Source: rec.Manifest, Spec: rec.Service}).Model())
	}
	for _, p := range pl.in.Pods {
		t.Pods = append(t.Pods, podInfo(p.Spec))
	}
	slices.SortFunc(t.Pods, func(a, b service.PodInfo) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return t
}

// podInfo is what a pod's spec says that its endpoints depend on: its
// labels, hostname and subdomain, network, and the ports of its
// containers and sidecars (a named target port is looked up in them, as
// the EndpointSlice controller does).
func podInfo(p *corev1.Pod) service.PodInfo {
	info := service.PodInfo{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels,
		Hostname: p.Spec.Hostname, Subdomain: p.Spec.Subdomain, HostNetwork: p.Spec.HostNetwork}
	var containers []corev1.Container
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			containers = append(containers, c)
		}
	}
	for _, c := range append(containers, p.Spec.Containers...) {
		for _, port := range c.Ports {
			info.Ports = append(info.Ports, service.ContainerPort{Name: port.Name,
				Protocol: service.Protocol(cmp.Or(port.Protocol, corev1.ProtocolTCP)), Port: port.ContainerPort, HostPort: port.HostPort})
		}
	}
	return info
}
