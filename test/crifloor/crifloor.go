// Package crifloor brings pods up with raw CRI calls, with the configs
// podshim would make for them: the floor that podunit's benchmarks and load
// tests measure podunit against, in the same run.
package crifloor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/criconfig"
)

// CgroupParent is the slice the floor's pods run in: the same kind of pod
// slice podunit's run in.
const CgroupParent = "podunit-floor.slice"

// Configs are the configs podshim makes for the pod's sandbox and its first
// container at their first start: the translation itself
// (podshim/criconfig), with the host facts podshim reads and the files the
// container's mounts name (/etc/hosts, the termination-message file) and its
// log directory made.
// Build them before the clock starts.
func Configs(spec *corev1.Pod, image string) (*runtimeapi.PodSandboxConfig, *runtimeapi.ContainerConfig, error) {
	in := &criconfig.Input{
		Pod:  spec,
		Host: podshim.ReadHost(),
		Paths: criconfig.Paths{PodDir: podDir(spec), VolumeRoot: podshim.DefaultVolumeRoot,
			LogRoot: podshim.DefaultLogRoot, CgroupParent: CgroupParent},
	}
	if resolv, err := os.ReadFile(podshim.DefaultResolvConf()); err == nil {
		in.HostDNS = criconfig.ParseResolvConf(resolv)
	}
	c, err := criconfig.Container(in, &spec.Spec.Containers[0], image, 0)
	if err != nil {
		return nil, nil, err
	}
	for _, m := range c.Mounts {
		if err := os.MkdirAll(filepath.Dir(m.HostPath), 0o755); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(m.HostPath, nil, 0o666); err != nil {
			return nil, nil, err
		}
	}
	sb := criconfig.Sandbox(in, 0)
	// The container's log directory, as the kubelet and podshim make it
	// before CreateContainer: containerd makes it itself, CRI-O's conmon
	// fails without it ("Failed to open log file").
	if err := os.MkdirAll(filepath.Join(sb.LogDirectory, filepath.Dir(c.LogPath)), 0o755); err != nil {
		return nil, nil, err
	}
	// The floor's pods are not podunit's: without its label, a sync that
	// runs while they do (the path unit, the periodic timer) does not
	// collect them as sandboxes whose unit is gone.
	delete(sb.Labels, criconfig.LabelManaged)
	delete(c.Labels, criconfig.LabelManaged)
	return sb, c, nil
}

func podDir(spec *corev1.Pod) string {
	return filepath.Join(podshim.DefaultPodRoot, string(spec.UID))
}

// Pod is a pod the floor started.
type Pod struct {
	Spec      *corev1.Pod
	Sandbox   string
	Container string
	// LogDir is the sandbox's log directory, removed with the pod.
	LogDir string
}

// Start makes the calls that bring the pod up once its configs are built
// (Configs): RunPodSandbox, ImageStatus, CreateContainer, StartContainer,
// as podshim makes them.
func Start(ctx context.Context, rt *criclient.Client, spec *corev1.Pod, sandbox *runtimeapi.PodSandboxConfig, c *runtimeapi.ContainerConfig, image string) (*Pod, error) {
	return StartOn(ctx, rt, "", spec, sandbox, c, image)
}

// StartOn is Start with the runtime handler handler (the runtime's
// configured name of an OCI runtime; "": its default).
func StartOn(ctx context.Context, rt *criclient.Client, handler string, spec *corev1.Pod, sandbox *runtimeapi.PodSandboxConfig, c *runtimeapi.ContainerConfig, image string) (*Pod, error) {
	id, err := rt.RunPodSandbox(ctx, sandbox, handler)
	if err != nil {
		return nil, err
	}
	p := &Pod{Spec: spec, Sandbox: id, LogDir: sandbox.LogDirectory}
	img, err := rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: image}, false)
	if err != nil || img.Image == nil {
		return p, fmt.Errorf("image %s: %v", image, err)
	}
	c.Image = &runtimeapi.ImageSpec{Image: img.Image.Id, UserSpecifiedImage: image}
	if p.Container, err = rt.CreateContainer(ctx, id, c, sandbox); err != nil {
		return p, err
	}
	return p, rt.StartContainer(ctx, p.Container)
}

// Remove stops and removes the pod, its directory and its log directory.
func (p *Pod) Remove(ctx context.Context, rt *criclient.Client) {
	if p.Container != "" {
		_ = rt.StopContainer(ctx, p.Container, 0)
	}
	_ = rt.StopPodSandbox(ctx, p.Sandbox)
	_ = rt.RemovePodSandbox(ctx, p.Sandbox)
	os.RemoveAll(podDir(p.Spec))
	if p.LogDir != "" {
		os.RemoveAll(p.LogDir)
	}
}
