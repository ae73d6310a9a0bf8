package podshim

import (
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

	"github.com/podunit/podunit/podshim/atomicfile"
	"github.com/podunit/podunit/podshim/criconfig"
)

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
	dir := s.volumeDir(criconfig.Plugin(v), v.Name)
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
		if err := atomicfile.Write(path, f.data, fs.FileMode(f.mode)); err != nil {
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
		if err := atomicfile.Write(path, []byte(value), fs.FileMode(mode)); err != nil {
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
	value, err := s.input().ResourceValue(item.ResourceFieldRef, nil)
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
		return s.input().FieldValue(path)
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

// pinnedHostPath is a hostPath held open from its type check until the
// container that mounts it is created, so that the check and the mount are
// of the same file: a path swapped for a symlink in between (by a pod that
// can write the parent directory) does not make the runtime mount the
// symlink's target. The runtime is given /proc/<podshim>/fd/<n>, which it
// resolves, as containerd and CRI-O resolve every mount's source, to the
// checked file wherever it now is.
type pinnedHostPath struct{ fd int }

func (p pinnedHostPath) path() string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), p.fd) }

func (p pinnedHostPath) release() { unix.Close(p.fd) }

// checkHostPath checks (and for the *OrCreate types makes) a hostPath as
// its type says, as the kubelet does before starting the container, and
// pins what it checked. A path that does not exist, of no type, is left to
// the runtime (it makes a directory), as the kubelet leaves it: ok is false.
func checkHostPath(h *corev1.HostPathVolumeSource) (pin pinnedHostPath, ok bool, err error) {
	t := corev1.HostPathUnset
	if h.Type != nil {
		t = *h.Type
	}
	fd, err := unix.Open(h.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		switch t {
		case corev1.HostPathUnset:
			return pin, false, nil
		case corev1.HostPathDirectoryOrCreate:
			err = os.MkdirAll(h.Path, 0o755)
		case corev1.HostPathFileOrCreate:
			var f *os.File
			if f, err = os.OpenFile(h.Path, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				err = f.Close()
			}
		default:
			return pin, false, fmt.Errorf("hostPath type check failed: %s does not exist (type %s)", h.Path, t)
		}
		if err != nil {
			return pin, false, err
		}
		fd, err = unix.Open(h.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return pin, false, &fs.PathError{Op: "open", Path: h.Path, Err: err}
	}
	pin = pinnedHostPath{fd}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		pin.release()
		return pin, false, &fs.PathError{Op: "stat", Path: h.Path, Err: err}
	}
	if t == corev1.HostPathUnset {
		return pin, true, nil
	}
	kind := st.Mode & unix.S_IFMT
	ok = map[corev1.HostPathType]bool{
		corev1.HostPathDirectoryOrCreate: kind == unix.S_IFDIR,
		corev1.HostPathDirectory:         kind == unix.S_IFDIR,
		corev1.HostPathFileOrCreate:      kind == unix.S_IFREG,
		corev1.HostPathFile:              kind == unix.S_IFREG,
		corev1.HostPathSocket:            kind == unix.S_IFSOCK,
		corev1.HostPathCharDev:           kind == unix.S_IFCHR,
		corev1.HostPathBlockDev:          kind == unix.S_IFBLK,
	}[t]
	if !ok {
		pin.release()
		return pin, false, fmt.Errorf("hostPath type check failed: %s is not a %s", h.Path, strings.TrimSuffix(string(t), "OrCreate"))
	}
	return pin, true, nil
}

// subPath returns root/sub, its missing directories made, refusing one
// that leaves root through a symlink (a container can plant one in its
// volume: the class of CVE-2017-1002101 in the kubelet). It walks sub one
// component at a time from the volume's real path: a symlink is resolved
// and must stay inside the volume before anything below it is looked at or
// made, so that no directory is ever made outside the volume.
func subPath(root, sub string) (string, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	inside := func(p string) bool {
		return p == realRoot || strings.HasPrefix(p, realRoot+string(filepath.Separator))
	}
	cur := realRoot
	parts := strings.Split(filepath.Clean(sub), string(filepath.Separator))
	for i, part := range parts {
		if part == "" || part == "." {
			continue
		}
		next := filepath.Join(cur, part)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Mkdir does not follow a symlink in its last component, and
			// cur is a real path inside the volume.
			if err := os.Mkdir(next, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return "", err
			}
			cur = next
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			real, err := filepath.EvalSymlinks(next)
			if err != nil {
				return "", fmt.Errorf("subPath %q: %w", sub, err)
			}
			if !inside(real) {
				return "", fmt.Errorf("subPath %q leaves the volume (it resolves to %s)", sub, filepath.Join(append([]string{real}, parts[i+1:]...)...))
			}
			cur = real
		default:
			if !fi.IsDir() && i < len(parts)-1 {
				return "", fmt.Errorf("subPath %q: %s is not a directory", sub, next)
			}
			cur = next
		}
	}
	if !inside(cur) {
		return "", fmt.Errorf("subPath %q leaves the volume (it resolves to %s)", sub, cur)
	}
	return cur, nil
}
