package generator

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/podunit/podunit/units"
)

// validate checks a defaulted pod the way the Kubernetes API server would for
// the fields podunit supports, plus what systemd needs of the names.
// Values podunit accepts but cannot fully honour come back as notices.
func validate(file string, d decoded) ([]error, []Notice) {
	var (
		errs    []error
		notices []Notice
	)
	fail := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{File: file, Line: d.lineOf(path), Field: d.field(path), Msg: fmt.Sprintf(format, args...)})
	}
	note := func(path, format string, args ...any) {
		notices = append(notices, Notice{File: file, Line: d.lineOf(path), Field: d.field(path), Msg: fmt.Sprintf(format, args...)})
	}
	pod := d.pod

	switch {
	case pod.Name == "":
		fail("metadata.name", "required")
	default:
		for _, msg := range validation.IsDNS1123Subdomain(pod.Name) {
			fail("metadata.name", "%q: %s", pod.Name, msg)
		}
	}
	for _, msg := range validation.IsDNS1123Label(pod.Namespace) {
		fail("metadata.namespace", "%q: %s", pod.Namespace, msg)
	}
	if pod.Name != "" && len(errs) == 0 {
		if err := units.CheckPodName(pod.Namespace, pod.Name); err != nil {
			fail("metadata.name", "%v", err)
		}
	}
	for k := range pod.Labels {
		for _, msg := range validation.IsQualifiedName(k) {
			fail(fmt.Sprintf("metadata.labels[%s]", k), "%s", msg)
		}
	}
	for k, v := range pod.Labels {
		for _, msg := range validation.IsValidLabelValue(v) {
			fail(fmt.Sprintf("metadata.labels[%s]", k), "%q: %s", v, msg)
		}
	}
	for k := range pod.Annotations {
		if podmanAnnotationKey(k) {
			continue // podman 4 wrote it so; its notice follows
		}
		for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
			fail(fmt.Sprintf("metadata.annotations[%s]", k), "%s", msg)
		}
	}
	validateKnownAnnotations(pod, note)
	if _, ok := pod.Annotations[AnnotationAfter]; ok {
		field := fmt.Sprintf("metadata.annotations[%s]", AnnotationAfter)
		refs := afterPods(pod)
		if len(refs) == 0 {
			fail(field, "empty: name the pods this one starts after, comma-separated")
		}
		for _, r := range refs {
			for _, msg := range append(validation.IsDNS1123Label(r.namespace), validation.IsDNS1123Subdomain(r.name)...) {
				fail(field, "%q: %s", r.namespace+"/"+r.name, msg)
			}
			if r.namespace == pod.Namespace && r.name == pod.Name {
				fail(field, "a pod cannot start after itself")
			}
		}
	}

	validateRollout(pod, fail)

	spec := pod.Spec
	switch spec.RestartPolicy {
	case corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
	default:
		fail("spec.restartPolicy", "%q: must be Always, OnFailure or Never%s", spec.RestartPolicy, caseHint(string(spec.RestartPolicy), "Always", "OnFailure", "Never"))
	}
	if g := *spec.TerminationGracePeriodSeconds; g < 0 {
		fail("spec.terminationGracePeriodSeconds", "%d: must be 0 or more", g)
	}

	validatePodLevel(&spec, fail, note)
	validateAdmission(&spec, fail, note)
	if len(spec.Containers) == 0 {
		fail("spec.containers", "required: a pod needs at least one container")
	}
	names := map[string]bool{}
	type hostPort struct {
		ip    string
		port  int32
		proto corev1.Protocol
	}
	hostPorts := map[hostPort]string{}
	type entry struct {
		path string
		c    corev1.Container
		init bool
	}
	var all []entry
	for i, c := range spec.InitContainers {
		all = append(all, entry{fmt.Sprintf("spec.initContainers[%d]", i), c, true})
	}
	for i, c := range spec.Containers {
		all = append(all, entry{fmt.Sprintf("spec.containers[%d]", i), c, false})
	}
	for _, e := range all {
		p, c := e.path, e.c
		if e.init {
			sidecar := c.RestartPolicy != nil
			if sidecar && *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				fail(p+".restartPolicy", "%q: only Always (a sidecar) is allowed", *c.RestartPolicy)
			}
			if c.Lifecycle != nil && !sidecar {
				fail(p+".lifecycle", "only sidecar init containers (restartPolicy: Always) may have lifecycle hooks")
			}
			for field, probe := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
				if probe != nil && !sidecar {
					fail(p+"."+field, "only sidecar init containers (restartPolicy: Always) may have probes")
				}
			}
		}
		validateUniqueName(p+".name", "container", c.Name, names, fail)
		if strings.TrimSpace(c.Image) == "" {
			fail(p+".image", "required")
		} else if strings.ContainsAny(c.Image, " \t\n") {
			fail(p+".image", "%q: must not contain white space", c.Image)
		}
		switch c.ImagePullPolicy {
		case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		default:
			fail(p+".imagePullPolicy", "%q: must be Always, IfNotPresent or Never%s", c.ImagePullPolicy, caseHint(string(c.ImagePullPolicy), "Always", "IfNotPresent", "Never"))
		}
		validateContainerLevel(p, &c, &spec, fail, note)
		if spec.HostNetwork {
			for j, port := range c.Ports {
				if port.HostPort != port.ContainerPort {
					fail(fmt.Sprintf("%s.ports[%d].hostPort", p, j), "%d: must equal containerPort %d with hostNetwork", port.HostPort, port.ContainerPort)
				}
			}
		}
		for j, e := range c.Env {
			ep := fmt.Sprintf("%s.env[%d].name", p, j)
			if e.Name == "" {
				fail(ep, "required")
			} else if strings.ContainsAny(e.Name, "=\x00") {
				fail(ep, "%q: must not contain '=' or NUL", e.Name)
			}
		}
		for _, pr := range []struct {
			name  string
			probe *corev1.Probe
		}{{"startupProbe", c.StartupProbe}, {"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}} {
			validateProbe(p+"."+pr.name, pr.probe, &c, fail)
		}
		if l := c.Lifecycle; l != nil {
			for name, h := range map[string]*corev1.LifecycleHandler{"postStart": l.PostStart, "preStop": l.PreStop} {
				validateHook(p+".lifecycle."+name, h, &c, fail)
			}
		}
		for j, port := range c.Ports {
			pp := fmt.Sprintf("%s.ports[%d]", p, j)
			if port.ContainerPort < 1 || port.ContainerPort > 65535 {
				fail(pp+".containerPort", "%d: must be between 1 and 65535", port.ContainerPort)
			}
			if port.HostPort < 0 || port.HostPort > 65535 {
				fail(pp+".hostPort", "%d: must be between 0 and 65535", port.HostPort)
			}
			if port.Name != "" {
				for _, msg := range validation.IsValidPortName(port.Name) {
					fail(pp+".name", "%q: %s", port.Name, msg)
				}
			}
			switch port.Protocol {
			case corev1.ProtocolTCP, corev1.ProtocolUDP:
			default:
				fail(pp+".protocol", "%q: must be TCP or UDP%s", port.Protocol, caseHint(string(port.Protocol), "TCP", "UDP", "SCTP"))
			}
			if port.HostIP != "" && net.ParseIP(port.HostIP) == nil {
				fail(pp+".hostIP", "%q: not an IP address", port.HostIP)
			}
			if port.HostIP != "" && port.HostPort == 0 {
				fail(pp+".hostIP", "needs hostPort")
			}
			if port.HostPort != 0 {
				key := hostPort{port.HostIP, port.HostPort, port.Protocol}
				if other, dup := hostPorts[key]; dup {
					fail(pp+".hostPort", "%d/%s is already published by %s", port.HostPort, port.Protocol, other)
				}
				hostPorts[key] = pp
			}
		}
	}
	return errs, notices
}

// validateProbe checks a defaulted probe as the API server does.
func validateProbe(path string, p *corev1.Probe, c *corev1.Container, fail func(path, format string, args ...any)) {
	if p == nil {
		return
	}
	h := p.ProbeHandler
	n := 0
	for _, set := range []bool{h.Exec != nil, h.HTTPGet != nil, h.TCPSocket != nil, h.GRPC != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		fail(path, "must have exactly one of exec, httpGet, tcpSocket, grpc")
		return
	}
	if h.Exec != nil && len(h.Exec.Command) == 0 {
		fail(path+".exec.command", "required")
	}
	validateHTTPGet(path, h.HTTPGet, c, fail)
	if h.TCPSocket != nil {
		validatePort(path+".tcpSocket.port", h.TCPSocket.Port, c, fail)
	}
	if h.GRPC != nil && (h.GRPC.Port < 1 || h.GRPC.Port > 65535) {
		fail(path+".grpc.port", "%d: must be between 1 and 65535", h.GRPC.Port)
	}
	for field, v := range map[string]int32{"initialDelaySeconds": p.InitialDelaySeconds, "timeoutSeconds": p.TimeoutSeconds - 1,
		"periodSeconds": p.PeriodSeconds - 1, "successThreshold": p.SuccessThreshold - 1, "failureThreshold": p.FailureThreshold - 1} {
		if v < 0 {
			fail(path+"."+field, "must be at least %d", map[bool]int{true: 0, false: 1}[field == "initialDelaySeconds"])
		}
	}
	if !strings.HasSuffix(path, "readinessProbe") && p.SuccessThreshold != 1 {
		fail(path+".successThreshold", "must be 1")
	}
}

// validateHook checks a lifecycle hook: exactly one handler, valid ports.
func validateHook(path string, h *corev1.LifecycleHandler, c *corev1.Container, fail func(path, format string, args ...any)) {
	if h == nil {
		return
	}
	n := 0
	for _, set := range []bool{h.Exec != nil, h.HTTPGet != nil, h.Sleep != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		fail(path, "must have exactly one of exec, httpGet, sleep")
		return
	}
	if h.Exec != nil && len(h.Exec.Command) == 0 {
		fail(path+".exec.command", "required")
	}
	if h.Sleep != nil && h.Sleep.Seconds < 0 {
		fail(path+".sleep.seconds", "must be 0 or more")
	}
	validateHTTPGet(path, h.HTTPGet, c, fail)
}

// validateHTTPGet checks a defaulted httpGet action of a probe or hook.
func validateHTTPGet(path string, g *corev1.HTTPGetAction, c *corev1.Container, fail func(path, format string, args ...any)) {
	if g == nil {
		return
	}
	validatePort(path+".httpGet.port", g.Port, c, fail)
	if s := g.Scheme; s != corev1.URISchemeHTTP && s != corev1.URISchemeHTTPS {
		fail(path+".httpGet.scheme", "%q: must be HTTP or HTTPS%s", s, caseHint(string(s), "HTTP", "HTTPS"))
	}
}

// validatePort checks a probe's or hook's port: a number in range or the
// name of one of the container's ports.
func validatePort(field string, port intstr.IntOrString, c *corev1.Container, fail func(path, format string, args ...any)) {
	if port.Type == intstr.String {
		for _, cp := range c.Ports {
			if cp.Name == port.StrVal {
				return
			}
		}
		fail(field, "%q: no container port has this name", port.StrVal)
	} else if v := port.IntValue(); v < 1 || v > 65535 {
		fail(field, "%d: must be between 1 and 65535", v)
	}
}
