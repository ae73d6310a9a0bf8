package criconfig

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Container is c's config for an attempt, with image the image reference
// the runtime resolved (or the spec's before it is pulled). An error is a
// config that cannot be made (a resourceFieldRef naming no container): the
// container's CreateContainerConfigError.
//
// Its mounts name host paths as the pod's layout has them: a subPath is
// joined to its volume, not resolved, and the termination-message file is
// not made; podshim does both (and checks hostPath types) before passing
// the config to the runtime.
func Container(in *Input, c *corev1.Container, image string, attempt uint32) (*runtimeapi.ContainerConfig, error) {
	envs, env, err := in.containerEnv(c)
	if err != nil {
		return nil, err
	}
	mounts := in.containerMounts(c)
	if m := in.terminationMount(c, attempt); m != nil {
		mounts = append(mounts, m)
	}
	labels := PodLabels(in.Pod)
	labels[LabelContainerName] = c.Name
	return &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:      &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: c.Image},
		Command:    expandAll(c.Command, env),
		Args:       expandAll(c.Args, env),
		WorkingDir: c.WorkingDir,
		Envs:       envs,
		Mounts:     mounts,
		Labels:     labels,
		Annotations: map[string]string{
			AnnotationContainerHash: ContainerHash(c),
			annotationRestartCount:  strconv.FormatUint(uint64(attempt), 10),
			annotationGracePeriod:   strconv.FormatInt(GracePeriod(in.Pod), 10),
		},
		LogPath:   filepath.Join(c.Name, fmt.Sprintf("%d.log", attempt)),
		Stdin:     c.Stdin,
		StdinOnce: c.StdinOnce,
		Tty:       c.TTY,
		// Runtimes that know it stop with it; for the others podshim sends
		// it itself.
		StopSignal: StopSignal(c),
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       in.linuxResources(c),
			SecurityContext: in.containerSecurityContext(c),
		},
	}, nil
}

// StopSignal is a container's lifecycle.stopSignal in the CRI's terms;
// SIGNAL_RUNTIME_DEFAULT (the image's STOPSIGNAL, else SIGTERM) when unset.
func StopSignal(c *corev1.Container) runtimeapi.Signal {
	if c.Lifecycle == nil || c.Lifecycle.StopSignal == nil {
		return runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT
	}
	return runtimeapi.Signal(runtimeapi.Signal_value["SIGNAL_"+string(*c.Lifecycle.StopSignal)])
}

// ContainerHash identifies a container's spec: a container whose hash
// annotation differs from its spec's is recreated.
func ContainerHash(c *corev1.Container) string {
	b, _ := json.Marshal(c) // a Container always encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// containerEnv is c's environment as the kubelet makes it: the envFrom
// sources in order (each key sorted), then the env entries, which win and
// may refer to earlier variables or to the Service variables as $(VAR),
// then the Service variables (ServiceEnv) that neither declared. It
// returns the list and the final values by name.
func (in *Input) containerEnv(c *corev1.Container) ([]*runtimeapi.KeyValue, map[string]string, error) {
	var names []string
	env := map[string]string{}
	serviceEnv := ServiceEnv(in.Services, in.Pod.Namespace, in.Pod.Spec.EnableServiceLinks == nil || *in.Pod.Spec.EnableServiceLinks)
	services := make(map[string]string, len(serviceEnv))
	for _, e := range serviceEnv {
		services[e.Name] = e.Value
	}
	lookup := func(name string) (string, bool) {
		if v, ok := env[name]; ok {
			return v, ok
		}
		v, ok := services[name]
		return v, ok
	}
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
		data, _ := in.Objects.Lookup(secret, name) // missing and optional: nothing
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !isEnvVarName(from.Prefix + k) {
				in.log().Warn("skipping a key that is not a valid environment variable name", "container", c.Name, "source", name, "key", from.Prefix+k)
				continue
			}
			set(from.Prefix+k, string(data[k]))
		}
	}
	for _, e := range c.Env {
		v := expand(e.Value, lookup)
		if vf := e.ValueFrom; vf != nil {
			switch {
			case vf.FieldRef != nil:
				v = in.FieldValue(vf.FieldRef.FieldPath)
			case vf.ResourceFieldRef != nil:
				var err error
				if v, err = in.ResourceValue(vf.ResourceFieldRef, c); err != nil {
					return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
				}
			case vf.ConfigMapKeyRef != nil, vf.SecretKeyRef != nil:
				secret, name, key := vf.SecretKeyRef != nil, "", ""
				if secret {
					name, key = vf.SecretKeyRef.Name, vf.SecretKeyRef.Key
				} else {
					name, key = vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key
				}
				data, _ := in.Objects.Lookup(secret, name)
				value, ok := data[key]
				if !ok {
					continue // optional and missing (sync checked the others)
				}
				v = string(value)
			}
		}
		set(e.Name, v)
	}
	for _, e := range serviceEnv {
		if _, declared := env[e.Name]; !declared {
			set(e.Name, e.Value)
		}
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

// Expand replaces $(VAR) in a command or argument with the value of the
// container's environment variable VAR, as the kubelet does: a reference to
// an undefined variable is left as written, and $$ is a literal $, so
// $$(VAR) stays $(VAR).
func Expand(s string, env map[string]string) string {
	return expand(s, func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
}

// expand is Expand with the variables' values from lookup.
func expand(s string, lookup func(name string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func expandAll(list []string, env map[string]string) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = Expand(s, env)
	}
	return out
}

// containerMounts are the CRI mounts of c: its volumeMounts and the pod's
// /etc/hosts.
func (in *Input) containerMounts(c *corev1.Container) []*runtimeapi.Mount {
	volumes := map[string]*corev1.Volume{}
	for i := range in.Pod.Spec.Volumes {
		volumes[in.Pod.Spec.Volumes[i].Name] = &in.Pod.Spec.Volumes[i]
	}
	var mounts []*runtimeapi.Mount
	hostsMounted := false
	for _, m := range c.VolumeMounts {
		v := volumes[m.Name]
		if v.Image != nil {
			// The runtime mounts the image itself, read-only, as for the
			// kubelet; subPath is a directory inside it.
			image := cmp.Or(in.ImageVolumes[v.Name], v.Image.Reference)
			mounts = append(mounts, &runtimeapi.Mount{ContainerPath: m.MountPath, Readonly: true,
				Image: &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: v.Image.Reference}, ImageSubPath: m.SubPath})
			continue
		}
		root, readOnly := in.VolumeRoot(v), m.ReadOnly
		switch {
		case v.HostPath != nil, v.EmptyDir != nil:
		case v.PersistentVolumeClaim != nil:
			readOnly = readOnly || v.PersistentVolumeClaim.ReadOnly
		default: // downwardAPI, configMap, secret, projected: read-only, as in Kubernetes
			readOnly = true
		}
		host := root
		if m.SubPath != "" {
			host = filepath.Join(root, m.SubPath)
		}
		if filepath.Clean(m.MountPath) == "/etc/hosts" {
			hostsMounted = true
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: host, Readonly: readOnly,
			Propagation: propagation(m.MountPropagation)})
	}
	if !hostsMounted {
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: "/etc/hosts", HostPath: EtcHostsPath(in.Paths.PodDir)})
	}
	return mounts
}

// VolumeRoot is where volume v is on the host.
func (in *Input) VolumeRoot(v *corev1.Volume) string {
	switch {
	case v.HostPath != nil:
		return v.HostPath.Path
	case v.PersistentVolumeClaim != nil:
		return ClaimDir(in.Paths.VolumeRoot, in.Pod.Namespace, v.PersistentVolumeClaim.ClaimName)
	}
	return VolumeDir(in.Paths.PodDir, Plugin(v), v.Name)
}

// propagation is a volume mount's propagation in the CRI's terms: the
// runtime makes the mount rslave (HostToContainer) or rshared
// (Bidirectional), as it does for the kubelet.
func propagation(p *corev1.MountPropagationMode) runtimeapi.MountPropagation {
	switch {
	case p == nil:
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE
	case *p == corev1.MountPropagationHostToContainer:
		return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
	case *p == corev1.MountPropagationBidirectional:
		return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
	}
	return runtimeapi.MountPropagation_PROPAGATION_PRIVATE
}

// terminationMount mounts the attempt's termination-message file where the
// container writes its message, unless a volume is mounted there.
func (in *Input) terminationMount(c *corev1.Container, attempt uint32) *runtimeapi.Mount {
	path := TerminationMessagePath(c)
	for _, m := range c.VolumeMounts {
		if filepath.Clean(m.MountPath) == filepath.Clean(path) {
			return nil
		}
	}
	return &runtimeapi.Mount{ContainerPath: path, HostPath: TerminationLog(in.Paths.PodDir, c.Name, attempt)}
}

// The paths the kubelet masks and makes read-only in every unprivileged
// container (k8s.io/kubernetes/pkg/securitycontext); the runtime applies
// none unless told.
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// containerSecurityContext merges the pod's security context into the
// container's, the container's winning.
func (in *Input) containerSecurityContext(c *corev1.Container) *runtimeapi.LinuxContainerSecurityContext {
	out := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: in.namespaceOptions()}
	var profile *corev1.SeccompProfile
	if psc := in.Pod.Spec.SecurityContext; psc != nil {
		out.RunAsUser = int64Value(psc.RunAsUser)
		out.RunAsGroup = int64Value(psc.RunAsGroup)
		out.SupplementalGroups = supplementalGroups(in.Pod)
		profile = psc.SeccompProfile
		out.SelinuxOptions = selinux(psc.SELinuxOptions)
	}
	if csc := c.SecurityContext; csc != nil {
		if csc.RunAsUser != nil {
			out.RunAsUser = int64Value(csc.RunAsUser)
		}
		if csc.RunAsGroup != nil {
			out.RunAsGroup = int64Value(csc.RunAsGroup)
		}
		if csc.SeccompProfile != nil {
			profile = csc.SeccompProfile
		}
		if csc.SELinuxOptions != nil {
			out.SelinuxOptions = selinux(csc.SELinuxOptions)
		}
		out.Privileged = csc.Privileged != nil && *csc.Privileged
		out.ReadonlyRootfs = csc.ReadOnlyRootFilesystem != nil && *csc.ReadOnlyRootFilesystem
		out.NoNewPrivs = csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation
		if caps := csc.Capabilities; caps != nil {
			out.Capabilities = &runtimeapi.Capability{
				AddCapabilities:  capabilityNames(caps.Add),
				DropCapabilities: capabilityNames(caps.Drop),
			}
		}
	}
	out.Seccomp = seccomp(profile)
	if !out.Privileged {
		out.MaskedPaths = defaultMaskedPaths
		out.ReadonlyPaths = defaultReadonlyPaths
	}
	return out
}

// selinux is an SELinux context in the CRI's terms; the runtime labels the
// container with it where SELinux is enabled and ignores it elsewhere, as
// for the kubelet.
func selinux(o *corev1.SELinuxOptions) *runtimeapi.SELinuxOption {
	if o == nil {
		return nil
	}
	return &runtimeapi.SELinuxOption{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
}

// supplementalGroups are the pod's, with its fsGroup, as the kubelet adds it.
func supplementalGroups(pod *corev1.Pod) []int64 {
	psc := pod.Spec.SecurityContext
	groups := append([]int64{}, psc.SupplementalGroups...)
	if psc.FSGroup != nil && !slices.Contains(groups, *psc.FSGroup) {
		groups = append(groups, *psc.FSGroup)
	}
	return groups
}

// FSGroup is the pod's fsGroup, or -1.
func FSGroup(pod *corev1.Pod) int {
	if psc := pod.Spec.SecurityContext; psc != nil && psc.FSGroup != nil {
		return int(*psc.FSGroup)
	}
	return -1
}

// capabilityNames drops the CAP_ prefix, which the runtime adds itself.
func capabilityNames(caps []corev1.Capability) []string {
	out := make([]string, len(caps))
	for i, c := range caps {
		out[i] = strings.TrimPrefix(string(c), "CAP_")
	}
	return out
}

func seccomp(p *corev1.SeccompProfile) *runtimeapi.SecurityProfile {
	if p == nil {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	}
	switch p.Type {
	case corev1.SeccompProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	case corev1.SeccompProfileTypeLocalhost:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: *p.LocalhostProfile}
	}
	return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
}

func int64Value(v *int64) *runtimeapi.Int64Value {
	if v == nil {
		return nil
	}
	return &runtimeapi.Int64Value{Value: *v}
}
