package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/units/status"
)

// serviceWords are the names `get` and `describe` take for Services.
var serviceWords = []string{"services", "service", "svc"}

func (c *statusClient) services() ([]corev1.Service, error) {
	var list corev1.ServiceList
	if err := c.get("/services", &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

func (c *statusClient) endpointSlices() ([]discoveryv1.EndpointSlice, error) {
	var list discoveryv1.EndpointSliceList
	if err := c.get("/endpointslices", &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// service is one Service; for one that is not found, an error saying why
// when the sync knows it (not served: a conflict, an exhausted range).
func (c *statusClient) service(namespace, name string) (*corev1.Service, error) {
	var svc corev1.Service
	err := c.get("/services/"+namespace+"/"+name, &svc)
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusNotFound {
		return nil, &exitError{exitFailure, fmt.Errorf("%s (podunit get services -A lists the Services)", se.msg)}
	}
	if err != nil {
		return nil, err
	}
	return &svc, nil
}

// printServices prints Services as `kubectl get services` does.
func printServices(w io.Writer, list []corev1.Service, output string, allNamespaces bool, namespace string, now time.Time) error {
	list = slices.Clone(list)
	slices.SortFunc(list, func(a, b corev1.Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	switch output {
	case "json", "yaml":
		l := corev1.ServiceList{Items: list}
		l.Kind, l.APIVersion = "ServiceList", "v1"
		return printObject(w, l, output)
	case "name":
		for _, s := range list {
			fmt.Fprintf(w, "service/%s\n", s.Name)
		}
		return nil
	case "", "wide":
	default:
		return &exitError{exitUsage, fmt.Errorf("-o %q: one of wide, json, yaml, name", output)}
	}
	if len(list) == 0 {
		if allNamespaces {
			fmt.Fprintln(w, "No resources found")
		} else {
			fmt.Fprintf(w, "No resources found in %s namespace.\n", namespace)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := "NAME\tTYPE\tCLUSTER-IP\tEXTERNAL-IP\tPORT(S)\tAGE"
	if allNamespaces {
		header = "NAMESPACE\t" + header
	}
	if output == "wide" {
		header += "\tSELECTOR"
	}
	fmt.Fprintln(tw, header)
	for _, s := range list {
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", s.Name, s.Spec.Type, orNone(s.Spec.ClusterIP), externalIP(&s), portsColumn(s.Spec.Ports),
			shortDuration(now.Sub(s.CreationTimestamp.Time)))
		if allNamespaces {
			row = s.Namespace + "\t" + row
		}
		if output == "wide" {
			row += "\t" + selectorString(s.Spec.Selector)
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

// externalIP is kubectl's EXTERNAL-IP: an ExternalName's name, a
// LoadBalancer's ingress (with its external IPs), or the external IPs.
func externalIP(s *corev1.Service) string {
	switch s.Spec.Type {
	case corev1.ServiceTypeExternalName:
		return s.Spec.ExternalName
	case corev1.ServiceTypeLoadBalancer:
		var ips []string
		for _, in := range s.Status.LoadBalancer.Ingress {
			ips = append(ips, cmp.Or(in.IP, in.Hostname))
		}
		ips = append(ips, s.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	}
	if len(s.Spec.ExternalIPs) > 0 {
		return strings.Join(s.Spec.ExternalIPs, ",")
	}
	return "<none>"
}

// portsColumn is kubectl's PORT(S): 80/TCP, with a node port 80:30080/TCP.
func portsColumn(ports []corev1.ServicePort) string {
	if len(ports) == 0 {
		return "<none>"
	}
	var out []string
	for _, p := range ports {
		if p.NodePort != 0 {
			out = append(out, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol))
		} else {
			out = append(out, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
		}
	}
	return strings.Join(out, ",")
}

// selectorString is a selector as kubectl writes labels: app=web,tier=db.
func selectorString(sel map[string]string) string {
	if len(sel) == 0 {
		return "<none>"
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		out = append(out, k+"="+sel[k])
	}
	return strings.Join(out, ",")
}

// describeService writes `kubectl describe service`'s layout, with the
// endpoints not ready too, the manifest, and why the Service is not served
// as its manifest says when it is not.
func describeService(w io.Writer, s *corev1.Service, eps []discoveryv1.EndpointSlice, events []event, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	field := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t%s\n", name, fmt.Sprintf(format, args...))
	}
	spec := &s.Spec
	field("Name", "%s", s.Name)
	field("Namespace", "%s", s.Namespace)
	field("Manifest", "%s", orNone(s.Annotations[generator.AnnotationManifest]))
	labelsField(tw, "Labels", s.Labels)
	annotations := maps.Clone(s.Annotations)
	delete(annotations, generator.AnnotationManifest)
	labelsField(tw, "Annotations", annotations)
	field("Selector", "%s", selectorString(spec.Selector))
	field("Type", "%s", spec.Type)
	if spec.IPFamilyPolicy != nil {
		field("IP Family Policy", "%s", *spec.IPFamilyPolicy)
	}
	var families []string
	for _, f := range spec.IPFamilies {
		families = append(families, string(f))
	}
	field("IP Families", "%s", orNone(strings.Join(families, ",")))
	field("IP", "%s", spec.ClusterIP)
	field("IPs", "%s", orNone(strings.Join(spec.ClusterIPs, ",")))
	if len(spec.ExternalIPs) > 0 {
		field("External IPs", "%s", strings.Join(spec.ExternalIPs, ","))
	}
	if spec.ExternalName != "" {
		field("External Name", "%s", spec.ExternalName)
	}
	if in := s.Status.LoadBalancer.Ingress; len(in) > 0 {
		var ips []string
		for _, i := range in {
			ips = append(ips, cmp.Or(i.IP, i.Hostname))
		}
		field("LoadBalancer Ingress", "%s", strings.Join(ips, ", "))
	}
	for _, p := range spec.Ports {
		name := cmp.Or(p.Name, "<unset>")
		field("Port", "%s  %d/%s", name, p.Port, p.Protocol)
		if p.TargetPort.Type == intstr.Int {
			field("TargetPort", "%d/%s", p.TargetPort.IntVal, p.Protocol)
		} else {
			field("TargetPort", "%s/%s", p.TargetPort.StrVal, p.Protocol)
		}
		if p.NodePort != 0 {
			field("NodePort", "%s  %d/%s", name, p.NodePort, p.Protocol)
		}
		ready, notReady := endpointsOf(eps, p.Name)
		field("Endpoints", "%s", addressList(ready))
		if len(notReady) > 0 {
			field("Not Ready Endpoints", "%s", addressList(notReady))
		}
	}
	if spec.Type != corev1.ServiceTypeExternalName && len(spec.Ports) == 0 {
		// A headless Service without ports: its endpoints are addresses.
		ready, notReady := endpointsOf(eps, "")
		field("Endpoints", "%s", addressList(ready))
		if len(notReady) > 0 {
			field("Not Ready Endpoints", "%s", addressList(notReady))
		}
	}
	field("Session Affinity", "%s", spec.SessionAffinity)
	if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		field("Session Affinity Timeout", "%ds", *c.ClientIP.TimeoutSeconds)
	}
	if spec.ExternalTrafficPolicy != "" {
		field("External Traffic Policy", "%s", spec.ExternalTrafficPolicy)
	}
	if spec.InternalTrafficPolicy != nil {
		field("Internal Traffic Policy", "%s", *spec.InternalTrafficPolicy)
	}
	for _, c := range s.Status.Conditions {
		if c.Type == status.ConditionServiceUpToDate && c.Status == "False" {
			field("Problem", "%s: %s", c.Reason, c.Message)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeEvents(w, events, now)
}

// labelsField writes labels or annotations one a line, as kubectl does.
func labelsField(tw io.Writer, name string, m map[string]string) {
	if len(m) == 0 {
		fmt.Fprintf(tw, "%s:\t<none>\n", name)
		return
	}
	for i, k := range slices.Sorted(maps.Keys(m)) {
		sep := "="
		if name == "Annotations" {
			sep = ": "
		}
		if i == 0 {
			fmt.Fprintf(tw, "%s:\t%s%s%s\n", name, k, sep, m[k])
		} else {
			fmt.Fprintf(tw, "\t%s%s%s\n", k, sep, m[k])
		}
	}
}

// endpointsOf are the addresses (ip:port) of a Service port's endpoints,
// in rotation and not, from its EndpointSlices; for "" with no ports, the
// addresses alone.
func endpointsOf(eps []discoveryv1.EndpointSlice, port string) (ready, notReady []string) {
	for _, sl := range eps {
		var number *int32
		for _, p := range sl.Ports {
			if p.Name != nil && *p.Name == port {
				number = p.Port
			}
		}
		if number == nil && len(sl.Ports) > 0 {
			continue // the pods of this slice lack the named port
		}
		for _, ep := range sl.Endpoints {
			for _, a := range ep.Addresses {
				addr := a
				if number != nil {
					addr += ":" + strconv.Itoa(int(*number))
				}
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					ready = append(ready, addr)
				} else {
					notReady = append(notReady, addr)
				}
			}
		}
	}
	slices.Sort(ready)
	slices.Sort(notReady)
	return ready, notReady
}

// addressList is kubectl's endpoint list: the first three, then how many
// more.
func addressList(addrs []string) string {
	switch {
	case len(addrs) == 0:
		return "<none>"
	case len(addrs) > 3:
		return strings.Join(addrs[:3], ",") + fmt.Sprintf(" + %d more...", len(addrs)-3)
	}
	return strings.Join(addrs, ",")
}

// serviceEvents are the sync's last journal entries about Service key
// (what it was given, what it gave up, its problems), at most n.
func serviceEvents(key string, n int) ([]event, error) {
	all, err := unitEvents("podunit-sync.service", n*20)
	if err != nil {
		return nil, err
	}
	var out []event
	for _, e := range all {
		if mentionsService(e.Message, key) {
			e.Source = "podunit-sync"
			out = append(out, e)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

// mentionsService tells whether a sync message is about Service key
// ("Service default/web ..." or "...: Service default/web: ...").
func mentionsService(msg, key string) bool {
	for rest := msg; ; {
		i := strings.Index(rest, "Service "+key)
		if i < 0 {
			return false
		}
		rest = rest[i+len("Service "+key):]
		if rest == "" || strings.IndexByte(" :'", rest[0]) >= 0 {
			return true
		}
	}
}
