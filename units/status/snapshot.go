package status

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
	"github.com/podunit/podunit/units/engine"
)

// Server answers from what systemd, the spec files, podshim's state
// files and the last sync hold: no database of its own to drift.
//
// Answers come from a snapshot of every pod. With watch on (serve turns it
// on), a snapshot is reused until a file it was built from changes (inotify
// on the spec and state directories and the sync record: podshim writes
// its state before it tells systemd READY=1, so a started pod is in the
// next answer) or until it is maxAge old, which bounds how long a change
// only systemd knows of (a unit failing) takes to show. Without watch every
// answer comes from a build that began after the request arrived.
// Requests that arrive during a build share the next one, and a build
// re-reads only what changed: a spec file never changes (its name holds the
// config hash), a state file is re-read when its size or time changes, and
// the units' figures from systemd are refreshed in the background once
// they are statsMaxAge old.
type Server struct {
	// SpecDir holds the pods' spec files, StateDir podshim's state files,
	// SyncState the last sync's record (engine.State).
	SpecDir, StateDir, SyncState string
	// Rollouts are the hand-offs' records: a replacement under way or
	// rolled back shows as the pod's ConditionUpToDate.
	Rollouts engine.Rollouts
	// ServiceDir holds the sync's record of the Services
	// (engine.DefaultServiceDir), ServiceTable the node's Service table
	// (service.DefaultTablePath): /services and /endpointslices; "": none.
	ServiceDir, ServiceTable string
	// NodeName is the node's name, each pod's spec.nodeName (as the
	// kubelet's static pods have it; "": left out).
	NodeName string
	// Manager is systemd, for the pod units and their figures; Runtime the
	// container runtime, whose liveness healthz checks.
	Manager bus.Manager
	Runtime Versioner
	// StatsMaxAge is how old the units' figures may be (DefaultStatsMaxAge);
	// 0 reads them in each build.
	StatsMaxAge time.Duration
	// MaxAge bounds a snapshot's reuse while watching (see above;
	// DefaultSnapshotMaxAge).
	MaxAge   time.Duration
	watching atomic.Bool // the watcher runs: changed is trustworthy
	changed  atomic.Bool // a watched file changed since the last build began

	snap       atomic.Pointer[snapshot] // the last one built
	refreshing atomic.Bool              // a background rebuild runs

	build sync.Mutex                // one build at a time; guards what follows
	specs map[string]*generator.Pod // by path
	pods  map[string]*cachedPod     // by unit name

	statsMu         sync.Mutex           // guards stats, statsAt and statsRefreshing
	stats           map[string]unitStats // by unit name
	statsAt         time.Time
	statsRefreshing bool

	metricsOnce    sync.Once
	metricsHandler http.Handler
}

// DefaultStatsMaxAge is how old systemd's figures of the units may be: they are
// counters and gauges, and reading them costs a D-Bus call a unit, which
// systemd answers with all of the unit's ~250 properties. The kubelet's
// own figures (cAdvisor's housekeeping) are as old.
const DefaultStatsMaxAge = 10 * time.Second

// DefaultSnapshotMaxAge bounds the reuse of a snapshot when no watched
// file changed.
const DefaultSnapshotMaxAge = time.Second

// snapshot is every pod at one moment, with the encoded PodList.
type snapshot struct {
	started time.Time
	pods    []*cachedPod         // sorted by namespace and name
	stats   map[string]unitStats // by unit name
	list    []byte               // the /pods answer
	sync    engine.State
	// rollouts are the rollout records, by namespace/name; counters the
	// hand-offs' and auto-update's counters.
	rollouts map[string]*engine.Rollout
	counters map[string]uint64

	// The Services, made on the first request that needs them.
	servicesOnce sync.Once
	serviceView  *serviceView
}

// Annotations podunit adds to the pods it serves.
const (
	AnnotationUnit      = "podunit.io/unit"
	AnnotationUnitState = "podunit.io/unit-state"
	// The unit's cgroup and restarts, from systemd.
	AnnotationUnitRestarts = "podunit.io/unit-restarts"
	AnnotationMemoryBytes  = "podunit.io/memory-bytes"
	AnnotationCPUSeconds   = "podunit.io/cpu-seconds"
)

// Conditions podunit adds to the kubelet's.
const (
	// ConditionManifestValid is false on a pod whose manifest became
	// invalid: it runs on its last good spec.
	ConditionManifestValid corev1.PodConditionType = "podunit.io/ManifestValid"
	// ConditionManifestUnique is false on a pod that other files define too:
	// the first definition runs, the others do not.
	ConditionManifestUnique corev1.PodConditionType = "podunit.io/ManifestUnique"
	// ConditionUpToDate is false on a pod that does not run the generation
	// its manifest asks for: its replacement pulls images (Pulling,
	// ImagePullBackOff), starts (Starting), or was rolled back
	// (RolledBack), the reason says which.
	ConditionUpToDate corev1.PodConditionType = "podunit.io/UpToDate"
)

// snapshot returns the pods: while watching and nothing changed, the last
// snapshot (rebuilt in the background once it is maxAge old); else one whose
// build began after the call.
func (s *Server) snapshot(ctx context.Context) (*snapshot, error) {
	arrived := time.Now()
	if snap := s.snap.Load(); snap != nil && s.watching.Load() && !s.changed.Load() {
		if time.Since(snap.started) >= s.MaxAge && s.refreshing.CompareAndSwap(false, true) {
			go func() {
				defer s.refreshing.Store(false)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				s.rebuild(ctx, time.Now())
			}()
		}
		return snap, nil
	}
	return s.rebuild(ctx, arrived)
}

// rebuild builds a snapshot, unless one whose build began after arrived
// was made while it waited for its turn.
func (s *Server) rebuild(ctx context.Context, arrived time.Time) (*snapshot, error) {
	s.build.Lock()
	defer s.build.Unlock()
	if snap := s.snap.Load(); snap != nil && snap.started.After(arrived) {
		return snap, nil
	}
	s.changed.Store(false)
	snap, err := s.buildSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	s.snap.Store(snap)
	return snap, nil
}

// watch marks the snapshot out of date whenever a spec file, a state file
// or the sync record changes, until ctx ends. Directories that do not exist
// yet are created: podshim and sync create them anyway.
func (s *Server) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	dirs := []string{s.SpecDir, s.StateDir, filepath.Dir(s.SyncState)}
	if s.Rollouts.Dir != "" {
		dirs = append(dirs, s.Rollouts.Dir)
	}

	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			w.Close()
			return err
		}
		if err := w.Add(dir); err != nil {
			w.Close()
			return fmt.Errorf("watch %s: %w", dir, err)
		}
	}
	// The Services' directories when they can be watched (the record's is
	// under /var/lib, read-only to serve): else the snapshot's maximum age
	// bounds how late a change shows.
	for _, d := range []string{s.ServiceDir, filepath.Dir(s.ServiceTable)} {
		if d != "" && d != "." && !slices.Contains(dirs, d) && os.MkdirAll(d, 0o755) == nil {
			w.Add(d)
		}
	}
	s.watching.Store(true)
	go func() {
		defer w.Close()
		defer s.watching.Store(false)
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				s.changed.Store(true)
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				s.changed.Store(true) // events were lost (queue overflow)
			}
		}
	}()
	return nil
}

// buildSnapshot reads the pods of the loaded pod units, each with its last
// spec, the status podshim recorded and its unit's figures from systemd,
// sorted by namespace and name. s.build is held.
func (s *Server) buildSnapshot(ctx context.Context) (*snapshot, error) {
	started := time.Now()
	loaded, err := bus.List(ctx, s.Manager)
	if err != nil {
		return nil, err
	}
	last, _ := engine.ReadState(s.SyncState)
	snap := &snapshot{started: started, sync: last, stats: s.unitStats(ctx, loaded),
		rollouts: s.Rollouts.All(), counters: s.Rollouts.Counters()}
	running := slices.SortedFunc(maps.Values(loaded), func(a, b bus.Running) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.PodName, b.PodName))
	})
	specs := map[string]*generator.Pod{}
	pods := map[string]*cachedPod{}
	var list []byte
	if old := s.snap.Load(); old != nil {
		list = make([]byte, 0, len(old.list))
	}
	for _, r := range running {
		c, err := s.pod(r, snap, specs)
		if err != nil {
			continue // not yet written, or a unit of another tool's making
		}
		pods[r.Name] = c
		snap.pods = append(snap.pods, c)
	}
	for _, key := range slices.Sorted(maps.Keys(last.NotAdmitted)) {
		na := last.NotAdmitted[key]
		ns, name, _ := strings.Cut(key, "/")
		if _, running := loaded[units.ServiceName(ns, name)]; running {
			continue // still stopping
		}
		if c, err := s.rejectedPod(na, specs); err == nil {
			snap.pods = append(snap.pods, c)
		}
	}
	slices.SortStableFunc(snap.pods, func(a, b *cachedPod) int {
		return cmp.Or(cmp.Compare(a.pod.Namespace, b.pod.Namespace), cmp.Compare(a.pod.Name, b.pod.Name))
	})
	list = append(list, podListPrefix...)
	for i, c := range snap.pods {
		if i > 0 {
			list = append(list, ',')
		}
		list = append(list, c.json...)
	}
	s.specs, s.pods = specs, pods
	snap.list = append(list, podListSuffix...)
	return snap, nil
}

// A PodList's JSON around its items, as encoding/json writes it.
const (
	podListPrefix = `{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[`
	podListSuffix = "]}\n"
)

// cachedPod is one pod as served, with its JSON, and what it was made of.
type cachedPod struct {
	key  string
	pod  corev1.Pod
	json []byte
	// activeState is its unit's ("deactivating": the pod is stopping).
	activeState string
	// probeFailures from podshim's state: "container/kind" → count.
	probeFailures map[string]int64
}

// pod is the pod of unit r: the cached one when nothing it is made of
// changed (the spec file, the unit's state and figures, the state file's
// size and time, the last sync's word on its manifest), else made anew.
func (s *Server) pod(r bus.Running, snap *snapshot, specs map[string]*generator.Pod) (*cachedPod, error) {
	path := generator.SpecPath(generator.UnitConfig{SpecDir: s.SpecDir}, r.Namespace, r.PodName, r.ConfigHash)
	p := s.specs[path]
	if p == nil {
		var err error
		if p, err = generator.FromSpec(podspec.ReadSpec(path)); err != nil {
			return nil, err
		}
	}
	specs[path] = p
	statePath := podshim.StatePath(s.StateDir, r.Namespace, r.PodName)
	fi, statErr := os.Stat(statePath)
	stats, hasStats := snap.stats[r.Name]
	invalid, isInvalid := snap.sync.Invalid[p.Source]
	conflicts := snap.sync.Conflicts[r.Namespace+"/"+r.PodName]
	rollout := snap.rollouts[r.Namespace+"/"+r.PodName]
	if rollout != nil && rollout.Phase == engine.PhaseReady {
		rollout = nil // up to date
	}
	key := fmt.Sprintf("%s|%s|%s|%v %v|%q %t|%q|%v", path, r.ActiveState, r.SubState, stats, hasStats, invalid, isInvalid, conflicts, rollout)
	if statErr == nil {
		key += fmt.Sprintf("|%d %d", fi.Size(), fi.ModTime().UnixNano())
	}
	if c := s.pods[r.Name]; c != nil && c.key == key {
		return c, nil
	}

	pod := *p.Spec
	if pod.Spec.NodeName == "" {
		pod.Spec.NodeName = s.NodeName
	}
	pod.Annotations = maps.Clone(pod.Annotations)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationUnit] = r.Name
	pod.Annotations[AnnotationUnitState] = r.ActiveState + " (" + r.SubState + ")"
	if hasStats {
		stats.annotate(pod.Annotations)
	}
	var st *podshim.State
	if statErr == nil {
		// nil when unreadable: podshim replaces the file by a rename, so a
		// read never sees half of one.
		st, _ = podshim.ReadState(s.StateDir, r.Namespace, r.PodName)
	}
	if st != nil && st.UID == string(pod.UID) {
		pod.Status = st.Status
	} else {
		pod.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		}}
	}
	if isInvalid {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
			Type: ConditionManifestValid, Status: corev1.ConditionFalse, Reason: "InvalidManifest",
			Message: "running on its last good spec: " + invalid,
		})
	}
	if rollout != nil {
		pod.Status.Conditions = append(pod.Status.Conditions, rolloutCondition(rollout, r.ConfigHash, runsFailedImage(rollout, pod.Status)))
	}
	if len(conflicts) > 0 {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
			Type: ConditionManifestUnique, Status: corev1.ConditionFalse, Reason: "NameConflict",
			Message: "also defined in " + joinQuoted(conflicts) + ", which " + pluralVerb(len(conflicts), "is", "are") + " not run; " + p.Source + " is",
		})
	}
	b, err := json.Marshal(&pod)
	if err != nil {
		return nil, err
	}
	c := &cachedPod{key: key, pod: pod, json: b, activeState: r.ActiveState}
	if st != nil && st.UID == string(pod.UID) {
		c.probeFailures = st.ProbeFailures
	}
	return c, nil
}

// rolloutCondition says what the pod's replacement does, or why it was
// rolled back. running is the generation the pod's unit runs: the record
// says RolledBack before the failed generation is stopped (so that a
// power cut in between comes back to the last ready one), and until the
// unit runs that generation again the pod is RollingBack, not RolledBack.
//
// An auto-update's rollback keeps the generation (the same spec, its
// images pinned back): failedImage says the pod still runs an image the
// update brought, and it is RollingBack too.
func rolloutCondition(r *engine.Rollout, running string, failedImage bool) corev1.PodCondition {
	c := corev1.PodCondition{Type: ConditionUpToDate, Status: corev1.ConditionFalse, Reason: r.Phase,
		LastTransitionTime: metav1.NewTime(r.Updated)}
	switch {
	case r.Phase == engine.PhaseRolledBack && running == r.Previous && failedImage:
		c.Reason = ReasonRollingBack
		c.Message = fmt.Sprintf("the images of an auto-update (%s) were not ready: %s: %s; they are stopped, and the last ready images start again",
			r.Trigger, r.Reason, r.Message)
	case r.Phase == engine.PhaseRolledBack && running != r.Previous:
		c.Reason = ReasonRollingBack
		c.Message = fmt.Sprintf("generation %s (%s) was not ready: %s: %s; it is stopped, and generation %s starts again",
			r.Generation, r.Trigger, r.Reason, r.Message, r.Previous)
	case r.Phase == engine.PhaseRolledBack:
		c.Message = fmt.Sprintf("generation %s (%s) was not ready: %s: %s; generation %s runs until the manifest changes",
			r.Generation, r.Trigger, r.Reason, r.Message, r.Previous)
	case r.Phase == engine.PhaseImagePullBackOff:
		c.Message = fmt.Sprintf("generation %s cannot start: %s (%d tries)", r.Generation, r.Message, r.Attempts)
	default:
		c.Message = fmt.Sprintf("generation %s (%s): %s", r.Generation, r.Trigger, strings.ToLower(r.Phase))
	}
	return c
}

// runsFailedImage reports whether a container of the pod runs, by its
// image reference, the image r's failed auto-update brought: FailedImages
// holds every container's image as the update left it, so one the update
// did not change (the same as PreviousImages) does not count.
func runsFailedImage(r *engine.Rollout, st corev1.PodStatus) bool {
	for _, ss := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
		for _, cs := range ss {
			id := r.FailedImages[cs.Image]
			if cs.State.Running != nil && id != "" && id != r.PreviousImages[cs.Image] && cs.ImageID == id {
				return true
			}
		}
	}
	return false
}

// ReasonRollingBack: the pod's new generation was not ready, and the
// last ready one is being started again in its place.
const ReasonRollingBack = "RollingBack"

// rejectedPod is a pod that the last sync did not start because it does
// not fit this node: Failed, with the kubelet's reason and message.
func (s *Server) rejectedPod(na engine.NotAdmitted, specs map[string]*generator.Pod) (*cachedPod, error) {
	p := s.specs[na.Spec]
	if p == nil {
		var err error
		if p, err = generator.FromSpec(podspec.ReadSpec(na.Spec)); err != nil {
			return nil, err
		}
	}
	specs[na.Spec] = p
	pod := *p.Spec
	pod.Status = corev1.PodStatus{Phase: corev1.PodFailed, Reason: na.Reason, Message: na.Message}
	b, err := json.Marshal(&pod)
	if err != nil {
		return nil, err
	}
	return &cachedPod{key: na.Spec, pod: pod, json: b}, nil
}

func joinQuoted(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(s)
	}
	return out
}

func pluralVerb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// unitStats are a pod unit's figures from systemd.
type unitStats struct {
	Restarts    uint32
	MemoryBytes uint64 // 0: not known
	CPUNSec     uint64
	hasCPU      bool
}

// unitProperties reads a unit's properties of one type ("Service").
type unitProperties interface {
	GetUnitTypePropertiesContext(ctx context.Context, unit, unitType string) (map[string]any, error)
}

// unitStats returns the units' figures: read now when statsMaxAge is 0,
// else the last ones read, with a refresh in the background once they are
// statsMaxAge old.
func (s *Server) unitStats(ctx context.Context, loaded map[string]bus.Running) map[string]unitStats {
	m, ok := s.Manager.(unitProperties)
	if !ok {
		return nil
	}
	if s.StatsMaxAge == 0 {
		return readUnitStats(ctx, m, loaded)
	}
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if time.Since(s.statsAt) >= s.StatsMaxAge && !s.statsRefreshing {
		s.statsRefreshing = true
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stats := readUnitStats(ctx, m, loaded)
			s.statsMu.Lock()
			s.stats, s.statsAt, s.statsRefreshing = stats, time.Now(), false
			s.statsMu.Unlock()
		}()
	}
	return s.stats
}

// readUnitStats reads each pod's figures from systemd: NRestarts of its
// unit, MemoryCurrent and CPUUsageNSec of its slice, which holds the unit
// (podshim), the sandbox and the containers (the unit's own cgroup holds
// podshim alone). systemd reports an unknown figure as the largest uint64.
func readUnitStats(ctx context.Context, m unitProperties, loaded map[string]bus.Running) map[string]unitStats {
	out := make(map[string]unitStats, len(loaded))
	for name, r := range loaded {
		props, err := m.GetUnitTypePropertiesContext(ctx, name, "Service")
		if err != nil {
			continue
		}
		var st unitStats
		st.Restarts, _ = props["NRestarts"].(uint32)
		if props, err = m.GetUnitTypePropertiesContext(ctx, units.SliceName(r.Namespace, r.PodName), "Slice"); err != nil {
			out[name] = st
			continue
		}
		if v, ok := props["MemoryCurrent"].(uint64); ok && v != math.MaxUint64 {
			st.MemoryBytes = v
		}
		if v, ok := props["CPUUsageNSec"].(uint64); ok && v != math.MaxUint64 {
			st.CPUNSec, st.hasCPU = v, true
		}
		out[name] = st
	}
	return out
}

func (st unitStats) annotate(a map[string]string) {
	a[AnnotationUnitRestarts] = strconv.FormatUint(uint64(st.Restarts), 10)
	if st.MemoryBytes > 0 {
		a[AnnotationMemoryBytes] = strconv.FormatUint(st.MemoryBytes, 10)
	}
	if st.hasCPU {
		a[AnnotationCPUSeconds] = strconv.FormatFloat(float64(st.CPUNSec)/1e9, 'f', 3, 64)
	}
}
