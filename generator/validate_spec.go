package generator

import (
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// failFunc reports one invalid field.
type failFunc func(path, format string, args ...any)

// Limits of a resolv.conf, as the kubelet enforces them.
const (
	maxDNSNameservers = 3
	maxDNSSearches    = 32
)

// validatePodLevel checks the pod-wide settings: namespaces, names, DNS,
// sysctls, security context and volumes.
func validatePodLevel(spec *corev1.PodSpec, fail, note failFunc) {
	if spec.HostPID && spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace {
		fail("spec.shareProcessNamespace", "cannot be combined with hostPID")
	}
	if d := spec.ActiveDeadlineSeconds; d != nil && *d < 1 {
		fail("spec.activeDeadlineSeconds", "must be greater than 0, got %d", *d)
	}
	if spec.Hostname != "" {
		for _, msg := range validation.IsDNS1123Label(spec.Hostname) {
			fail("spec.hostname", "%q: %s", spec.Hostname, msg)
		}
	}
	if spec.Subdomain != "" {
		for _, msg := range validation.IsDNS1123Label(spec.Subdomain) {
			fail("spec.subdomain", "%q: %s", spec.Subdomain, msg)
		}
	}
	for i, a := range spec.HostAliases {
		p := fmt.Sprintf("spec.hostAliases[%d]", i)
		if net.ParseIP(a.IP) == nil {
			fail(p+".ip", "%q: must be an IP address", a.IP)
		}
		if len(a.Hostnames) == 0 {
			fail(p+".hostnames", "required: at least one name")
		}
		for j, h := range a.Hostnames {
			for _, msg := range validation.IsDNS1123Subdomain(h) {
				fail(fmt.Sprintf("%s.hostnames[%d]", p, j), "%q: %s", h, msg)
			}
		}
	}
	validateDNS(spec, fail)
	if sc := spec.SecurityContext; sc != nil {
		validateSysctls(spec, sc.Sysctls, fail)
		validateIDs("spec.securityContext", sc.RunAsUser, sc.RunAsGroup, fail)
		if g := sc.FSGroup; g != nil && *g < 0 {
			fail("spec.securityContext.fsGroup", "%d: must be 0 or more", *g)
		}
		for i, g := range sc.SupplementalGroups {
			if g < 0 {
				fail(fmt.Sprintf("spec.securityContext.supplementalGroups[%d]", i), "%d: must be 0 or more", g)
			}
		}
		validateSeccomp("spec.securityContext.seccompProfile", sc.SeccompProfile, fail)
	}
	validateVolumes(spec, fail, note)
	if r := spec.Resources; r != nil {
		for _, list := range []struct {
			name string
			rl   corev1.ResourceList
		}{{"limits", r.Limits}, {"requests", r.Requests}} {
			for name, q := range list.rl {
				rp := fmt.Sprintf("spec.resources.%s[%s]", list.name, name)
				switch {
				case !supportedResources[name]:
					fail(rp, "not supported by podunit for a whole pod (cpu and memory are)")
				case q.Sign() < 0:
					fail(rp, "%s: must be 0 or more", q.String())
				case tooLarge(name, q):
					fail(rp, "%s: too large (more than %s)", q.String(), maxQuantity(name))
				}
			}
		}
		for name, req := range r.Requests {
			if limit, ok := r.Limits[name]; ok && req.Cmp(limit) > 0 {
				fail(fmt.Sprintf("spec.resources.requests[%s]", name), "%s: must not be more than the limit %s", req.String(), limit.String())
			}
		}
		for i, c := range spec.Containers {
			for name, limit := range c.Resources.Limits {
				if podLimit, ok := r.Limits[name]; ok && limit.Cmp(podLimit) > 0 {
					fail(fmt.Sprintf("spec.containers[%d].resources.limits[%s]", i, name), "%s: must not be more than the pod's limit %s", limit.String(), podLimit.String())
				}
			}
		}
	}
}

func validateDNS(spec *corev1.PodSpec, fail failFunc) {
	switch spec.DNSPolicy {
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, corev1.DNSDefault:
	case corev1.DNSNone:
		if spec.DNSConfig == nil || len(spec.DNSConfig.Nameservers) == 0 {
			fail("spec.dnsConfig.nameservers", "required with dnsPolicy None: at least one name server")
		}
	default:
		fail("spec.dnsPolicy", "%q: must be ClusterFirst, ClusterFirstWithHostNet, Default or None%s", spec.DNSPolicy, caseHint(string(spec.DNSPolicy), "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"))
	}
	c := spec.DNSConfig
	if c == nil {
		return
	}
	if len(c.Nameservers) > maxDNSNameservers {
		fail("spec.dnsConfig.nameservers", "%d name servers: at most %d", len(c.Nameservers), maxDNSNameservers)
	}
	for i, ns := range c.Nameservers {
		if net.ParseIP(ns) == nil {
			fail(fmt.Sprintf("spec.dnsConfig.nameservers[%d]", i), "%q: must be an IP address", ns)
		}
	}
	if len(c.Searches) > maxDNSSearches {
		fail("spec.dnsConfig.searches", "%d search domains: at most %d", len(c.Searches), maxDNSSearches)
	}
	for i, s := range c.Searches {
		for _, msg := range validation.IsDNS1123Subdomain(strings.TrimSuffix(s, ".")) {
			fail(fmt.Sprintf("spec.dnsConfig.searches[%d]", i), "%q: %s", s, msg)
		}
	}
	for i, o := range c.Options {
		if o.Name == "" {
			fail(fmt.Sprintf("spec.dnsConfig.options[%d].name", i), "required")
		}
	}
}

// sysctlName is a sysctl in dotted (or slashed) form.
var sysctlName = regexp.MustCompile(`^[a-z0-9]([-_a-z0-9]*[a-z0-9])?([./][a-z0-9]([-_a-z0-9]*[a-z0-9])?)*$`)

// validateSysctls accepts the namespaced sysctls only: the others would
// change the host.
func validateSysctls(spec *corev1.PodSpec, sysctls []corev1.Sysctl, fail failFunc) {
	seen := map[string]bool{}
	for i, s := range sysctls {
		p := fmt.Sprintf("spec.securityContext.sysctls[%d].name", i)
		name := strings.ReplaceAll(s.Name, "/", ".")
		ipc := strings.HasPrefix(name, "kernel.shm") || strings.HasPrefix(name, "kernel.msg") ||
			name == "kernel.sem" || strings.HasPrefix(name, "fs.mqueue.")
		net := strings.HasPrefix(name, "net.")
		switch {
		case !sysctlName.MatchString(s.Name):
			fail(p, "%q: not a sysctl name", s.Name)
		case !ipc && !net:
			fail(p, "%q: not a namespaced sysctl (allowed: kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*)", s.Name)
		case net && spec.HostNetwork:
			fail(p, "%q: would change the host's network settings (hostNetwork is set)", s.Name)
		case ipc && spec.HostIPC:
			fail(p, "%q: would change the host's IPC settings (hostIPC is set)", s.Name)
		case seen[name]:
			fail(p, "%q: set twice", s.Name)
		}
		seen[name] = true
	}
}

func validateIDs(prefix string, user, group *int64, fail failFunc) {
	if user != nil && *user < 0 {
		fail(prefix+".runAsUser", "%d: must be 0 or more", *user)
	}
	if group != nil && *group < 0 {
		fail(prefix+".runAsGroup", "%d: must be 0 or more", *group)
	}
}

func validateSeccomp(prefix string, p *corev1.SeccompProfile, fail failFunc) {
	if p == nil {
		return
	}
	switch p.Type {
	case corev1.SeccompProfileTypeUnconfined, corev1.SeccompProfileTypeRuntimeDefault:
		if p.LocalhostProfile != nil {
			fail(prefix+".localhostProfile", "only with type Localhost")
		}
	case corev1.SeccompProfileTypeLocalhost:
		if p.LocalhostProfile == nil || *p.LocalhostProfile == "" {
			fail(prefix+".localhostProfile", "required with type Localhost")
		} else if !isRelativeClean(*p.LocalhostProfile) {
			fail(prefix+".localhostProfile", "%q: must be a relative path without '..'", *p.LocalhostProfile)
		}
	default:
		fail(prefix+".type", "%q: must be Unconfined, RuntimeDefault or Localhost%s", p.Type, caseHint(string(p.Type), "Unconfined", "RuntimeDefault", "Localhost"))
	}
}

// isRelativeClean reports whether p is a relative path that stays inside
// its base.
func isRelativeClean(p string) bool {
	if p == "" || path.IsAbs(p) {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return false
		}
	}
	return true
}

var hostPathTypes = map[corev1.HostPathType]bool{
	corev1.HostPathUnset: true, corev1.HostPathDirectoryOrCreate: true, corev1.HostPathDirectory: true,
	corev1.HostPathFileOrCreate: true, corev1.HostPathFile: true, corev1.HostPathSocket: true,
	corev1.HostPathCharDev: true, corev1.HostPathBlockDev: true,
}

func validateVolumes(spec *corev1.PodSpec, fail, note failFunc) {
	names := map[string]bool{}
	for i, v := range spec.Volumes {
		p := fmt.Sprintf("spec.volumes[%d]", i)
		validateVolumeName(p+".name", v.Name, names, fail, note)
		n := 0
		for _, set := range []bool{v.HostPath != nil, v.EmptyDir != nil, v.DownwardAPI != nil, v.ConfigMap != nil, v.Secret != nil, v.Projected != nil, v.PersistentVolumeClaim != nil, v.Image != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			fail(p, "must have exactly one of hostPath, emptyDir, downwardAPI, configMap, secret, projected, persistentVolumeClaim, image")
			continue
		}
		switch {
		case v.HostPath != nil:
			if !path.IsAbs(v.HostPath.Path) {
				fail(p+".hostPath.path", "%q: must be an absolute path", v.HostPath.Path)
			}
			if t := *v.HostPath.Type; !hostPathTypes[t] {
				fail(p+".hostPath.type", "%q: must be \"\", DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice or BlockDevice%s", t, caseHint(string(t), "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"))
			}
		case v.EmptyDir != nil:
			switch v.EmptyDir.Medium {
			case corev1.StorageMediumDefault:
				if l := v.EmptyDir.SizeLimit; l != nil {
					note(p+".emptyDir.sizeLimit", "%s: not enforced on disk (the kubelet evicts a pod over it; podunit evicts no pods): accepted, the volume is not limited", l)
				}
			case corev1.StorageMediumMemory:
				if l := v.EmptyDir.SizeLimit; l != nil && l.Sign() <= 0 {
					fail(p+".emptyDir.sizeLimit", "%s: must be more than 0", l)
				}
			default:
				fail(p+".emptyDir.medium", "%q: must be \"\" or Memory%s", v.EmptyDir.Medium, caseHint(string(v.EmptyDir.Medium), "Memory"))
			}
		case v.PersistentVolumeClaim != nil:
			validateClaimName(p+".persistentVolumeClaim.claimName", v.PersistentVolumeClaim.ClaimName, fail, note)
		case v.Image != nil:
			if strings.TrimSpace(v.Image.Reference) == "" {
				fail(p+".image.reference", "required")
			}
			switch v.Image.PullPolicy {
			case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
			default:
				fail(p+".image.pullPolicy", "%q: must be Always, IfNotPresent or Never%s", v.Image.PullPolicy, caseHint(string(v.Image.PullPolicy), "Always", "IfNotPresent", "Never"))
			}
		case v.ConfigMap != nil:
			validateObjectName(p+".configMap.name", v.ConfigMap.Name, fail)
			validateMode(p+".configMap.defaultMode", v.ConfigMap.DefaultMode, fail)
			validateItems(p+".configMap", v.ConfigMap.Items, map[string]bool{}, fail)
		case v.Secret != nil:
			validateObjectName(p+".secret.secretName", v.Secret.SecretName, fail)
			validateMode(p+".secret.defaultMode", v.Secret.DefaultMode, fail)
			validateItems(p+".secret", v.Secret.Items, map[string]bool{}, fail)
		case v.Projected != nil:
			validateMode(p+".projected.defaultMode", v.Projected.DefaultMode, fail)
			files := map[string]bool{}
			for j, src := range v.Projected.Sources {
				sp := fmt.Sprintf("%s.projected.sources[%d]", p, j)
				switch {
				case src.ConfigMap == nil && src.Secret == nil && src.DownwardAPI == nil && src.ClusterTrustBundle == nil && src.PodCertificate == nil:
					// A serviceAccountToken source, left out with a notice.
				case src.ConfigMap != nil && src.Secret == nil && src.DownwardAPI == nil && src.ServiceAccountToken == nil && src.ClusterTrustBundle == nil:
					validateObjectName(sp+".configMap.name", src.ConfigMap.Name, fail)
					validateItems(sp+".configMap", src.ConfigMap.Items, files, fail)
				case src.Secret != nil && src.ConfigMap == nil && src.DownwardAPI == nil:
					validateObjectName(sp+".secret.name", src.Secret.Name, fail)
					validateItems(sp+".secret", src.Secret.Items, files, fail)
				case src.DownwardAPI != nil && src.ConfigMap == nil && src.Secret == nil:
					validateDownwardItems(sp+".downwardAPI", src.DownwardAPI.Items, files, spec, fail)
				default:
					fail(sp, "must have exactly one of configMap, secret, downwardAPI")
				}
			}
		case v.DownwardAPI != nil:
			if m := *v.DownwardAPI.DefaultMode; m < 0 || m > 0777 {
				fail(p+".downwardAPI.defaultMode", "%#o: must be between 0 and 0777", m)
			}
			validateDownwardItems(p+".downwardAPI", v.DownwardAPI.Items, map[string]bool{}, spec, fail)
		}
	}
}

// validateUniqueName checks the name of a pod's container or volume: a
// DNS-1123 label, not used before (names holds those seen).
func validateUniqueName(p, what, name string, names map[string]bool, fail failFunc) {
	switch {
	case name == "":
		fail(p, "required")
	case names[name]:
		fail(p, "%q is used by another %s of this pod", name, what)
	default:
		for _, msg := range validation.IsDNS1123Label(name) {
			fail(p, "%q: %s", name, msg)
		}
	}
	names[name] = true
}

// podmanVolumeName is what podman allows in a volume's name, which `podman
// kube generate` writes into volume and claim names: more than Kubernetes
// does ("_", ".", capitals), but never a "/" or a leading dot.
var podmanVolumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// validateVolumeName checks a pod volume's name. One that Kubernetes
// refuses but podman writes (from a podman volume named my_data, its
// volume my_data-pvc) is accepted with a notice giving the rename that
// would make the file valid on a cluster too.
func validateVolumeName(p, name string, names map[string]bool, fail, note failFunc) {
	if name == "" || names[name] || len(validation.IsDNS1123Label(name)) == 0 || !podmanName(name, validation.DNS1123LabelMaxLength) {
		validateUniqueName(p, "volume", name, names, fail)
		return
	}
	names[name] = true
	note(p, "%q is not a DNS-1123 label, which Kubernetes requires; podman writes such names and accepts them, and so does podunit (to run the file on a cluster too, rename it %s, in volumeMounts too)", name, dnsRename(name))
}

// validateClaimName checks a claimName; as in validateVolumeName, a podman
// volume's name is accepted with a notice. The claim's directory has the
// name as it is (no "/" can be in it).
func validateClaimName(p, name string, fail, note failFunc) {
	if name == "" || len(validation.IsDNS1123Subdomain(name)) == 0 || !podmanName(name, validation.DNS1123SubdomainMaxLength) {
		validateObjectName(p, name, fail)
		return
	}
	note(p, "%q is not a DNS-1123 subdomain, which Kubernetes requires; podman writes its volumes' names so and accepts them, and so does podunit (to run the file on a cluster too, rename it %s; its directory is named after it)", name, dnsRename(name))
}

// CheckClaimName says whether podunit accepts name as a claimName (it
// does what validateClaimName accepts) and, for a podman volume's name
// that Kubernetes refuses, the DNS-1123 rename (else "").
func CheckClaimName(name string) (rename string, err error) {
	if len(validation.IsDNS1123Subdomain(name)) == 0 {
		return "", nil
	}
	if name != "" && podmanName(name, validation.DNS1123SubdomainMaxLength) {
		return dnsRename(name), nil
	}
	if name == "" {
		return "", errors.New("required")
	}
	return "", errors.New(strings.Join(validation.IsDNS1123Subdomain(name), "; "))
}

func podmanName(name string, max int) bool {
	return len(name) <= max && podmanVolumeName.MatchString(name)
}

// dnsRename is name made a DNS-1123 label: lower case, "-" for "_" and
// ".", no "-" at either end.
func dnsRename(name string) string {
	r := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
	return strings.Trim(r, "-")
}

func validateObjectName(p, name string, fail failFunc) {
	if name == "" {
		fail(p, "required")
		return
	}
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		fail(p, "%q: %s", name, msg)
	}
}

func validateMode(p string, mode *int32, fail failFunc) {
	if mode != nil && (*mode < 0 || *mode > 0777) {
		fail(p, "%#o: must be between 0 and 0777", *mode)
	}
}

// validateItems checks the items of a ConfigMap or Secret source; files
// holds the paths already used in the volume.
func validateItems(p string, items []corev1.KeyToPath, files map[string]bool, fail failFunc) {
	for j, item := range items {
		ip := fmt.Sprintf("%s.items[%d]", p, j)
		if item.Key == "" {
			fail(ip+".key", "required")
		}
		validateItemPath(ip+".path", item.Path, files, fail)
		validateMode(ip+".mode", item.Mode, fail)
	}
}

func validateItemPath(p, file string, files map[string]bool, fail failFunc) {
	if !isRelativeClean(file) {
		fail(p, "%q: must be a relative path without '..'", file)
	} else if files[path.Clean(file)] {
		fail(p, "%q: used by another item", file)
	}
	files[path.Clean(file)] = true
}

func validateDownwardItems(p string, items []corev1.DownwardAPIVolumeFile, files map[string]bool, spec *corev1.PodSpec, fail failFunc) {
	for j, item := range items {
		ip := fmt.Sprintf("%s.items[%d]", p, j)
		validateItemPath(ip+".path", item.Path, files, fail)
		validateMode(ip+".mode", item.Mode, fail)
		switch {
		case (item.FieldRef == nil) == (item.ResourceFieldRef == nil):
			fail(ip, "must have exactly one of fieldRef, resourceFieldRef")
		case item.FieldRef != nil:
			validateFieldRef(ip+".fieldRef", item.FieldRef, true, fail)
		default:
			if item.ResourceFieldRef.ContainerName == "" {
				fail(ip+".resourceFieldRef.containerName", "required in a volume")
			}
			validateResourceFieldRef(ip+".resourceFieldRef", item.ResourceFieldRef, spec, fail)
		}
	}
}

// labelOrAnnotation matches metadata.labels['key'] and
// metadata.annotations['key'].
var labelOrAnnotation = regexp.MustCompile(`^metadata\.(labels|annotations)\['([^']+)'\]$`)

// envFieldPaths are the fieldRef paths allowed in env; volumes allow the
// metadata ones plus the whole label and annotation maps.
var envFieldPaths = map[string]bool{
	"metadata.name": true, "metadata.namespace": true, "metadata.uid": true,
	"spec.nodeName": true, "spec.serviceAccountName": true,
	"status.podIP": true, "status.podIPs": true, "status.hostIP": true, "status.hostIPs": true,
}

var volumeFieldPaths = map[string]bool{
	"metadata.name": true, "metadata.namespace": true, "metadata.uid": true,
	"metadata.labels": true, "metadata.annotations": true,
}

func validateFieldRef(p string, f *corev1.ObjectFieldSelector, volume bool, fail failFunc) {
	if f.APIVersion != "v1" {
		fail(p+".apiVersion", "%q: only v1", f.APIVersion)
	}
	allowed := envFieldPaths
	if volume {
		allowed = volumeFieldPaths
	}
	if allowed[f.FieldPath] {
		return
	}
	if m := labelOrAnnotation.FindStringSubmatch(f.FieldPath); m != nil {
		for _, msg := range validation.IsQualifiedName(strings.ToLower(m[2])) {
			fail(p+".fieldPath", "%q: %s", f.FieldPath, msg)
		}
		return
	}
	fail(p+".fieldPath", "%q: not supported (one of %s, metadata.labels['<key>'], metadata.annotations['<key>'])", f.FieldPath, strings.Join(sortedKeys(allowed), ", "))
}

var resourceFieldRefs = map[string]bool{"limits.cpu": true, "limits.memory": true, "requests.cpu": true, "requests.memory": true}

func validateResourceFieldRef(p string, r *corev1.ResourceFieldSelector, spec *corev1.PodSpec, fail failFunc) {
	if !resourceFieldRefs[r.Resource] {
		fail(p+".resource", "%q: must be limits.cpu, limits.memory, requests.cpu or requests.memory", r.Resource)
	}
	if r.ContainerName != "" && findContainer(spec, r.ContainerName) == nil {
		fail(p+".containerName", "%q: no container of this pod has this name", r.ContainerName)
	}
	if !r.Divisor.IsZero() && r.Divisor.Sign() < 0 {
		fail(p+".divisor", "%s: must be more than 0", r.Divisor.String())
	}
}

func findContainer(spec *corev1.PodSpec, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// supportedResources are the resources podunit sets.
var supportedResources = map[corev1.ResourceName]bool{corev1.ResourceCPU: true, corev1.ResourceMemory: true}

// validateContainerLevel checks what a container adds to the pod: env
// sources, mounts, resources and its security context.
func validateContainerLevel(p string, c *corev1.Container, spec *corev1.PodSpec, fail, note failFunc) {
	for j, e := range c.Env {
		ep := fmt.Sprintf("%s.env[%d]", p, j)
		if e.ValueFrom == nil {
			continue
		}
		if e.Value != "" {
			fail(ep+".valueFrom", "cannot be combined with value")
		}
		vf := e.ValueFrom
		n := 0
		for _, set := range []bool{vf.FieldRef != nil, vf.ResourceFieldRef != nil, vf.ConfigMapKeyRef != nil, vf.SecretKeyRef != nil} {
			if set {
				n++
			}
		}
		switch {
		case n != 1:
			fail(ep+".valueFrom", "must have exactly one of fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef")
		case vf.FieldRef != nil:
			validateFieldRef(ep+".valueFrom.fieldRef", vf.FieldRef, false, fail)
		case vf.ResourceFieldRef != nil:
			validateResourceFieldRef(ep+".valueFrom.resourceFieldRef", vf.ResourceFieldRef, spec, fail)
		case vf.ConfigMapKeyRef != nil:
			validateObjectName(ep+".valueFrom.configMapKeyRef.name", vf.ConfigMapKeyRef.Name, fail)
			if vf.ConfigMapKeyRef.Key == "" {
				fail(ep+".valueFrom.configMapKeyRef.key", "required")
			}
		case vf.SecretKeyRef != nil:
			validateObjectName(ep+".valueFrom.secretKeyRef.name", vf.SecretKeyRef.Name, fail)
			if vf.SecretKeyRef.Key == "" {
				fail(ep+".valueFrom.secretKeyRef.key", "required")
			}
		}
	}
	for j, e := range c.EnvFrom {
		ep := fmt.Sprintf("%s.envFrom[%d]", p, j)
		switch {
		case (e.ConfigMapRef == nil) == (e.SecretRef == nil):
			fail(ep, "must have exactly one of configMapRef, secretRef")
		case e.ConfigMapRef != nil:
			validateObjectName(ep+".configMapRef.name", e.ConfigMapRef.Name, fail)
		default:
			validateObjectName(ep+".secretRef.name", e.SecretRef.Name, fail)
		}
		if strings.ContainsAny(e.Prefix, "=\x00") {
			fail(ep+".prefix", "%q: must not contain '=' or NUL", e.Prefix)
		}
	}

	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
	}
	mounts := map[string]bool{}
	for j, m := range c.VolumeMounts {
		mp := fmt.Sprintf("%s.volumeMounts[%d]", p, j)
		switch {
		case m.Name == "":
			fail(mp+".name", "required")
		case !volumes[m.Name]:
			fail(mp+".name", "%q: no volume of this pod has this name", m.Name)
		}
		switch {
		case !path.IsAbs(m.MountPath):
			fail(mp+".mountPath", "%q: must be an absolute path", m.MountPath)
		case strings.Contains(m.MountPath, ":"):
			fail(mp+".mountPath", "%q: must not contain ':'", m.MountPath)
		case mounts[path.Clean(m.MountPath)]:
			fail(mp+".mountPath", "%q: mounted twice in this container", m.MountPath)
		}
		mounts[path.Clean(m.MountPath)] = true
		if m.SubPath != "" && !isRelativeClean(m.SubPath) {
			fail(mp+".subPath", "%q: must be a relative path without '..'", m.SubPath)
		}
	}

	for _, list := range []struct {
		name string
		rl   corev1.ResourceList
	}{{"limits", c.Resources.Limits}, {"requests", c.Resources.Requests}} {
		for name, q := range list.rl {
			rp := fmt.Sprintf("%s.resources.%s[%s]", p, list.name, name)
			switch {
			case name == corev1.ResourceEphemeralStorage:
				note(rp, "%s: not enforced (the kubelet evicts a pod over it; podunit evicts no pods): accepted, no effect", q.String())
			case !supportedResources[name]:
				fail(rp, "not supported by podunit (cpu, memory and ephemeral-storage are; there is no device plugin for extended resources)")
			case q.Sign() < 0:
				fail(rp, "%s: must be 0 or more", q.String())
			case tooLarge(name, q):
				fail(rp, "%s: too large (more than %s)", q.String(), maxQuantity(name))
			}
		}
	}
	for name, req := range c.Resources.Requests {
		if limit, ok := c.Resources.Limits[name]; ok && req.Cmp(limit) > 0 {
			fail(fmt.Sprintf("%s.resources.requests[%s]", p, name), "%s: must not be more than the limit %s", req.String(), limit.String())
		}
	}

	if l := c.Lifecycle; l != nil && l.StopSignal != nil {
		sig := string(*l.StopSignal)
		switch {
		case spec.OS == nil || spec.OS.Name == "":
			fail(p+".lifecycle.stopSignal", "needs spec.os.name (linux), as in Kubernetes")
		case unix.SignalNum(sig) == 0 || !strings.HasPrefix(sig, "SIG"):
			fail(p+".lifecycle.stopSignal", "%q: not a signal name such as SIGTERM or SIGUSR1%s", sig, caseHint(sig, strings.ToUpper(sig)))
		}
	}
	switch c.TerminationMessagePolicy {
	case "", corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError:
	default:
		fail(p+".terminationMessagePolicy", "%q: must be File or FallbackToLogsOnError%s", c.TerminationMessagePolicy,
			caseHint(string(c.TerminationMessagePolicy), "File", "FallbackToLogsOnError"))
	}
	if t := c.TerminationMessagePath; t != "" && (!path.IsAbs(t) || strings.Contains(t, ":")) {
		fail(p+".terminationMessagePath", "%q: must be an absolute path without ':'", t)
	}
	privileged := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
	for j, m := range c.VolumeMounts {
		if m.MountPropagation == nil {
			continue
		}
		mp := fmt.Sprintf("%s.volumeMounts[%d].mountPropagation", p, j)
		switch *m.MountPropagation {
		case corev1.MountPropagationNone, corev1.MountPropagationHostToContainer:
		case corev1.MountPropagationBidirectional:
			if !privileged {
				fail(mp, "Bidirectional needs a privileged container, as in Kubernetes")
			}
		default:
			fail(mp, "%q: must be None, HostToContainer or Bidirectional%s", *m.MountPropagation,
				caseHint(string(*m.MountPropagation), "None", "HostToContainer", "Bidirectional"))
		}
	}
	if sc := c.SecurityContext; sc != nil {
		sp := p + ".securityContext"
		validateIDs(sp, sc.RunAsUser, sc.RunAsGroup, fail)
		validateSeccomp(sp+".seccompProfile", sc.SeccompProfile, fail)
		if sc.Privileged != nil && *sc.Privileged && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			fail(sp+".allowPrivilegeEscalation", "cannot be false with privileged: true")
		}
		if caps := sc.Capabilities; caps != nil {
			for field, list := range map[string][]corev1.Capability{"add": caps.Add, "drop": caps.Drop} {
				for j, capability := range list {
					if !isCapability(string(capability)) {
						fail(fmt.Sprintf("%s.capabilities.%s[%d]", sp, field, j), "%q: not a capability name (e.g. NET_ADMIN, or ALL)", capability)
					}
				}
			}
		}
	}
}

var capabilityName = regexp.MustCompile(`^(CAP_)?[A-Z][A-Z_]*[A-Z]$`)

func isCapability(s string) bool { return capabilityName.MatchString(s) }

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The largest cpu and memory quantities podunit takes: far above any
// machine, well inside what the runtime's int64 fields (millicores, bytes)
// hold. 1e30 bytes of memory is no limit a kernel can set, but a typo.
var (
	maxCPU    = resource.MustParse("1M") // a million cores
	maxMemory = resource.MustParse("1Ei")
)

// tooLarge tells whether a cpu or memory quantity is above its maximum.
func tooLarge(name corev1.ResourceName, q resource.Quantity) bool {
	return q.Cmp(*maxQuantity(name)) > 0
}

func maxQuantity(name corev1.ResourceName) *resource.Quantity {
	if name == corev1.ResourceCPU {
		return &maxCPU
	}
	return &maxMemory
}
