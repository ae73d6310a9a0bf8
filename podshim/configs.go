package podshim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/criconfig"
)

// CRI labels, as the kubelet sets them (criconfig has them all).
const (
	LabelPodName       = criconfig.LabelPodName
	LabelPodNamespace  = criconfig.LabelPodNamespace
	LabelPodUID        = criconfig.LabelPodUID
	LabelContainerName = criconfig.LabelContainerName
	LabelManaged       = criconfig.LabelManaged
)

// DefaultLogRoot is where the runtime writes container logs, in the
// kubelet's layout: <root>/<namespace>_<name>_<uid>/<container>/<n>.log.
const DefaultLogRoot = "/var/log/pods"

// input is what the translation into CRI configs reads, as the shim has it
// now (the pod's addresses once its sandbox has them).
func (s *Shim) input() *criconfig.Input {
	return &criconfig.Input{
		Pod:     s.pod,
		Objects: s.cfg.Objects,
		Host:    s.cfg.Host,
		HostDNS: s.hostDNS,
		PodIPs:  s.podIPs,
		Paths: criconfig.Paths{
			PodDir:       s.podDir(),
			VolumeRoot:   s.cfg.VolumeRoot,
			LogRoot:      s.cfg.LogRoot,
			CgroupParent: s.cfg.CgroupParent,
		},
		Log: s.log,
	}
}

// containerConfig is c's CRI config, with what it needs of the host made
// (see prepareHost). An error is a config that cannot be met (a hostPath
// check, runAsNonRoot): the container's CreateContainerConfigError.
func (s *Shim) containerConfig(ctx context.Context, c *corev1.Container, imageRef string, attempt uint32) (*runtimeapi.ContainerConfig, error) {
	cc, err := criconfig.Container(s.input(), c, imageRef, attempt)
	if err != nil {
		return nil, err
	}
	if err := s.prepareHost(c, cc, attempt); err != nil {
		return nil, err
	}
	if err := s.checkNonRoot(ctx, c, cc.Linux.SecurityContext); err != nil {
		return nil, err
	}
	return cc, nil
}

// prepareHost makes what c's config needs of the host, as the kubelet does
// before it creates a container: hostPath volumes checked (and made, for
// the *OrCreate types), subPaths made and resolved (the config then names
// the resolved path; one that leaves its volume is refused), and the
// attempt's empty termination-message file.
func (s *Shim) prepareHost(c *corev1.Container, cc *runtimeapi.ContainerConfig, attempt uint32) error {
	in := s.input()
	volumes := map[string]*corev1.Volume{}
	for i := range s.pod.Spec.Volumes {
		volumes[s.pod.Spec.Volumes[i].Name] = &s.pod.Spec.Volumes[i]
	}
	// The config's mounts start with c's volumeMounts, in order.
	for i, m := range c.VolumeMounts {
		v := volumes[m.Name]
		if v.HostPath != nil {
			if err := checkHostPath(v.HostPath); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		}
		if m.SubPath != "" {
			host, err := subPath(in.VolumeRoot(v), m.SubPath)
			if err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
			cc.Mounts[i].HostPath = host
		}
	}
	log := criconfig.TerminationLog(s.podDir(), c.Name, attempt)
	for _, m := range cc.Mounts {
		if m.HostPath == log {
			if err := makeTerminationLog(log); err != nil {
				return fmt.Errorf("termination message file: %w", err)
			}
		}
	}
	return nil
}

// makeTerminationLog makes an empty termination-message file, writable by
// anyone (as the kubelet's), whatever user the container runs as.
func makeTerminationLog(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		return err
	}
	return os.Chmod(path, 0o666) // past the umask
}
