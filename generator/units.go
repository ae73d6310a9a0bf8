package generator

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
)

// UnitConfig says how pods become units on this machine.
type UnitConfig struct {
	PodshimPath string // absolute path of the podshim binary
	// Podshim holds the podshim arguments the configuration sets (log
	// rotation, resolver configuration); Unit adds the pod's own.
	Podshim      podspec.Args
	SpecDir      string // where the pod spec files live, e.g. /run/podunit/specs
	CRIEndpoint  string // e.g. unix:///run/containerd/containerd.sock
	CgroupDriver string // units.CgroupDriverSystemd or units.CgroupDriverCgroupfs
	// JobDir is where a Job pod's podshim records its end
	// (podspec.DefaultJobDir); "": not recorded by podshim.
	JobDir string
	// ImagePresent tells whether the runtime has an image; nil: taken as
	// present. A pod that must pull at its start is ordered after
	// network-online.target (pullsAtStart), one that need not is not held
	// back by a network that is slow to come up at boot.
	ImagePresent func(image string) bool
	// RestartSteps: the manager paces restarts itself with RestartSteps=
	// and RestartMaxDelaySec= (systemd 254 and later, SystemdHasRestartSteps);
	// otherwise podshim waits out podspec.DefaultRestartBackoff.
	RestartSteps bool
}

// SystemdHasRestartSteps tells whether the systemd of this version string
// ("252.38-1~deb12u1", "257.9-1") takes RestartSteps= and
// RestartMaxDelaySec=: 254 and later.
func SystemdHasRestartSteps(version string) bool {
	major, _, ok := ParseVersion(version)
	return ok && major >= 254
}

// Timing of every pod unit.
const (
	// startTimeout is how long podshim may go without a sign of progress
	// before the pod is ready: it extends the timeout (EXTEND_TIMEOUT_USEC)
	// on every keepalive (30 s), and while pulling.
	startTimeout = 90 * time.Second
	// watchdog restarts a podshim that stopped pinging (hung): longer than
	// any single CRI call may take.
	watchdog = 3 * time.Minute
	// stopMargin is added to the grace period for stopping and removing the
	// sandbox after the containers are gone.
	stopMargin = podspec.StopMargin
)

// runtimeUnits are ordered before every pod so that at shutdown pods stop
// before the runtime does. Ordering against a unit that does not exist is a
// no-op, so both runtimes can be named.
var runtimeUnits = []string{"containerd.service", "crio.service"}

// SpecPath is where the spec file of pod namespace/name with the given config
// hash lives. The hash in the name means a file never changes once written:
// a new config is a new file.
func SpecPath(cfg UnitConfig, namespace, name, hash string) string {
	return filepath.Join(cfg.SpecDir, fmt.Sprintf("%s_%s-%s.json", namespace, name, hash))
}

// CronSpecPath is where the spec file of CronJob namespace/name's job
// template lives, the CronJob's hash (CronHash) in its name: a directory of
// its own, so that no template is taken for a pod's spec.
func CronSpecPath(cfg UnitConfig, namespace, name, hash string) string {
	return filepath.Join(cfg.SpecDir, "cronjobs", fmt.Sprintf("%s_%s-%s.json", namespace, name, hash))
}

// Unit translates a pod into its service unit.
func Unit(cfg UnitConfig, p *Pod) (*units.Unit, error) {
	ns, name := p.Namespace(), p.Name()
	parent, err := units.CgroupParent(cfg.CgroupDriver, ns, name)
	if err != nil {
		return nil, err
	}
	grace := time.Duration(*p.Spec.Spec.TerminationGracePeriodSeconds) * time.Second
	var after []string
	for _, ref := range afterPods(p.Spec) {
		after = append(after, units.ServiceName(ref.namespace, ref.name))
	}
	// At shutdown node-critical pods stop last, after every other pod has
	// stopped (podunit-critical.target sits between them).
	order, before := append([]string{}, runtimeUnits...), []string(nil)
	if critical(p.Spec) {
		before = []string{units.CriticalTarget}
	} else {
		order = append(order, units.CriticalTarget)
	}
	var wants []string
	if pullsAtStart(p.Spec, cfg.ImagePresent) {
		order = append(order, networkOnline)
		wants = []string{networkOnline}
	}
	// After podshim failed (killed, hung, the runtime unreachable) systemd
	// runs it again, later each time (podspec.RestartBackoff); the new
	// podshim adopts the pod's sandbox and containers. Container restarts
	// are podshim's, per container with the kubelet's back-off.
	backoff := podspec.DefaultRestartBackoff
	args := podshimArgs(cfg, p, parent)
	var steps int
	var maxDelay time.Duration
	if cfg.RestartSteps {
		steps, maxDelay = backoff.Steps, backoff.MaxDelay
	} else {
		args.RestartBackoff = true
	}
	return &units.Unit{
		Name:       units.ServiceName(ns, name),
		Namespace:  ns,
		PodName:    name,
		ConfigHash: p.Hash,
		Source:     p.Source,
		Group:      rolloutGroup(p.Spec),
		Ordered:    orderedStart(p.Spec),

		After:              order,
		Before:             before,
		Wants:              wants,
		StartAfter:         after,
		StartLimitInterval: 0, // never give up on a pod: the restart delay paces retries
		// A failed pod's unit stays, failed, for `systemctl status`; a
		// stopped one goes.
		CollectMode: "inactive",

		Type:         "notify",
		NotifyAccess: "main",
		ExecStart:    args.Argv(cfg.PodshimPath),
		Environment:  podshimEnvironment,
		Slice:        units.SliceName(ns, name),
		// A pod that finished (restartPolicy OnFailure or Never) stays
		// active (exited) when it succeeded and failed when it failed
		// (podshim's exit status 4), and is not run again.
		RemainAfterExit:          true,
		Restart:                  "on-failure",
		RestartSec:               backoff.Sec,
		RestartSteps:             steps,
		RestartMaxDelay:          maxDelay,
		RestartPreventExitStatus: []int{podspec.ExitPodFailed},
		TimeoutStartSec:          startTimeout,
		WatchdogSec:              watchdog,
		TimeoutStopSec:           grace + stopMargin,
		// podshim alone gets SIGTERM and stops the containers through the
		// runtime; anything of the unit still running at the timeout is killed.
		KillMode: "mixed",
		Limits:   sliceLimits(p.Spec),
	}, nil
}

// podshimEnvironment: no transparent huge pages for podshim's heap. Where
// the kernel gives them to every process (transparent_hugepage=always, as
// Debian 13's does), a few 2 MiB pages of podshim's small heap were most of
// its private memory: 5.7–7.1 MiB with 4–6 MiB of huge pages, 5.0 MiB
// without (docs/benchmarks.md). Go reads the setting after its first heap
// chunk is mapped, so one huge page can remain.
var podshimEnvironment = []string{"GODEBUG=disablethp=1"}

// networkOnline is the target a pod that pulls at its start waits for.
const networkOnline = "network-online.target"

// pullsAtStart tells whether starting the pod pulls an image: a container
// (init and sidecar ones included) or an image volume whose pull policy is
// Always, or IfNotPresent with the image not on this machine. Never pulls
// nothing.
func pullsAtStart(pod *corev1.Pod, present func(string) bool) bool {
	pulls := func(image string, policy corev1.PullPolicy) bool {
		return policy == corev1.PullAlways || policy == corev1.PullIfNotPresent && present != nil && !present(image)
	}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if pulls(c.Image, c.ImagePullPolicy) {
				return true
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Image != nil && pulls(v.Image.Reference, v.Image.PullPolicy) {
			return true
		}
	}
	return false
}

// critical tells whether the pod is node-critical by its priority class,
// as the kubelet's graceful node shutdown tells it: it stops last.
func critical(pod *corev1.Pod) bool {
	switch pod.Spec.PriorityClassName {
	case SystemNodeCritical, SystemClusterCritical:
		return true
	}
	return false
}

// podshimArgs are the command line of the pod's podshim: its spec file,
// the runtime, its cgroup parent, and what the configuration sets.
func podshimArgs(cfg UnitConfig, p *Pod, cgroupParent string) podspec.Args {
	a := cfg.Podshim
	ns, name := p.Namespace(), p.Name()
	a.Spec, a.CRIEndpoint, a.CgroupParent = SpecPath(cfg, ns, name, p.Hash), cfg.CRIEndpoint, cgroupParent
	if cfg.JobDir != "" && strings.HasPrefix(p.Spec.Annotations[AnnotationOwner], "Job/") {
		a.FinishedRecord = podspec.JobRecordPath(cfg.JobDir, ns, name, p.Hash)
	}
	return a
}

// rolloutGroup is the workload whose replicas are replaced one at a time:
// a Deployment (unless its strategy is Recreate: then every old pod stops
// before the new ones start, as for pods of no group), ReplicaSet,
// ReplicationController or StatefulSet.
func rolloutGroup(pod *corev1.Pod) string {
	owner := pod.Annotations[AnnotationOwner]
	kind, _, _ := strings.Cut(owner, "/")
	switch kind {
	case "Deployment":
		if pod.Annotations[AnnotationStrategy] == "Recreate" {
			return ""
		}
		return owner
	case "ReplicaSet", "ReplicationController", "StatefulSet":
		return owner
	}
	return ""
}

// orderedStart tells whether the pod's workload starts its pods one at a
// time, each ready before the next: a StatefulSet's under OrderedReady.
func orderedStart(pod *corev1.Pod) bool {
	return strings.HasPrefix(pod.Annotations[AnnotationOwner], "StatefulSet/") && pod.Annotations[AnnotationStrategy] != "Parallel"
}

// AnnotationAfter orders a pod after others: "<pod>[,<pod>…]", each a name
// in the pod's namespace or namespace/name. The pod starts once their units
// are active (ready: READY=1), by a hand-off unit that waits for them
// (Unit.StartAfter); not by After=/Wants=, which would keep their units
// loaded, and so impossible to replace.
const AnnotationAfter = "podunit.io/after"

type podRef struct{ namespace, name string }

// afterPods parses the pod's podunit.io/after annotation (validated).
func afterPods(pod *corev1.Pod) []podRef {
	v := strings.TrimSpace(pod.Annotations[AnnotationAfter])
	if v == "" {
		return nil
	}
	var refs []podRef
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		ns, name, ok := strings.Cut(item, "/")
		if !ok {
			ns, name = pod.Namespace, item
		}
		refs = append(refs, podRef{ns, name})
	}
	return refs
}

// sliceOverhead is the memory the pod's slice allows beyond its containers'
// limits: podshim and the pause process live there too.
const sliceOverhead = 32 << 20

// sliceLimits are the pod's cgroup limits as the kubelet computes them: a
// resource is limited only when every container limits it; the app
// containers and sidecars run together, a regular init container alone.
func sliceLimits(pod *corev1.Pod) units.SliceLimits {
	sum := func(name corev1.ResourceName, value func(q resource.Quantity) int64) (int64, bool) {
		var running, initMax int64
		for _, c := range pod.Spec.InitContainers {
			q, ok := c.Resources.Limits[name]
			if !ok || q.IsZero() {
				return 0, false
			}
			if c.RestartPolicy != nil { // a sidecar runs with everything after it
				running += value(q)
			} else {
				initMax = max(initMax, running+value(q))
			}
		}
		for _, c := range pod.Spec.Containers {
			q, ok := c.Resources.Limits[name]
			if !ok || q.IsZero() {
				return 0, false
			}
			running += value(q)
		}
		return max(running, initMax), true
	}
	if r := pod.Spec.Resources; r != nil {
		// Pod-level limits win over the containers' sum.
		inner := sum
		sum = func(name corev1.ResourceName, value func(q resource.Quantity) int64) (int64, bool) {
			if q, ok := r.Limits[name]; ok && !q.IsZero() {
				return value(q), true
			}
			return inner(name, value)
		}
	}
	var l units.SliceLimits
	if mem, ok := sum(corev1.ResourceMemory, func(q resource.Quantity) int64 { return q.Value() }); ok {
		l.MemoryMax = uint64(mem) + sliceOverhead
	}
	if milli, ok := sum(corev1.ResourceCPU, func(q resource.Quantity) int64 { return q.MilliValue() }); ok {
		l.CPUQuotaPerSec = uint64(milli) * 1000 // 1000m is 1 s of CPU per second
	}
	return l
}

// FromSpec is the pod of a spec file as it last ran, with its source and
// config hash from its annotations; it takes podspec.ReadSpec's results:
//
//	p, err := generator.FromSpec(podspec.ReadSpec(path))
func FromSpec(pod *corev1.Pod, err error) (*Pod, error) {
	if err != nil {
		return nil, err
	}
	return &Pod{Source: pod.Annotations[AnnotationManifest], Hash: pod.Annotations[AnnotationConfigHash], Spec: pod}, nil
}
