package generator

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// DefaultTerminationGracePeriodSeconds is the Kubernetes API default.
const DefaultTerminationGracePeriodSeconds = 30

// setDefaults fills in what the Kubernetes API server would, for the fields
// podunit supports, so that restating a default changes nothing.
func setDefaults(pod *corev1.Pod) {
	if pod.Namespace == "" {
		pod.Namespace = corev1.NamespaceDefault
	}
	spec := &pod.Spec
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.TerminationGracePeriodSeconds == nil {
		grace := int64(DefaultTerminationGracePeriodSeconds)
		spec.TerminationGracePeriodSeconds = &grace
	}
	if l := spec.EnableServiceLinks; l != nil && *l {
		// true is the default: restating it keeps the pod's hash (nil and
		// true mean the same to podshim).
		spec.EnableServiceLinks = nil
	}
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if r := spec.Resources; r != nil {
		// Pod-level requests default to its limits, as the API server does.
		for name, limit := range r.Limits {
			if _, ok := r.Requests[name]; !ok {
				if r.Requests == nil {
					r.Requests = corev1.ResourceList{}
				}
				r.Requests[name] = limit.DeepCopy()
			}
		}
	}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		if v.HostPath != nil && v.HostPath.Type == nil {
			t := corev1.HostPathUnset
			v.HostPath.Type = &t
		}
		if v.Image != nil && v.Image.PullPolicy == "" {
			v.Image.PullPolicy = defaultPullPolicy(v.Image.Reference)
		}
		mode := func(m **int32) {
			if *m == nil {
				def := int32(0o644) // the API default of every projecting source
				*m = &def
			}
		}
		if v.ConfigMap != nil {
			mode(&v.ConfigMap.DefaultMode)
		}
		if v.Secret != nil {
			mode(&v.Secret.DefaultMode)
		}
		if v.Projected != nil {
			mode(&v.Projected.DefaultMode)
			for _, src := range v.Projected.Sources {
				if src.DownwardAPI != nil {
					for j := range src.DownwardAPI.Items {
						defaultFieldRef(src.DownwardAPI.Items[j].FieldRef)
					}
				}
			}
		}
		if d := v.DownwardAPI; d != nil {
			if d.DefaultMode == nil {
				mode := corev1.DownwardAPIVolumeSourceDefaultMode
				d.DefaultMode = &mode
			}
			for j := range d.Items {
				defaultFieldRef(d.Items[j].FieldRef)
			}
		}
	}
	all := make([]*corev1.Container, 0, len(spec.InitContainers)+len(spec.Containers))
	for i := range spec.InitContainers {
		all = append(all, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		all = append(all, &spec.Containers[i])
	}
	for _, c := range all {
		if c.ImagePullPolicy == "" {
			c.ImagePullPolicy = defaultPullPolicy(c.Image)
		}
		for j := range c.Ports {
			if c.Ports[j].Protocol == "" {
				c.Ports[j].Protocol = corev1.ProtocolTCP
			}
			if spec.HostNetwork && c.Ports[j].HostPort == 0 {
				c.Ports[j].HostPort = c.Ports[j].ContainerPort
			}
		}
		for j := range c.Env {
			if c.Env[j].ValueFrom != nil {
				defaultFieldRef(c.Env[j].ValueFrom.FieldRef)
			}
		}
		// Requests default to the limits, as the API server does.
		for name, limit := range c.Resources.Limits {
			if _, ok := c.Resources.Requests[name]; !ok {
				if c.Resources.Requests == nil {
					c.Resources.Requests = corev1.ResourceList{}
				}
				c.Resources.Requests[name] = limit.DeepCopy()
			}
		}
		for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
			defaultProbe(p)
		}
		if l := c.Lifecycle; l != nil {
			for _, h := range []*corev1.LifecycleHandler{l.PostStart, l.PreStop} {
				if h != nil {
					defaultHTTPGet(h.HTTPGet)
				}
			}
		}
	}
}

func defaultFieldRef(f *corev1.ObjectFieldSelector) {
	if f != nil && f.APIVersion == "" {
		f.APIVersion = "v1"
	}
}

// defaultProbe sets the Kubernetes API defaults of a probe.
func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	defaultHTTPGet(p.HTTPGet)
}

// defaultHTTPGet sets the defaults of a probe's or hook's httpGet action.
func defaultHTTPGet(g *corev1.HTTPGetAction) {
	if g == nil {
		return
	}
	if g.Path == "" {
		g.Path = "/"
	}
	if g.Scheme == "" {
		g.Scheme = corev1.URISchemeHTTP
	}
}

// defaultPullPolicy is Always for ":latest" or no tag, else IfNotPresent; an
// image pinned by digest is IfNotPresent.
func defaultPullPolicy(image string) corev1.PullPolicy {
	if strings.Contains(image, "@") {
		return corev1.PullIfNotPresent
	}
	if tag := imageTag(image); tag == "" || tag == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// imageTag returns the tag of an image reference, "" when it has none. A
// colon before the last slash belongs to a registry port, not a tag.
func imageTag(image string) string {
	last := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return ""
}
