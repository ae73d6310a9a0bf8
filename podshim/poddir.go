package podshim

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultPodRoot holds each pod's directory, <root>/<uid>, in the kubelet's
// layout: its managed /etc/hosts and its volumes under
// volumes/kubernetes.io~<plugin>/<name>.
const DefaultPodRoot = "/var/lib/podunit/pods"

// podDir is the pod's own directory.
func (s *Shim) podDir() string { return filepath.Join(s.cfg.PodRoot, string(s.pod.UID)) }

// DefaultVolumeRoot holds the PersistentVolumeClaims' directories,
// <root>/<namespace>/<claim>; they outlive pods.
const DefaultVolumeRoot = "/var/lib/podunit/volumes"

// ClaimDir is the host directory of a PersistentVolumeClaim.
func ClaimDir(root, namespace, claim string) string {
	return filepath.Join(root, namespace, claim)
}

func (s *Shim) claimDir(claim string) string {
	return ClaimDir(s.cfg.VolumeRoot, s.pod.Namespace, claim)
}

func (s *Shim) volumeDir(plugin, name string) string {
	return filepath.Join(s.podDir(), "volumes", "kubernetes.io~"+plugin, name)
}

// setupPodDir makes the pod's directory, /etc/hosts and its emptyDir and
// downwardAPI volumes. It is idempotent: an adopting podshim finds them
// made, and a Memory emptyDir's tmpfs keeps its contents.
func (s *Shim) setupPodDir() error {
	if err := os.MkdirAll(s.podDir(), 0o750); err != nil {
		return err
	}
	if err := s.writeEtcHosts(); err != nil {
		return err
	}
	for i := range s.pod.Spec.Volumes {
		v := &s.pod.Spec.Volumes[i]
		switch {
		case v.EmptyDir != nil:
			if err := s.setupEmptyDir(v); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		case v.DownwardAPI != nil:
			if err := s.writeDownwardAPI(v); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		case v.ConfigMap != nil, v.Secret != nil, v.Projected != nil:
			if err := s.writeProjection(v); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		case v.PersistentVolumeClaim != nil:
			dir := s.claimDir(v.PersistentVolumeClaim.ClaimName)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
			if gid := s.fsGroup(); gid >= 0 {
				if err := setOwnership(dir, gid, false); err != nil {
					return fmt.Errorf("volume %q: fsGroup: %w", v.Name, err)
				}
			}
			continue
		default:
			continue // hostPath: the host's, left as it is
		}
		if gid := s.fsGroup(); gid >= 0 {
			if err := setOwnership(s.volumeDir(plugin(v), v.Name), gid, v.EmptyDir == nil); err != nil {
				return fmt.Errorf("volume %q: fsGroup: %w", v.Name, err)
			}
		}
	}
	return nil
}

// setOwnership gives a volume to group gid as the kubelet does for fsGroup:
// group-owned, group-readable (and writable unless readOnly), directories
// setgid so that new files inherit the group.
func setOwnership(dir string, gid int, readOnly bool) error {
	fileMask, dirMask := fs.FileMode(0o660), fs.FileMode(0o770)
	if readOnly {
		fileMask, dirMask = 0o440, 0o550
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.Lchown(path, -1, gid); err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if d.IsDir() {
			return os.Chmod(path, info.Mode()|dirMask|fs.ModeSetgid)
		}
		return os.Chmod(path, info.Mode()|fileMask)
	})
}

// plugin is the kubelet's name for a volume's directory.
func plugin(v *corev1.Volume) string {
	switch {
	case v.EmptyDir != nil:
		return "empty-dir"
	case v.DownwardAPI != nil:
		return "downward-api"
	case v.ConfigMap != nil:
		return "configmap"
	case v.Secret != nil:
		return "secret"
	case v.Projected != nil:
		return "projected"
	}
	return ""
}

// onTmpfs reports whether a volume lives in memory: Memory emptyDirs, and
// the volumes that may hold secrets, which never touch a disk.
func onTmpfs(v *corev1.Volume) bool {
	return (v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory) || v.Secret != nil || v.Projected != nil
}

// projectedFile is one file of a configMap, secret or projected volume.
type projectedFile struct {
	data []byte
	mode int32
}

// writeProjection writes a configMap, secret or projected volume: each key
// of its objects (or only the listed items) as a file. Secrets and projected
// volumes are on a tmpfs.
func (s *Shim) writeProjection(v *corev1.Volume) error {
	dir := s.volumeDir(plugin(v), v.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if onTmpfs(v) && !isMountPoint(dir) {
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755"); err != nil {
			return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
		}
	}
	files := map[string]projectedFile{}
	keys := func(secret bool, name string, items []corev1.KeyToPath, mode int32) {
		data, _ := s.cfg.Objects.Lookup(secret, name) // missing and optional: nothing
		if len(items) == 0 {
			for k, value := range data {
				files[k] = projectedFile{value, mode}
			}
			return
		}
		for _, it := range items {
			value, ok := data[it.Key]
			if !ok {
				continue
			}
			m := mode
			if it.Mode != nil {
				m = *it.Mode
			}
			files[it.Path] = projectedFile{value, m}
		}
	}
	switch {
	case v.ConfigMap != nil:
		keys(false, v.ConfigMap.Name, v.ConfigMap.Items, *v.ConfigMap.DefaultMode)
	case v.Secret != nil:
		keys(true, v.Secret.SecretName, v.Secret.Items, *v.Secret.DefaultMode)
	case v.Projected != nil:
		mode := *v.Projected.DefaultMode
		for _, src := range v.Projected.Sources {
			switch {
			case src.ConfigMap != nil:
				keys(false, src.ConfigMap.Name, src.ConfigMap.Items, mode)
			case src.Secret != nil:
				keys(true, src.Secret.Name, src.Secret.Items, mode)
			case src.DownwardAPI != nil:
				for _, item := range src.DownwardAPI.Items {
					value, err := s.downwardValue(item)
					if err != nil {
						return err
					}
					m := mode
					if item.Mode != nil {
						m = *item.Mode
					}
					files[item.Path] = projectedFile{[]byte(value), m}
				}
			}
		}
	}
	for name, f := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(path, f.data, fs.FileMode(f.mode)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Shim) setupEmptyDir(v *corev1.Volume) error {
	dir := s.volumeDir("empty-dir", v.Name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	// World-writable as the kubelet makes it, whatever the umask, so that
	// containers running as any user can use it.
	if err := os.Chmod(dir, 0o777); err != nil {
		return err
	}
	if !onTmpfs(v) || isMountPoint(dir) {
		return nil
	}
	opts := "mode=0777"
	if l := v.EmptyDir.SizeLimit; l != nil {
		opts += ",size=" + strconv.FormatInt(l.Value(), 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// isMountPoint reports whether dir is mounted on (its device differs from
// its parent's).
func isMountPoint(dir string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(dir, &st) != nil || unix.Lstat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

func (s *Shim) writeDownwardAPI(v *corev1.Volume) error {
	dir := s.volumeDir("downward-api", v.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, item := range v.DownwardAPI.Items {
		value, err := s.downwardValue(item)
		if err != nil {
			return err
		}
		mode := *v.DownwardAPI.DefaultMode
		if item.Mode != nil {
			mode = *item.Mode
		}
		path := filepath.Join(dir, item.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(path, []byte(value), fs.FileMode(mode)); err != nil {
			return err
		}
	}
	return nil
}

// downwardValue is a downward API file's content.
func (s *Shim) downwardValue(item corev1.DownwardAPIVolumeFile) (string, error) {
	if item.FieldRef != nil {
		return s.volumeFieldValue(item.FieldRef.FieldPath), nil
	}
	value, err := s.resourceValue(item.ResourceFieldRef, nil)
	if err != nil {
		return "", fmt.Errorf("item %s: %w", item.Path, err)
	}
	return value, nil
}

// volumeFieldValue is a downwardAPI volume file's content: a whole label or
// annotation map is one key="value" a line, sorted, as the kubelet writes it.
func (s *Shim) volumeFieldValue(path string) string {
	var m map[string]string
	switch path {
	case "metadata.labels":
		m = s.pod.Labels
	case "metadata.annotations":
		m = s.pod.Annotations
	default:
		return s.fieldValue(path)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// writeEtcHosts writes the pod's /etc/hosts as the kubelet does: the
// loopback names and the pod's own address and names (for hostNetwork pods,
// the host's file), then the hostAliases.
func (s *Shim) writeEtcHosts() error {
	var b bytes.Buffer
	if s.pod.Spec.HostNetwork {
		host, err := os.ReadFile("/etc/hosts")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		b.Write(host)
		if len(host) > 0 && !bytes.HasSuffix(host, []byte("\n")) {
			b.WriteByte('\n')
		}
	} else {
		b.WriteString("# Kubernetes-managed hosts file (podunit).\n" +
			"127.0.0.1\tlocalhost\n" +
			"::1\tlocalhost ip6-localhost ip6-loopback\n" +
			"fe00::0\tip6-localnet\n" +
			"fe00::0\tip6-mcastprefix\n" +
			"fe00::1\tip6-allnodes\n" +
			"fe00::2\tip6-allrouters\n")
		hostname, fqdn := s.hostnames()
		for _, ip := range s.podIPs {
			if fqdn != "" {
				fmt.Fprintf(&b, "%s\t%s\t%s\n", ip, fqdn, hostname)
			} else {
				fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
			}
		}
	}
	if len(s.pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range s.pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return writeFileAtomic(s.etcHostsPath(), b.Bytes(), 0o644)
}

func (s *Shim) etcHostsPath() string { return filepath.Join(s.podDir(), "etc-hosts") }

// hostnames are the pod's host name and, with a subdomain, its fully
// qualified name.
func (s *Shim) hostnames() (hostname, fqdn string) {
	hostname = s.pod.Spec.Hostname
	if hostname == "" {
		hostname = s.pod.Name
	}
	if len(hostname) > 63 {
		hostname = strings.TrimRight(hostname[:63], "-.")
	}
	if sub := s.pod.Spec.Subdomain; sub != "" {
		fqdn = fmt.Sprintf("%s.%s.%s.svc.%s", hostname, sub, s.pod.Namespace, clusterDomain)
	}
	return hostname, fqdn
}

// clusterDomain completes a pod's fully qualified name, as the kubelet's
// default clusterDomain.
const clusterDomain = "cluster.local"

// removePodDir unmounts the pod's tmpfs volumes and removes its directory.
func (s *Shim) removePodDir() error {
	var errs []error
	for i := range s.pod.Spec.Volumes {
		if v := &s.pod.Spec.Volumes[i]; onTmpfs(v) {
			dir := s.volumeDir(plugin(v), v.Name)
			if isMountPoint(dir) {
				if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
					errs = append(errs, fmt.Errorf("unmount %s: %w", dir, err))
				}
			}
		}
	}
	if len(errs) == 0 {
		errs = append(errs, os.RemoveAll(s.podDir()))
	}
	return errors.Join(errs...)
}

// containerMounts are the CRI mounts of c: its volumeMounts (hostPath types
// checked, subPaths made) and the pod's /etc/hosts. An error is the
// container's CreateContainerConfigError.
func (s *Shim) containerMounts(c *corev1.Container) ([]*runtimeapi.Mount, error) {
	volumes := map[string]*corev1.Volume{}
	for i := range s.pod.Spec.Volumes {
		volumes[s.pod.Spec.Volumes[i].Name] = &s.pod.Spec.Volumes[i]
	}
	var mounts []*runtimeapi.Mount
	hostsMounted := false
	for _, m := range c.VolumeMounts {
		v := volumes[m.Name]
		var root string
		readOnly := m.ReadOnly
		switch {
		case v.HostPath != nil:
			if err := checkHostPath(v.HostPath); err != nil {
				return nil, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			root = v.HostPath.Path
		case v.EmptyDir != nil:
			root = s.volumeDir("empty-dir", v.Name)
		case v.PersistentVolumeClaim != nil:
			root = s.claimDir(v.PersistentVolumeClaim.ClaimName)
			readOnly = readOnly || v.PersistentVolumeClaim.ReadOnly
		default: // downwardAPI, configMap, secret, projected: read-only, as in Kubernetes
			root = s.volumeDir(plugin(v), v.Name)
			readOnly = true
		}
		host := root
		if m.SubPath != "" {
			var err error
			if host, err = subPath(root, m.SubPath); err != nil {
				return nil, fmt.Errorf("volume %q: %w", v.Name, err)
			}
		}
		if filepath.Clean(m.MountPath) == "/etc/hosts" {
			hostsMounted = true
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: host, Readonly: readOnly,
			Propagation: propagation(m.MountPropagation)})
	}
	if !hostsMounted {
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: "/etc/hosts", HostPath: s.etcHostsPath()})
	}
	return mounts, nil
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

// checkHostPath checks (and for the *OrCreate types makes) a hostPath as
// its type says, as the kubelet does before starting the container.
func checkHostPath(h *corev1.HostPathVolumeSource) error {
	t := corev1.HostPathUnset
	if h.Type != nil {
		t = *h.Type
	}
	if t == corev1.HostPathUnset {
		return nil
	}
	fi, err := os.Stat(h.Path)
	if errors.Is(err, fs.ErrNotExist) {
		switch t {
		case corev1.HostPathDirectoryOrCreate:
			return os.MkdirAll(h.Path, 0o755)
		case corev1.HostPathFileOrCreate:
			f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		return fmt.Errorf("hostPath type check failed: %s does not exist (type %s)", h.Path, t)
	}
	if err != nil {
		return err
	}
	mode := fi.Mode()
	ok := map[corev1.HostPathType]bool{
		corev1.HostPathDirectoryOrCreate: mode.IsDir(),
		corev1.HostPathDirectory:         mode.IsDir(),
		corev1.HostPathFileOrCreate:      mode.IsRegular(),
		corev1.HostPathFile:              mode.IsRegular(),
		corev1.HostPathSocket:            mode&fs.ModeSocket != 0,
		corev1.HostPathCharDev:           mode&fs.ModeCharDevice != 0,
		corev1.HostPathBlockDev:          mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice == 0,
	}[t]
	if !ok {
		return fmt.Errorf("hostPath type check failed: %s is not a %s", h.Path, strings.TrimSuffix(string(t), "OrCreate"))
	}
	return nil
}

// subPath returns root/sub, made as a directory when missing, refusing one
// that leaves root through a symlink.
func subPath(root, sub string) (string, error) {
	path := filepath.Join(root, sub)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(path, 0o755); err != nil {
			return "", err
		}
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	if real != realRoot && !strings.HasPrefix(real, realRoot+string(filepath.Separator)) {
		return "", fmt.Errorf("subPath %q leaves the volume (it resolves to %s)", sub, real)
	}
	return real, nil
}
