package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/cni/service"
	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units/engine"
)

// ConditionServiceUpToDate is false on a Service that is not served as
// its manifest says: it is served as the sync last served it (its
// manifest is invalid, or asks for what another Service holds); the
// reason is the sync's (engine.ReasonInvalidManifest, ReasonConflict,
// ReasonRangeExhausted).
const ConditionServiceUpToDate = "podunit.io/UpToDate"

// EndpointSlice labels, as the EndpointSlice controller sets them.
const (
	labelServiceName = "kubernetes.io/service-name"
	labelManagedBy   = "endpointslice.kubernetes.io/managed-by"
	labelHeadless    = "service.kubernetes.io/headless"
	// ManagedBy is the managed-by label of podunit's EndpointSlices.
	ManagedBy = "podunit.io"
)

// serviceView is the node's Services at one snapshot: as v1 Services and
// EndpointSlices, and the model they are made from.
type serviceView struct {
	services  []corev1.Service
	slices    []discoveryv1.EndpointSlice
	snapshot  *service.Snapshot
	problems  map[string][]engine.ServiceProblem
	readError error
}

// services is the snapshot's Services, made once per snapshot on the
// first request that needs them: the sync's record (what each Service
// holds) and its table joined with the snapshot's pods, so that /services,
// /endpointslices and the metrics agree with /pods.
func (s *Server) services(snap *snapshot) *serviceView {
	snap.servicesOnce.Do(func() { snap.serviceView = s.buildServices(snap) })
	return snap.serviceView
}

func (s *Server) buildServices(snap *snapshot) *serviceView {
	v := &serviceView{problems: snap.sync.ServiceProblems}
	records, table := map[string]*engine.ServiceRecord{}, &service.Table{}
	if s.ServiceDir != "" {
		r, err := engine.ReadServiceRecords(s.ServiceDir)
		if err != nil {
			v.readError = err
		} else {
			records = r
		}
	}
	if s.ServiceTable != "" {
		t, err := service.ReadTable(s.ServiceTable)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			v.readError = err
		default:
			table = t
		}
	}
	pods := map[string]*cachedPod{}
	for _, c := range snap.pods {
		pods[c.pod.Namespace+"/"+c.pod.Name] = c
	}
	v.snapshot = table.Join(func(ns, name string) (service.PodStatus, bool) {
		c := pods[ns+"/"+name]
		if c == nil {
			return service.PodStatus{}, false
		}
		return podServiceStatus(c), true
	})
	for _, key := range slices.Sorted(maps.Keys(records)) {
		v.services = append(v.services, v1Service(records[key], table.NodeIPs, v.problems[key], snap.sync))
	}
	for i := range v.snapshot.Services {
		v.slices = append(v.slices, endpointSlices(&v.snapshot.Services[i], v.snapshot.Endpoints[v.snapshot.Services[i].Key()], pods)...)
	}
	return v
}

// podServiceStatus is what a Service sees of a pod of the snapshot: its
// address and Ready condition, as the rules and the resolver read them
// from podshim's state, and whether its unit is stopping.
func podServiceStatus(c *cachedPod) service.PodStatus {
	st := (&podshim.State{Status: c.pod.Status}).ServiceStatus()
	st.Terminating = c.activeState == "deactivating"
	return st
}

// v1Service is a recorded Service as the API server would show it: the
// defaulted Service with what it holds, created when podunit first served
// it, with its manifest as an annotation; a LoadBalancer's ingress is the
// node's addresses, as k3s's ServiceLB reports them; problems make its
// ConditionServiceUpToDate false.
func v1Service(rec *engine.ServiceRecord, nodeIPs []netip.Addr, problems []engine.ServiceProblem, sync engine.State) corev1.Service {
	svc := *rec.Service.DeepCopy()
	svc.TypeMeta = metav1.TypeMeta{Kind: "Service", APIVersion: "v1"}
	svc.CreationTimestamp = metav1.NewTime(rec.Created)
	svc.Annotations = maps.Clone(svc.Annotations)
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	svc.Annotations[generator.AnnotationManifest] = rec.Manifest
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ip := range nodeIPs {
			svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip.String()})
		}
	}
	var served []engine.ServiceProblem
	for _, p := range problems {
		if p.Served {
			served = append(served, p)
		}
	}
	if len(served) > 0 {
		var msgs []string
		for _, p := range served {
			msgs = append(msgs, p.Message)
		}
		svc.Status.Conditions = append(svc.Status.Conditions, metav1.Condition{
			Type: ConditionServiceUpToDate, Status: metav1.ConditionFalse, Reason: served[0].Reason,
			Message: strings.Join(msgs, "; "), LastTransitionTime: metav1.NewTime(sync.Time),
		})
	}
	return svc
}

// endpointSlices are a Service's endpoints as the EndpointSlice
// controller writes them: one slice for each set of target ports (a named
// target port may be a different number on each pod), a placeholder with
// none when there are no endpoints; none for a Service without a selector
// or an ExternalName one.
func endpointSlices(svc *service.Service, eps []service.Endpoint, pods map[string]*cachedPod) []discoveryv1.EndpointSlice {
	if len(svc.Selector) == 0 || svc.Type == service.ExternalName {
		return nil
	}
	type group struct {
		ports []discoveryv1.EndpointPort
		eps   []discoveryv1.Endpoint
	}
	groups := map[string]*group{}
	for _, ep := range eps {
		var ports []discoveryv1.EndpointPort
		var sig []string
		for _, sp := range svc.Ports {
			port, ok := ep.Ports[sp.Name]
			if !ok {
				continue
			}
			ports = append(ports, discoveryv1.EndpointPort{Name: ptr(sp.Name), Protocol: ptr(corev1.Protocol(sp.Protocol)), Port: ptr(port)})
			sig = append(sig, fmt.Sprintf("%s/%s/%d", sp.Name, sp.Protocol, port))
		}
		key := strings.Join(sig, ",")
		g := groups[key]
		if g == nil {
			g = &group{ports: ports}
			groups[key] = g
		}
		e := discoveryv1.Endpoint{
			Addresses:  []string{ep.IP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(ep.Ready), Serving: ptr(ep.Serving), Terminating: ptr(ep.Terminating)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ep.Namespace, Name: ep.Pod},
		}
		if c := pods[ep.Namespace+"/"+ep.Pod]; c != nil {
			e.TargetRef.UID = c.pod.UID
			if n := c.pod.Spec.NodeName; n != "" {
				e.NodeName = ptr(n)
			}
		}
		if ep.Hostname != "" {
			e.Hostname = ptr(ep.Hostname)
		}
		g.eps = append(g.eps, e)
	}
	if len(groups) == 0 {
		groups[""] = &group{ports: []discoveryv1.EndpointPort{}, eps: []discoveryv1.Endpoint{}}
	}
	var out []discoveryv1.EndpointSlice
	for _, key := range slices.Sorted(maps.Keys(groups)) {
		g := groups[key]
		labels := map[string]string{labelServiceName: svc.Name, labelManagedBy: ManagedBy}
		if svc.Headless() {
			labels[labelHeadless] = ""
		}
		out = append(out, discoveryv1.EndpointSlice{
			TypeMeta:    metav1.TypeMeta{Kind: "EndpointSlice", APIVersion: "discovery.k8s.io/v1"},
			ObjectMeta:  metav1.ObjectMeta{Name: svc.Name + "-" + suffix(svc.Key()+"|"+key), Namespace: svc.Namespace, Labels: labels},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   g.eps,
			Ports:       g.ports,
		})
	}
	return out
}

// suffix is the five characters after a Service's name that name one of
// its slices, as the controller's generated names have them; podunit's
// come from a hash of what the slice holds, so that they stay the same.
func suffix(s string) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789" // the API server's generateName letters
	h := fnv.New64a()
	h.Write([]byte(s))
	v := h.Sum64()
	var b [5]byte
	for i := range b {
		b[i] = alphabet[v%uint64(len(alphabet))]
		v /= uint64(len(alphabet))
	}
	return string(b[:])
}

func ptr[T any](v T) *T { return &v }

// serviceView is the Services of the current snapshot; on a failure it
// answers 500 and returns false.
func (s *Server) serviceView(w http.ResponseWriter, r *http.Request) (*serviceView, bool) {
	snap, err := s.snapshot(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return nil, false
	}
	v := s.services(snap)
	if v.readError != nil {
		http.Error(w, v.readError.Error(), http.StatusInternalServerError)
		return nil, false
	}
	return v, true
}

// serveServices answers /services (a v1 ServiceList) and
// /services/NAMESPACE/NAME (a Service; for one that is not served, 404
// with why).
func (s *Server) serveServices(w http.ResponseWriter, r *http.Request, path string) {
	v, ok := s.serviceView(w, r)
	if !ok {
		return
	}
	if path == "services" {
		list := corev1.ServiceList{TypeMeta: metav1.TypeMeta{Kind: "ServiceList", APIVersion: "v1"}, Items: v.services}
		writeJSON(w, &list)
		return
	}
	ns, name, ok := strings.Cut(strings.TrimPrefix(path, "services/"), "/")
	if !ok {
		http.Error(w, "GET /services/NAMESPACE/NAME", http.StatusNotFound)
		return
	}
	for i := range v.services {
		if v.services[i].Namespace == ns && v.services[i].Name == name {
			writeJSON(w, &v.services[i])
			return
		}
	}
	msg := fmt.Sprintf("Service %s/%s not found", ns, name)
	if ps := v.problems[ns+"/"+name]; len(ps) > 0 {
		var msgs []string
		for _, p := range ps {
			msgs = append(msgs, p.Message)
		}
		msg = fmt.Sprintf("Service %s/%s is not served (%s): %s", ns, name, ps[0].Reason, strings.Join(msgs, "; "))
	}
	http.Error(w, msg, http.StatusNotFound)
}

// serveEndpointSlices answers /endpointslices: a discovery.k8s.io/v1
// EndpointSliceList of every Service's endpoints.
func (s *Server) serveEndpointSlices(w http.ResponseWriter, r *http.Request) {
	v, ok := s.serviceView(w, r)
	if !ok {
		return
	}
	list := discoveryv1.EndpointSliceList{TypeMeta: metav1.TypeMeta{Kind: "EndpointSliceList", APIVersion: "discovery.k8s.io/v1"}, Items: v.slices}
	writeJSON(w, &list)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}
