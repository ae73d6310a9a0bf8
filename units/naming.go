package units

import (
	"fmt"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
)

// Names of podunit's own units.
const (
	// ParentSlice holds every pod's slice.
	ParentSlice = "podunit.slice"
	// CriticalTarget orders pods at shutdown, as the kubelet's graceful
	// node shutdown does: node-critical pods (Before=) stop after it, every
	// other pod (After=) before it. podunit-sync.service starts it before
	// any pod, so that it never orders a pod's start. A static unit: pods
	// that refer to it are not kept loaded by it, as they would be by
	// referring to each other.
	CriticalTarget = "podunit-critical.target"
	// SyncUnit runs podunit sync.
	SyncUnit = "podunit-sync.service"
	// servicePrefix and sliceStem make pod-<stem>.service and podunit-<stem>.slice.
	servicePrefix = "pod-"
	serviceSuffix = ".service"
	// unitNameMax is systemd's UNIT_NAME_MAX, the suffix included.
	unitNameMax = 255
)

// Patterns of podunit's pod and CronJob units, for ListUnitsByPatterns.
const (
	ServicePattern = servicePrefix + "*" + serviceSuffix
	TimerPattern   = timerPrefix + "*" + timerSuffix
)

// stem is "<name>" in namespace default and "<namespace>_<name>" otherwise.
// Kubernetes names are DNS-1123 (lower-case letters, digits, '-' and '.'), so
// the stem is a valid unit name prefix without escaping, and '_' cannot occur
// in either part, which keeps stems unique.
func stem(namespace, name string) string {
	if namespace == "default" {
		return name
	}
	return namespace + "_" + name
}

// ServiceName is the pod's service: pod-<name>.service, or
// pod-<namespace>_<name>.service outside namespace default.
func ServiceName(namespace, name string) string {
	return servicePrefix + stem(namespace, name) + serviceSuffix
}

// SliceName is the pod's own slice, a child of podunit.slice. A '-' in a
// slice name means nesting, so the stem is escaped: pod static-web gets
// podunit-static\x2dweb.slice.
func SliceName(namespace, name string) string {
	return "podunit-" + unit.UnitNameEscape(stem(namespace, name)) + ".slice"
}

// HandoffName is the unit that starts a pod's next generation once the old
// one has stopped: podunit-handoff-<stem>.service for pod-<stem>.service.
func HandoffName(service string) string {
	return "podunit-handoff-" + service[len(servicePrefix):]
}

// HandoffPod is the pod whose hand-off unit is handoff (HandoffName's
// inverse); ok is false for another unit.
func HandoffPod(handoff string) (namespace, name string, ok bool) {
	const prefix = "podunit-handoff-"
	if !strings.HasPrefix(handoff, prefix) || !strings.HasSuffix(handoff, serviceSuffix) {
		return "", "", false
	}
	stem := strings.TrimSuffix(strings.TrimPrefix(handoff, prefix), serviceSuffix)
	if ns, name, found := strings.Cut(stem, "_"); found {
		return ns, name, true
	}
	return "default", stem, stem != ""
}

// RolloutName is the unit that replaces a workload's replicas one at a time:
// podunit-rollout-<namespace>_<Kind>-<name>.service.
func RolloutName(namespace, group string) string {
	return "podunit-rollout-" + unit.UnitNameEscape(namespace+"_"+group) + serviceSuffix
}

// Cgroup drivers, as the container runtime is configured.
const (
	CgroupDriverSystemd  = "systemd"
	CgroupDriverCgroupfs = "cgroupfs"
)

// CgroupParent is what the pod sandbox gets as its CRI CgroupParent: the
// slice name for the systemd driver, the slice's cgroup path for cgroupfs.
// Either way the pod's containers land inside the pod's slice.
func CgroupParent(driver, namespace, name string) (string, error) {
	slice := SliceName(namespace, name)
	switch driver {
	case CgroupDriverSystemd:
		return slice, nil
	case CgroupDriverCgroupfs:
		return "/" + ParentSlice + "/" + slice, nil
	}
	return "", fmt.Errorf("cgroup driver %q: must be %s or %s", driver, CgroupDriverSystemd, CgroupDriverCgroupfs)
}

// CheckPodName reports a namespace/name pair whose unit or slice name would
// exceed systemd's limit.
func CheckPodName(namespace, name string) error {
	for _, n := range []string{ServiceName(namespace, name), SliceName(namespace, name)} {
		if len(n) > unitNameMax {
			return fmt.Errorf("unit name %q is %d characters, over systemd's limit of %d", n, len(n), unitNameMax)
		}
	}
	return nil
}
