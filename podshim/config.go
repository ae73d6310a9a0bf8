package podshim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRI labels and annotations, as the kubelet sets them, so that CRI tools and
// log collectors recognise podunit's pods.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
	// LabelManaged marks every sandbox and container podunit created.
	LabelManaged = "podunit.io/managed"

	annotationContainerHash = "io.kubernetes.container.hash"
	annotationRestartCount  = "io.kubernetes.container.restartCount"
	annotationGracePeriod   = "io.kubernetes.pod.terminationGracePeriod"
)

// DefaultLogRoot is where the runtime writes container logs, in the
// kubelet's layout: <root>/<namespace>_<name>_<uid>/<container>/<n>.log.
const DefaultLogRoot = "/var/log/pods"

func podLabels(pod *corev1.Pod) map[string]string {
	labels := make(map[string]string, len(pod.Labels)+4)
	for k, v := range pod.Labels {
		labels[k] = v
	}
	labels[LabelPodName] = pod.Name
	labels[LabelPodNamespace] = pod.Namespace
	labels[LabelPodUID] = string(pod.UID)
	labels[LabelManaged] = "true"
	return labels
}

func (s *Shim) newSandboxConfig(attempt uint32) *runtimeapi.PodSandboxConfig {
	pod := s.pod
	var ports []*runtimeapi.PortMapping
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			ports = append(ports, &runtimeapi.PortMapping{
				Protocol:      protocol(p.Protocol),
				ContainerPort: p.ContainerPort,
				HostPort:      p.HostPort,
				HostIp:        p.HostIP,
			})
		}
	}
	hostname, _ := s.hostnames()
	if pod.Spec.HostNetwork {
		hostname = "" // the host's UTS namespace: its own name
	}
	var sysctls map[string]string
	if sc := pod.Spec.SecurityContext; sc != nil && len(sc.Sysctls) > 0 {
		sysctls = make(map[string]string, len(sc.Sysctls))
		for _, sysctl := range sc.Sysctls {
			sysctls[sysctl.Name] = sysctl.Value
		}
	}
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt,
		},
		Hostname:     hostname,
		DnsConfig:    s.dnsConfig(),
		LogDirectory: filepath.Join(s.cfg.LogRoot, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		PortMappings: ports,
		Labels:       podLabels(pod),
		Annotations:  pod.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    s.cfg.CgroupParent,
			SecurityContext: s.sandboxSecurityContext(),
			Sysctls:         sysctls,
		},
	}
}

func protocol(p corev1.Protocol) runtimeapi.Protocol {
	if p == corev1.ProtocolUDP {
		return runtimeapi.Protocol_UDP
	}
	return runtimeapi.Protocol_TCP
}

// containerConfig is c's CRI config. An error is a config that cannot be
// met (a hostPath check, runAsNonRoot): the container's
// CreateContainerConfigError.
func (s *Shim) containerConfig(ctx context.Context, c *corev1.Container, imageRef string, attempt uint32) (*runtimeapi.ContainerConfig, error) {
	envs, env, err := s.containerEnv(c)
	if err != nil {
		return nil, err
	}
	mounts, err := s.containerMounts(c)
	if err != nil {
		return nil, err
	}
	if m, err := s.terminationMount(c, attempt); err != nil {
		return nil, fmt.Errorf("termination message file: %w", err)
	} else if m != nil {
		mounts = append(mounts, m)
	}
	security := s.containerSecurityContext(c)
	if err := s.checkNonRoot(ctx, c, security); err != nil {
		return nil, err
	}
	labels := podLabels(s.pod)
	labels[LabelContainerName] = c.Name
	return &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:      &runtimeapi.ImageSpec{Image: imageRef, UserSpecifiedImage: c.Image},
		Command:    expandAll(c.Command, env),
		Args:       expandAll(c.Args, env),
		WorkingDir: c.WorkingDir,
		Envs:       envs,
		Mounts:     mounts,
		Labels:     labels,
		Annotations: map[string]string{
			annotationContainerHash: containerHash(c),
			annotationRestartCount:  strconv.FormatUint(uint64(attempt), 10),
			annotationGracePeriod:   strconv.FormatInt(s.grace(), 10),
		},
		LogPath:   filepath.Join(c.Name, fmt.Sprintf("%d.log", attempt)),
		Stdin:     c.Stdin,
		StdinOnce: c.StdinOnce,
		Tty:       c.TTY,
		// Runtimes that know it stop with it; for the others podshim sends
		// it itself (stopWithOwnSignal).
		StopSignal: criStopSignal(c),
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       s.linuxResources(c),
			SecurityContext: security,
		},
	}, nil
}

// containerEnv is c's environment as the kubelet makes it: the envFrom
// sources in order (each key sorted), then the env entries, which win and
// may refer to earlier variables as $(VAR). It returns the list and the
// final values by name.
func (s *Shim) containerEnv(c *corev1.Container) ([]*runtimeapi.KeyValue, map[string]string, error) {
	var names []string
	env := map[string]string{}
	set := func(name, value string) {
		if _, ok := env[name]; !ok {
			names = append(names, name)
		}
		env[name] = value
	}
	for _, from := range c.EnvFrom {
		secret, name := from.SecretRef != nil, ""
		if secret {
			name = from.SecretRef.Name
		} else {
			name = from.ConfigMapRef.Name
		}
		data, _ := s.cfg.Objects.Lookup(secret, name) // missing and optional: nothing
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !isEnvVarName(from.Prefix + k) {
				s.log.Warn("skipping a key that is not a valid environment variable name", "container", c.Name, "source", name, "key", from.Prefix+k)
				continue
			}
			set(from.Prefix+k, string(data[k]))
		}
	}
	for _, e := range c.Env {
		v := expand(e.Value, env)
		if vf := e.ValueFrom; vf != nil {
			switch {
			case vf.FieldRef != nil:
				v = s.fieldValue(vf.FieldRef.FieldPath)
			case vf.ResourceFieldRef != nil:
				var err error
				if v, err = s.resourceValue(vf.ResourceFieldRef, c); err != nil {
					return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
				}
			case vf.ConfigMapKeyRef != nil, vf.SecretKeyRef != nil:
				secret, name, key := vf.SecretKeyRef != nil, "", ""
				if secret {
					name, key = vf.SecretKeyRef.Name, vf.SecretKeyRef.Key
				} else {
					name, key = vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key
				}
				data, _ := s.cfg.Objects.Lookup(secret, name)
				value, ok := data[key]
				if !ok {
					continue // optional and missing (sync checked the others)
				}
				v = string(value)
			}
		}
		set(e.Name, v)
	}
	envs := make([]*runtimeapi.KeyValue, len(names))
	for i, n := range names {
		envs[i] = &runtimeapi.KeyValue{Key: n, Value: []byte(env[n])}
	}
	return envs, env, nil
}

// isEnvVarName is Kubernetes' rule for variable names from envFrom.
func isEnvVarName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '.' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// containerHash identifies a container's spec: a container whose hash
// annotation differs from its spec's is recreated.
func containerHash(c *corev1.Container) string {
	b, _ := json.Marshal(c) // a Container always encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// StartConfigs are the CRI configs podshim makes for pod's sandbox and
// containers at their first start (images not yet resolved: each
// container's Image is the one its spec names), with the pod's directory
// (/etc/hosts, volumes) prepared. A benchmark passes them to the runtime
// directly to measure the floor podshim is compared with.
func StartConfigs(ctx context.Context, pod *corev1.Pod, cfg Config, rt Runtime) (*runtimeapi.PodSandboxConfig, []*runtimeapi.ContainerConfig, error) {
	s := New(pod, cfg, rt, func(string) error { return nil }, slog.New(slog.DiscardHandler))
	s.sandboxConfig = s.newSandboxConfig(0)
	if err := s.setupPodDir(); err != nil {
		return nil, nil, err
	}
	var out []*runtimeapi.ContainerConfig
	for _, c := range s.containers {
		cc, err := s.containerConfig(ctx, c.spec, c.spec.Image, 0)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, cc)
	}
	return s.sandboxConfig, out, nil
}
