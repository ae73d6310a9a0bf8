package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/cni/cache"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

// Runtime is the part of the CRI the sandbox collector uses.
type Runtime interface {
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	StopContainer(ctx context.Context, containerID string, timeout int64) error
	StopPodSandbox(ctx context.Context, podSandboxID string) error
	RemovePodSandbox(ctx context.Context, podSandboxID string) error
}

// listTimeout bounds the collector's question to the runtime.
const listTimeout = 5 * time.Second

// collectSandboxes removes the sandboxes podunit created whose pod has no
// unit any more. podshim removes its sandbox when its unit stops; this
// catches a unit stopped while podshim was not running (waiting to be
// restarted, or killed), so a sandbox is never leaked.
//
// It returns the UIDs of the pods whose sandboxes remain, or nil when the
// runtime could not be asked.
func collectSandboxes(ctx context.Context, rt Runtime, loaded map[string]bus.Running, report Reporter) map[string]bool {
	// Asked briefly: a runtime that does not answer (restarting) must not
	// hold up the next sync; this one's leftovers are the next one's.
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	list, err := rt.ListPodSandbox(lctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{podshim.LabelManaged: "true"}})
	cancel()
	if err != nil {
		report.Errorf("orphaned sandboxes not collected: list sandboxes: %v", err)
		return nil
	}
	remaining := map[string]bool{}
	for _, sb := range list {
		ns, name := sb.Labels[podshim.LabelPodNamespace], sb.Labels[podshim.LabelPodName]
		if _, ok := loaded[units.ServiceName(ns, name)]; ok {
			remaining[sb.Labels[podshim.LabelPodUID]] = true
			continue
		}
		if err := removeSandbox(ctx, rt, sb.Id); err != nil {
			report.Errorf("pod %s/%s: orphaned sandbox %s: %v", ns, name, sb.Id, err)
			continue
		}
		report.Infof("removed sandbox %s of pod %s/%s: no unit owns it", sb.Id, ns, name)
	}
	return remaining
}

// podDirMinAge spares a pod directory younger than this: its podshim may be
// between creating the sandbox and the directory.
const podDirMinAge = time.Minute

// collectPodDirs removes the pod directories (podshim.DefaultPodRoot/<uid>:
// /etc/hosts, emptyDir, secret and other volumes, some on a tmpfs) of pods
// that no longer exist: neither desired nor with a sandbox, and with each
// its log directory under logRoot (<namespace>_<name>_<uid>, which only the
// pod's podshim would remove). podshim removes both at teardown; this
// catches a pod whose podshim was not running when it was stopped (killed,
// or the machine lost power), so that neither disk nor memory leaks. A log
// directory goes only with a pod directory: one without is not podunit's
// to remove (a kubelet's, say).
func collectPodDirs(root, logRoot string, keep map[string]bool, now time.Time, report Reporter) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			report.Errorf("orphaned pod directories not collected: %v", err)
		}
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !e.IsDir() || keep[e.Name()] || now.Sub(info.ModTime()) < podDirMinAge {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if err := removeMounted(dir); err != nil {
			report.Errorf("orphaned pod directory %s: %v", dir, err)
			continue
		}
		report.Infof("removed pod directory %s: its pod is gone", dir)
		if logRoot == "" {
			continue
		}
		logs, _ := filepath.Glob(filepath.Join(logRoot, "*_*_"+e.Name()))
		for _, l := range logs {
			if err := os.RemoveAll(l); err != nil {
				report.Errorf("orphaned pod log directory %s: %v", l, err)
				continue
			}
			report.Infof("removed pod log directory %s: its pod is gone", l)
		}
	}
}

// removeMounted unmounts everything mounted below dir, deepest first, and
// removes it.
func removeMounted(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	return os.RemoveAll(dir)
}

// orphanStopTimeout is the grace period given to the containers of an
// orphaned sandbox: their pod's unit is gone, so its grace period is unknown.
const orphanStopTimeout = 10

func removeSandbox(ctx context.Context, rt Runtime, id string) error {
	ctrs, err := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: id})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range ctrs {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			if err := rt.StopContainer(ctx, c.Id, orphanStopTimeout); err != nil {
				return fmt.Errorf("stop container %s: %w", c.Id, err)
			}
		}
	}
	if _, err := cache.StopSandbox(ctx, rt, cache.Dir, id); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if err := rt.RemovePodSandbox(ctx, id); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	return nil
}
