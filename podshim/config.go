package podshim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
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
	envs := make([]*runtimeapi.KeyValue, 0, len(c.Env))
	env := make(map[string]string, len(c.Env))
	for _, e := range c.Env {
		// Later variables may refer to earlier ones, as in Kubernetes.
		v := expand(e.Value, env)
		if vf := e.ValueFrom; vf != nil {
			if vf.FieldRef != nil {
				v = s.fieldValue(vf.FieldRef.FieldPath)
			} else if vf.ResourceFieldRef != nil {
				var err error
				if v, err = s.resourceValue(vf.ResourceFieldRef, c); err != nil {
					return nil, fmt.Errorf("env %s: %w", e.Name, err)
				}
			}
		}
		env[e.Name] = v
		envs = append(envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(v)})
	}
	mounts, err := s.containerMounts(c)
	if err != nil {
		return nil, err
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
		LogPath: filepath.Join(c.Name, fmt.Sprintf("%d.log", attempt)),
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       s.linuxResources(c),
			SecurityContext: security,
		},
	}, nil
}

// containerHash identifies a container's spec: a container whose hash
// annotation differs from its spec's is recreated.
func containerHash(c *corev1.Container) string {
	b, _ := json.Marshal(c) // a Container always encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
