package main

import (
	"context"
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

// statusServer answers from what systemd, the spec files, podshim's state
// files and the last sync hold: no database of its own to drift. It builds
// a snapshot of every pod at most once a second (snapshotFresh), so that
// fifty clients polling /pods cost one pass over the units, not fifty.
type statusServer struct {
	specDir, stateDir, syncState string
	manager                      units.Manager
	runtime                      versioner
	// fresh and stale: a snapshot younger than fresh is served as it is;
	// one younger than stale is served while a newer one is built; an older
	// one is rebuilt before the answer. Zero rebuilds on every request.
	fresh, stale time.Duration

	build      sync.Mutex // one build at a time
	mu         sync.Mutex // guards snap and refreshing
	snap       *snapshot
	refreshing bool
	specs      map[string]*generator.Pod // by path: a spec file never changes

	metricsOnce    sync.Once
	metricsHandler http.Handler
}

// Snapshot ages (see statusServer).
const (
	snapshotFresh = time.Second
	snapshotStale = 5 * time.Second
)

// snapshot is every pod at one moment, with the encoded PodList.
type snapshot struct {
	at    time.Time
	pods  []corev1.Pod
	stats map[string]unitStats // by unit name
	list  []byte               // the /pods answer
	sync  syncState
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
)

// snapshot returns a snapshot no older than s.stale, building one when
// needed, and starts a rebuild in the background once it is older than
// s.fresh.
func (s *statusServer) snapshot(ctx context.Context) (*snapshot, error) {
	s.mu.Lock()
	snap := s.snap
	if snap != nil && time.Since(snap.at) < s.stale {
		if time.Since(snap.at) >= s.fresh && !s.refreshing {
			s.refreshing = true
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				s.rebuild(ctx, snap)
				s.mu.Lock()
				s.refreshing = false
				s.mu.Unlock()
			}()
		}
		s.mu.Unlock()
		return snap, nil
	}
	s.mu.Unlock()
	return s.rebuild(ctx, snap)
}

// rebuild builds a snapshot unless another build, started after old was
// taken, already made a newer one.
func (s *statusServer) rebuild(ctx context.Context, old *snapshot) (*snapshot, error) {
	s.build.Lock()
	defer s.build.Unlock()
	s.mu.Lock()
	if s.snap != old && s.snap != nil && time.Since(s.snap.at) < s.stale {
		defer s.mu.Unlock()
		return s.snap, nil
	}
	s.mu.Unlock()
	snap, err := s.buildSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
	return snap, nil
}

// buildSnapshot reads the pods of the loaded pod units, each with its last
// spec, the status podshim recorded and its unit's figures from systemd,
// sorted by namespace and name.
func (s *statusServer) buildSnapshot(ctx context.Context) (*snapshot, error) {
	at := time.Now()
	loaded, err := units.List(ctx, s.manager)
	if err != nil {
		return nil, err
	}
	last, _ := readSyncState(s.syncState)
	snap := &snapshot{at: at, sync: last, stats: map[string]unitStats{}}
	specs := map[string]*generator.Pod{}
	for _, r := range loaded {
		path := generator.SpecPath(generator.UnitConfig{SpecDir: s.specDir}, r.Namespace, r.PodName, r.ConfigHash)
		p := s.specs[path]
		if p == nil {
			if p, err = generator.ReadSpecFile(path); err != nil {
				continue // not yet written, or a unit of another tool's making
			}
		}
		specs[path] = p
		pod := *p.Spec
		pod.Annotations = maps.Clone(pod.Annotations)
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[AnnotationUnit] = r.Name
		pod.Annotations[AnnotationUnitState] = r.ActiveState + " (" + r.SubState + ")"
		if st, ok := s.unitStats(ctx, r.Name); ok {
			snap.stats[r.Name] = st
			st.annotate(pod.Annotations)
		}
		st, err := podshim.ReadState(s.stateDir, r.Namespace, r.PodName)
		if err == nil && st.UID == string(pod.UID) {
			pod.Status = st.Status
		} else {
			pod.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			}}
		}
		if msg, bad := last.Invalid[p.Source]; bad {
			pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
				Type: ConditionManifestValid, Status: corev1.ConditionFalse, Reason: "InvalidManifest",
				Message: "running on its last good spec: " + msg,
			})
		}
		if others := last.Conflicts[r.Namespace+"/"+r.PodName]; len(others) > 0 {
			pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
				Type: ConditionManifestUnique, Status: corev1.ConditionFalse, Reason: "NameConflict",
				Message: "also defined in " + joinQuoted(others) + ", which " + pluralVerb(len(others), "is", "are") + " not run; " + p.Source + " is",
			})
		}
		snap.pods = append(snap.pods, pod)
	}
	s.specs = specs
	sort.Slice(snap.pods, func(i, j int) bool {
		if snap.pods[i].Namespace != snap.pods[j].Namespace {
			return snap.pods[i].Namespace < snap.pods[j].Namespace
		}
		return snap.pods[i].Name < snap.pods[j].Name
	})
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: snap.pods}
	if snap.list, err = json.Marshal(list); err != nil {
		return nil, err
	}
	snap.list = append(snap.list, '\n')
	return snap, nil
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

// unitStats reads NRestarts, MemoryCurrent and CPUUsageNSec of a pod's
// unit; systemd reports an unknown figure as the largest uint64.
func (s *statusServer) unitStats(ctx context.Context, unit string) (unitStats, bool) {
	m, ok := s.manager.(unitProperties)
	if !ok {
		return unitStats{}, false
	}
	props, err := m.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		return unitStats{}, false
	}
	var st unitStats
	st.Restarts, _ = props["NRestarts"].(uint32)
	if v, ok := props["MemoryCurrent"].(uint64); ok && v != math.MaxUint64 {
		st.MemoryBytes = v
	}
	if v, ok := props["CPUUsageNSec"].(uint64); ok && v != math.MaxUint64 {
		st.CPUNSec, st.hasCPU = v, true
	}
	return st, true
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
