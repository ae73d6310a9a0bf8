package podshim

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

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

// namespaceOptions are the pod's namespaces, for the sandbox and each
// container.
func (s *Shim) namespaceOptions() *runtimeapi.NamespaceOption {
	spec := &s.pod.Spec
	ns := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
	if spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	switch {
	case spec.HostPID:
		ns.Pid = runtimeapi.NamespaceMode_NODE
	case spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace:
		ns.Pid = runtimeapi.NamespaceMode_POD
	}
	if spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	if spec.HostUsers != nil && !*spec.HostUsers {
		ns.UsernsOptions = userNamespace(s.pod.UID)
	}
	return ns
}

// userNamespace maps the pod's users to 65536 host IDs of their own, as the
// kubelet's user namespace manager does for hostUsers: false. The range is
// chosen from the pod's UID (1 of 32767 ranges above the first 65536 IDs),
// so that it stays the same when podshim adopts the pod.
func userNamespace(uid types.UID) *runtimeapi.UserNamespace {
	h := fnv.New32a()
	h.Write([]byte(uid))
	base := int64(h.Sum32()%32767+1) * 65536
	mapping := []*runtimeapi.IDMapping{{HostId: uint32(base), ContainerId: 0, Length: 65536}}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping}
}

func (s *Shim) privileged() bool {
	for _, list := range [][]corev1.Container{s.pod.Spec.InitContainers, s.pod.Spec.Containers} {
		for _, c := range list {
			if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
				return true
			}
		}
	}
	return false
}

func (s *Shim) sandboxSecurityContext() *runtimeapi.LinuxSandboxSecurityContext {
	sc := &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: s.namespaceOptions(),
		// The runtime refuses a privileged container in an unprivileged
		// sandbox, as for the kubelet.
		Privileged: s.privileged(),
	}
	if psc := s.pod.Spec.SecurityContext; psc != nil {
		sc.RunAsUser = int64Value(psc.RunAsUser)
		sc.RunAsGroup = int64Value(psc.RunAsGroup)
		sc.SupplementalGroups = s.supplementalGroups()
		sc.Seccomp = seccomp(psc.SeccompProfile)
		sc.SelinuxOptions = selinux(psc.SELinuxOptions)
	}
	return sc
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

// containerSecurityContext merges the pod's security context into the
// container's, the container's winning.
func (s *Shim) containerSecurityContext(c *corev1.Container) *runtimeapi.LinuxContainerSecurityContext {
	out := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: s.namespaceOptions()}
	var profile *corev1.SeccompProfile
	if psc := s.pod.Spec.SecurityContext; psc != nil {
		out.RunAsUser = int64Value(psc.RunAsUser)
		out.RunAsGroup = int64Value(psc.RunAsGroup)
		out.SupplementalGroups = s.supplementalGroups()
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

// supplementalGroups are the pod's, with its fsGroup, as the kubelet adds it.
func (s *Shim) supplementalGroups() []int64 {
	psc := s.pod.Spec.SecurityContext
	groups := append([]int64{}, psc.SupplementalGroups...)
	if psc.FSGroup != nil && !slices.Contains(groups, *psc.FSGroup) {
		groups = append(groups, *psc.FSGroup)
	}
	return groups
}

// fsGroup is the pod's fsGroup, or -1.
func (s *Shim) fsGroup() int {
	if psc := s.pod.Spec.SecurityContext; psc != nil && psc.FSGroup != nil {
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

// runAsNonRoot checks a container with runAsNonRoot, as the kubelet does:
// its user must be known to be non-zero, from its security context or its
// image. The error is the container's CreateContainerConfigError.
func (s *Shim) checkNonRoot(ctx context.Context, c *corev1.Container, sc *runtimeapi.LinuxContainerSecurityContext) error {
	want := false
	if psc := s.pod.Spec.SecurityContext; psc != nil && psc.RunAsNonRoot != nil {
		want = *psc.RunAsNonRoot
	}
	if csc := c.SecurityContext; csc != nil && csc.RunAsNonRoot != nil {
		want = *csc.RunAsNonRoot
	}
	if !want {
		return nil
	}
	if sc.RunAsUser != nil {
		if sc.RunAsUser.Value == 0 {
			return fmt.Errorf("container has runAsNonRoot and runAsUser 0")
		}
		return nil
	}
	st, err := s.rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: c.Image}, false)
	if err != nil {
		return fmt.Errorf("image status %s: %w", c.Image, err)
	}
	img := st.GetImage()
	switch {
	case img == nil:
		return fmt.Errorf("image %s not present", c.Image)
	case img.Uid != nil:
		if img.Uid.Value == 0 {
			return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", s.pod.Name+"_"+s.pod.Namespace+"("+string(s.pod.UID)+")", c.Name)
		}
		return nil
	case img.Username != "":
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root", img.Username)
	}
	return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", s.pod.Name+"_"+s.pod.Namespace+"("+string(s.pod.UID)+")", c.Name)
}
