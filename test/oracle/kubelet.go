package oracle

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The kubelet as the judge of behaviour (issue #29): each Behaviour is a
// static pod run once under the real kubelet (standalone, staticPodPath,
// its read-only port) and once under podunit, on the same runtime in the
// same test bed. What a user can see of it — the container's own account
// of what it saw (written to its termination message), states, reasons,
// exit codes, restart counts, conditions, the /pods JSON — is observed on
// each side, normalised (names, addresses, IDs, times) and compared. The
// differences that stand are listed with their reason in
// docs/kubelet-oracle.md; test/e2e's TestKubeletOracle runs it.

// Behaviour is one case of the catalogue.
type Behaviour struct {
	Name string
	// Short: one of the ten behaviours make test runs.
	Short bool
	// Pod is the manifest; "{{name}}" stands for the pod's name (kb-<Name>).
	Pod string
	// Done tells when what the behaviour shows has happened. Until then
	// (or until the catalogue's deadline) the pod is watched.
	Done func(p *corev1.Pod) bool
	// Ignore drops observations whose key has one of these prefixes:
	// what moves while the pod is watched (a crash-looping container's
	// current state).
	Ignore []string
	// AtLeast turns a count into "≥ N" when it reached N: restarts that
	// go on after Done.
	AtLeast map[string]int
	// Objects are other documents (a ConfigMap) the pod refers to, in a
	// file of their own beside it; "{{name}}" as in Pod.
	Objects string
	// Within bounds the watch when Done may never hold on a side (a pod
	// one side refuses): then the pod is observed as it is. 0: the
	// catalogue's deadline.
	Within time.Duration
	// AfterFiles are files the pod writes in its hostPath directory
	// (HostDir) while it is stopped (a preStop hook, a SIGTERM trap), read
	// once its side removed it: observed as "after.<file>".
	AfterFiles []string
}

// HostDir is the host directory a behaviour's pod may mount (hostPath
// /var/lib/kubelet-oracle/{{name}}).
func (b Behaviour) HostDir() string { return "/var/lib/kubelet-oracle/" + b.PodName() }

// ObjectsManifest is Objects with the pod's name.
func (b Behaviour) ObjectsManifest() string {
	return strings.ReplaceAll(b.Objects, "{{name}}", b.PodName())
}

// PodName is the name of a behaviour's pod.
func (b Behaviour) PodName() string { return "kb-" + b.Name }

// Manifest is the behaviour's pod with its name.
func (b Behaviour) Manifest() string { return strings.ReplaceAll(b.Pod, "{{name}}", b.PodName()) }

// Observation is what a user sees of one behaviour on one side, as
// flattened keys ("container[c].state", "condition.Ready", …).
type Observation map[string]string

// Observe reads what a user sees of pod p: its phase and reason, QoS
// class, conditions, and every container's state, last state, readiness
// and restarts, with the termination messages (the container's account
// of what it saw). Names, addresses, IDs and times are normalised, so the
// kubelet's pod "kb-x-<node>" and podunit's "kb-x" read alike. done says
// whether the behaviour's Done held when p was read.
func (b Behaviour) Observe(p *corev1.Pod, done bool) Observation {
	o := Observation{}
	if !done {
		o["done"] = "not within the deadline"
	}
	if p == nil {
		o["pod"] = "not listed"
		return o
	}
	norm := normaliser(p, b.PodName())
	o["phase"] = string(p.Status.Phase)
	o["status.reason"] = p.Status.Reason
	o["qosClass"] = string(p.Status.QOSClass)
	o["podIP"] = presence(p.Status.PodIP)
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			continue // no scheduler on either side
		}
		v := string(c.Status)
		if c.Reason != "" {
			v += " (" + c.Reason + ")"
		}
		o["condition."+string(c.Type)] = v
	}
	statuses := func(kind string, ss []corev1.ContainerStatus) {
		for _, s := range ss {
			k := kind + "[" + s.Name + "]."
			o[k+"state"] = state(s.State)
			if t := s.State.Terminated; t != nil {
				o[k+"message"] = norm(t.Message)
			}
			o[k+"lastState"] = state(s.LastTerminationState)
			o[k+"ready"] = fmt.Sprint(s.Ready)
			if s.Started != nil {
				o[k+"started"] = fmt.Sprint(*s.Started)
			}
			o[k+"restarts"] = fmt.Sprint(s.RestartCount)
			if n, ok := b.AtLeast[k+"restarts"]; ok && int(s.RestartCount) >= n {
				o[k+"restarts"] = fmt.Sprintf("≥ %d", n)
			}
			o[k+"image"] = s.Image
		}
	}
	statuses("init", p.Status.InitContainerStatuses)
	statuses("container", p.Status.ContainerStatuses)
	for k := range o {
		for _, prefix := range b.Ignore {
			if strings.HasPrefix(k, prefix) {
				delete(o, k)
			}
		}
	}
	return o
}

func presence(s string) string {
	if s == "" {
		return "none"
	}
	return "set"
}

func state(s corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return "waiting: " + s.Waiting.Reason
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated: %s, exit code %d", s.Terminated.Reason, s.Terminated.ExitCode)
	}
	return "none"
}

// normaliser replaces in a container's account what differs by
// construction between the two sides: the pod's name (the kubelet's
// static pod is "<name>-<node>"), the node's name, the pod's and the
// host's addresses, the pod's UID.
func normaliser(p *corev1.Pod, name string) func(string) string {
	var res []*regexp.Regexp
	var tos []string
	add := func(from, to string) {
		if from != "" {
			// Whole words only: a node named "vm" is not in "/dev/vmci".
			res = append(res, regexp.MustCompile(`(^|[^A-Za-z0-9_.-])`+regexp.QuoteMeta(from)+`($|[^A-Za-z0-9_-])`))
			tos = append(tos, "${1}"+to+"${2}")
		}
	}
	// Longest first: the kubelet's pod name contains the node's and the
	// behaviour's.
	add(string(p.UID), "<uid>")
	if p.Name != name {
		add(p.Name, "<pod>")
	}
	add(name, "<pod>")
	add(p.Spec.NodeName, "<node>")
	for _, ip := range p.Status.PodIPs {
		add(ip.IP, "<pod IP>")
	}
	add(p.Status.PodIP, "<pod IP>")
	add(p.Status.HostIP, "<host IP>")
	return func(s string) string {
		for i, re := range res {
			s = re.ReplaceAllString(s, tos[i])
		}
		return strings.TrimSpace(s)
	}
}

// Ready reports whether the pod's Ready condition is True.
func Ready(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue }

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// Finished reports whether the pod reached Succeeded or Failed.
func Finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// container is the status of the container (or init container) named.
func container(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, ss := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range ss {
			if ss[i].Name == name {
				return &ss[i]
			}
		}
	}
	return nil
}

// Restarted reports whether container c restarted at least n times.
func Restarted(c string, n int32) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		s := container(p, c)
		return s != nil && s.RestartCount >= n
	}
}

// Waiting reports whether container c waits for a reason other than
// being created: the runtime or the kubelet said why it does not start.
func Waiting(c string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		s := container(p, c)
		return s != nil && s.State.Waiting != nil && s.State.Waiting.Reason != "" && s.State.Waiting.Reason != "ContainerCreating" && s.State.Waiting.Reason != "PodInitializing"
	}
}

// RunningFor reports whether container c has run for d (a readiness
// probe that fails has had its failureThreshold periods by then).
func RunningFor(c string, d time.Duration) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		s := container(p, c)
		return s != nil && s.State.Running != nil && time.Since(s.State.Running.StartedAt.Time) >= d
	}
}

// Settled reports whether pod p, whose behaviour's Done has held for
// since, is ready to be observed: after settle, and for a pod that ended,
// once its sandbox is down (PodReadyToStartContainers not True) or
// settleEnded has passed. Each side stops an ended pod's sandbox on its
// own time (the kubelet within seconds, sometimes after its status said
// the pod ended): what stands is compared, not who is first.
func Settled(p *corev1.Pod, since time.Duration) bool {
	const settle, settleEnded = 3 * time.Second, 20 * time.Second
	switch {
	case since < settle:
		return false
	case !Finished(p) || since >= settleEnded:
		return true
	}
	return condition(p, corev1.PodReadyToStartContainers) != corev1.ConditionTrue
}

// PendingFor reports whether the pod has been Pending for d since it
// was started: what does not start, for a reason only events give.
func PendingFor(d time.Duration) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodPending && p.Status.StartTime != nil && time.Since(p.Status.StartTime.Time) >= d
	}
}

func either(a, b func(*corev1.Pod) bool) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool { return a(p) || b(p) }
}

// KubeletFinding is one observation that differs between the kubelet and
// podunit for one behaviour.
type KubeletFinding struct {
	Behaviour, Key   string
	Kubelet, Podunit string
	Reason           string
}

// Row is the finding's key in the table.
func (f KubeletFinding) Row() string { return f.Behaviour + " | " + f.Key }

// CompareObservations lists every key whose value differs (a key one side
// lacks reads "absent").
func CompareObservations(behaviour string, kubelet, podunit Observation) []KubeletFinding {
	keys := map[string]bool{}
	for k := range kubelet {
		keys[k] = true
	}
	for k := range podunit {
		keys[k] = true
	}
	var out []KubeletFinding
	for k := range keys {
		kv, kok := kubelet[k]
		pv, pok := podunit[k]
		if kok && pok && kv == pv {
			continue
		}
		if !kok {
			kv = "absent"
		}
		if !pok {
			pv = "absent"
		}
		out = append(out, KubeletFinding{Behaviour: behaviour, Key: k, Kubelet: kv, Podunit: pv})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Row() < out[j].Row() })
	return out
}

// KubeletTable is docs/kubelet-oracle.md.
type KubeletTable struct {
	Version  string // the kubelet's
	Runtime  string // the test bed's
	Ran      []string
	Agree    map[string]int // behaviour → observations alike
	Findings []KubeletFinding
}

// ParseKubeletTable reads the reasons of a table RenderKubeletTable wrote,
// by row.
func ParseKubeletTable(r io.Reader) (map[string]string, error) {
	return parseReasons(r, func(cells []string) string {
		return strings.Trim(cells[0], "`") + " | " + strings.Trim(cells[1], "`")
	})
}

// RenderKubeletTable writes the table as markdown.
func RenderKubeletTable(w io.Writer, t KubeletTable, all []Behaviour) error {
	var b strings.Builder
	b.WriteString(`# podunit and the kubelet

Generated by ` + "`make test-kubelet KUBELET_FLAGS=-update`" + ` (test/e2e's
TestKubeletOracle; the catalogue is test/oracle/behaviours.go). In one test
bed, on one runtime, every behaviour of the catalogue runs as a static pod
under the real kubelet (test/versions.env's KUBERNETES_VERSION, standalone:
` + "`staticPodPath`" + `, its read-only port), then under podunit. What a user
sees of it on each side — the container's own account of what it saw
(its termination message), states, reasons, exit codes, restart counts,
readiness and the pod's conditions, as each side's ` + "`/pods`" + ` shows them —
is normalised (pod and node names, addresses, UIDs) and compared. The test
fails on a difference this table does not list, and on a listed one that is
gone; ` + "`-update`" + ` rewrites the table and keeps each row's reason. A row
without a reason fails the test: write why the difference stands (or fix
podunit). ` + "`make test`" + ` runs the ten behaviours marked short.

`)
	fmt.Fprintf(&b, "Last written from a run of the kubelet %s on %s.\n\n", t.Version, t.Runtime)
	b.WriteString("## Behaviours\n\n| behaviour | short | observations alike | differences |\n|---|---|---|---|\n")
	diffs := map[string]int{}
	for _, f := range t.Findings {
		diffs[f.Behaviour]++
	}
	ran := map[string]bool{}
	for _, n := range t.Ran {
		ran[n] = true
	}
	for _, bh := range all {
		short := ""
		if bh.Short {
			short = "yes"
		}
		if !ran[bh.Name] {
			fmt.Fprintf(&b, "| `%s` | %s | not run | |\n", bh.Name, short)
			continue
		}
		fmt.Fprintf(&b, "| `%s` | %s | %d | %d |\n", bh.Name, short, t.Agree[bh.Name], diffs[bh.Name])
	}
	b.WriteString(`
## Differences

| behaviour | observation | kubelet | podunit | reason |
|---|---|---|---|---|
`)
	fs := append([]KubeletFinding(nil), t.Findings...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Row() < fs[j].Row() })
	for _, f := range fs {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", f.Behaviour, f.Key, cell(f.Kubelet), cell(f.Podunit), cell(f.Reason))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
