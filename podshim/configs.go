package podshim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/cni/service"
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
		Pod:           s.pod,
		Objects:       s.cfg.Objects,
		Host:          s.cfg.Host,
		HostDNS:       s.hostDNS,
		ClusterDNS:    s.cfg.ClusterDNS,
		ClusterDomain: s.cfg.ClusterDomain,
		PodIPs:        s.podIPs,
		Paths: criconfig.Paths{
			PodDir:       s.podDir(),
			VolumeRoot:   s.cfg.VolumeRoot,
			LogRoot:      s.cfg.LogRoot,
			CgroupParent: s.cfg.CgroupParent,
		},
		ImageVolumes: s.imageVolumes,
		Log:          s.log,
	}
}

// containerConfig is c's CRI config, with what it needs of the host made
// (see prepareHost). An error is a config that cannot be met (a hostPath
// check, runAsNonRoot): the container's CreateContainerConfigError.
// release lets go of the hostPaths the config pins: call it once the
// container is created (or will not be).
func (s *Shim) containerConfig(ctx context.Context, c *corev1.Container, imageRef string, attempt uint32) (cc *runtimeapi.ContainerConfig, release func(), err error) {
	in := s.input()
	if in.Services, err = s.services(); err != nil {
		return nil, func() {}, err
	}
	cc, err = criconfig.Container(in, c, imageRef, attempt)
	if err != nil {
		return nil, func() {}, err
	}
	release, err = s.prepareHost(c, cc, attempt)
	if err == nil {
		err = s.checkNonRoot(ctx, c, cc.Linux.SecurityContext)
	}
	if err != nil {
		release()
		return nil, func() {}, err
	}
	return cc, release, nil
}

// services are the node's Services as its Service table says now, for the
// Service environment variables of a container about to be created (the
// kubelet reads its Service cache then too): none when there is no table
// (no Service on the node, or Services off). A table that cannot be read
// is the container's CreateContainerConfigError, retried, as the kubelet's
// failed Service listing is.
func (s *Shim) services() ([]service.Service, error) {
	if s.cfg.ServiceTable == "" {
		return nil, nil
	}
	t, err := service.ReadTable(s.cfg.ServiceTable)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("the Services for the environment variables: %w", err)
	}
	return t.Services, nil
}

// prepareHost makes what c's config needs of the host, as the kubelet does
// before it creates a container: hostPath volumes checked (and made, for
// the *OrCreate types) and pinned (the config names the checked file
// through podshim's descriptor until release), subPaths made and resolved
// (the config then names the resolved path; one that leaves its volume is
// refused), and the attempt's empty termination-message file.
func (s *Shim) prepareHost(c *corev1.Container, cc *runtimeapi.ContainerConfig, attempt uint32) (release func(), err error) {
	var pins []pinnedHostPath
	release = func() {
		for _, p := range pins {
			p.release()
		}
		pins = nil
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	in := s.input()
	volumes := map[string]*corev1.Volume{}
	for i := range s.pod.Spec.Volumes {
		volumes[s.pod.Spec.Volumes[i].Name] = &s.pod.Spec.Volumes[i]
	}
	// The config's mounts start with c's volumeMounts, in order.
	for i, m := range c.VolumeMounts {
		v := volumes[m.Name]
		if v.Image != nil {
			continue // the runtime's: nothing of the host
		}
		if v.HostPath != nil {
			pin, ok, err := checkHostPath(v.HostPath)
			if err != nil {
				return release, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			switch {
			case ok && m.SubPath == "":
				pins = append(pins, pin)
				cc.Mounts[i].HostPath = pin.path()
			case ok:
				pin.release() // the subPath below it is resolved and checked on its own
			}
		}
		if m.SubPath != "" {
			host, err := subPath(in.VolumeRoot(v), m.SubPath)
			if err != nil {
				return release, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			cc.Mounts[i].HostPath = host
		}
	}
	log := criconfig.TerminationLog(s.podDir(), c.Name, attempt)
	for _, m := range cc.Mounts {
		if m.HostPath == log {
			if err := makeTerminationLog(log); err != nil {
				return release, fmt.Errorf("termination message file: %w", err)
			}
		}
	}
	return release, nil
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
