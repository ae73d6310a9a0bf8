package podshim

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/podunit/podunit/podshim/atomicfile"
	"github.com/podunit/podunit/podshim/criconfig"
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
	return criconfig.ClaimDir(root, namespace, claim)
}

func (s *Shim) claimDir(claim string) string {
	return criconfig.ClaimDir(s.cfg.VolumeRoot, s.pod.Namespace, claim)
}

func (s *Shim) volumeDir(plugin, name string) string {
	return criconfig.VolumeDir(s.podDir(), plugin, name)
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
			if gid := criconfig.FSGroup(s.pod); gid >= 0 {
				if err := setOwnership(dir, gid, false); err != nil {
					return fmt.Errorf("volume %q: fsGroup: %w", v.Name, err)
				}
			}
			continue
		default:
			continue // hostPath: the host's, left as it is
		}
		if gid := criconfig.FSGroup(s.pod); gid >= 0 {
			if err := setOwnership(s.volumeDir(criconfig.Plugin(v), v.Name), gid, v.EmptyDir == nil); err != nil {
				return fmt.Errorf("volume %q: fsGroup: %w", v.Name, err)
			}
		}
	}
	return nil
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
		hostname, fqdn := criconfig.Hostnames(s.pod)
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
	return atomicfile.Write(s.etcHostsPath(), b.Bytes(), 0o644)
}

func (s *Shim) etcHostsPath() string { return criconfig.EtcHostsPath(s.podDir()) }

// removePodDir unmounts the pod's tmpfs volumes and removes its directory.
func (s *Shim) removePodDir() error {
	var errs []error
	for i := range s.pod.Spec.Volumes {
		if v := &s.pod.Spec.Volumes[i]; onTmpfs(v) {
			dir := s.volumeDir(criconfig.Plugin(v), v.Name)
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
