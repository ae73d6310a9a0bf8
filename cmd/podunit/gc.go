package main

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

// sandboxRuntime is the part of the CRI the sandbox collector uses.
type sandboxRuntime interface {
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	StopContainer(ctx context.Context, containerID string, timeout int64) error
	StopPodSandbox(ctx context.Context, podSandboxID string) error
	RemovePodSandbox(ctx context.Context, podSandboxID string) error
}

// collectSandboxes removes the sandboxes podunit created whose pod has no
// unit any more. podshim removes its sandbox when its unit stops; this
// catches a unit stopped while podshim was not running (waiting to be
// restarted, or killed), so a sandbox is never leaked.
func collectSandboxes(ctx context.Context, rt sandboxRuntime, loaded map[string]units.Running, report *reporter) {
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{podshim.LabelManaged: "true"}})
	if err != nil {
		report.Errorf("orphaned sandboxes not collected: list sandboxes: %v", err)
		return
	}
	for _, sb := range list {
		ns, name := sb.Labels[podshim.LabelPodNamespace], sb.Labels[podshim.LabelPodName]
		if _, ok := loaded[units.ServiceName(ns, name)]; ok {
			continue
		}
		if err := removeSandbox(ctx, rt, sb.Id); err != nil {
			report.Errorf("pod %s/%s: orphaned sandbox %s: %v", ns, name, sb.Id, err)
			continue
		}
		report.Infof("removed sandbox %s of pod %s/%s: no unit owns it", sb.Id, ns, name)
	}
}

// orphanStopTimeout is the grace period given to the containers of an
// orphaned sandbox: their pod's unit is gone, so its grace period is unknown.
const orphanStopTimeout = 10

func removeSandbox(ctx context.Context, rt sandboxRuntime, id string) error {
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
	if err := rt.StopPodSandbox(ctx, id); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if err := rt.RemovePodSandbox(ctx, id); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	return nil
}
