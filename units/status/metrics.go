package status

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podunit/podunit/units/engine"
)

// metrics is GET /metrics: every figure comes from the snapshot /pods
// serves (systemd, podshim's states, the last sync) at scrape time, so the
// metrics and /pods never disagree and nothing is counted twice.
func (s *Server) metrics() http.Handler {
	s.metricsOnce.Do(func() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(&podCollector{s: s}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		s.metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	})
	return s.metricsHandler
}

var (
	descPods     = prometheus.NewDesc("podunit_pods", "Pods by phase.", []string{"phase"}, nil)
	descRestarts = prometheus.NewDesc("podunit_container_restarts_total",
		"Restarts of a container in its sandbox (the restartCount of its status).", []string{"namespace", "pod", "container"}, nil)
	descReady = prometheus.NewDesc("podunit_container_ready",
		"The container's readiness probe result (1: ready); a container without one is ready once started.", []string{"namespace", "pod", "container"}, nil)
	descProbeFailures = prometheus.NewDesc("podunit_probe_failures_total",
		"Failed probes of a container by kind (liveness, readiness, startup), over the pod's life; recorded within a keepalive (30 s).",
		[]string{"namespace", "pod", "container", "probe"}, nil)
	descStarted = prometheus.NewDesc("podunit_container_started",
		"The container's startup probe result (1: started).", []string{"namespace", "pod", "container"}, nil)
	descUnitRestarts = prometheus.NewDesc("podunit_unit_restarts_total",
		"Restarts of the pod's unit by systemd (NRestarts): podshim restarts, not container restarts.", []string{"namespace", "pod", "unit"}, nil)
	descMemory = prometheus.NewDesc("podunit_pod_memory_bytes",
		"Memory of the pod's slice (MemoryCurrent): its containers, podshim and the sandbox.", []string{"namespace", "pod", "unit"}, nil)
	descCPU = prometheus.NewDesc("podunit_pod_cpu_seconds_total",
		"CPU time of the pod's slice (CPUUsageNSec): its containers, podshim and the sandbox.", []string{"namespace", "pod", "unit"}, nil)
	descStartLatency = prometheus.NewDesc("podunit_pod_start_duration_seconds",
		"From the pod's start (status.startTime) to all its containers being ready, for the pods that got there.", nil, nil)
	descSyncDuration = prometheus.NewDesc("podunit_sync_duration_seconds", "How long the last sync took.", nil, nil)
	descSyncTime     = prometheus.NewDesc("podunit_sync_last_timestamp_seconds", "When the last sync ended.", nil, nil)
	descSyncs        = prometheus.NewDesc("podunit_syncs_total", "Syncs since boot.", nil, nil)
	descSyncErrors   = prometheus.NewDesc("podunit_sync_errors_total",
		"Syncs since boot that could not bring some pod unit to its state.", nil, nil)
	descManifestErrors = prometheus.NewDesc("podunit_manifest_errors",
		"Manifest files that the last sync found invalid.", nil, nil)
	descConflicts = prometheus.NewDesc("podunit_manifest_conflicts",
		"Pods that more than one manifest file defines (the first runs).", nil, nil)
	descRollouts = prometheus.NewDesc("podunit_rollouts_total",
		"Replacements of a ready pod by hand-offs, by result: ready, or rolled_back to the last ready generation.", []string{"result"}, nil)
	descImagePullsFailed = prometheus.NewDesc("podunit_image_pulls_failed_total",
		"Failed pulls of a new generation's images while the running one kept running.", nil, nil)
	descAutoUpdateChecks = prometheus.NewDesc("podunit_auto_update_checks_total",
		"Images podunit auto-update asked about, and how many of them had changed.", []string{"result"}, nil)
	descServiceEndpoints = prometheus.NewDesc("podunit_service_endpoints",
		"Endpoints of a Service (the pods its selector matches that have an address), by whether they are in rotation (ready).",
		[]string{"namespace", "service", "ready"}, nil)
	descRolledBack = prometheus.NewDesc("podunit_pods_rolled_back",
		"Pods that run their last ready generation because the one their manifest asks for was not ready.", nil, nil)
)

// startBuckets are the pod start latency histogram's buckets, in seconds:
// the kubelet's pod_start_duration_seconds buckets.
var startBuckets = []float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600}

type podCollector struct{ s *Server }

func (c *podCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPods, descRestarts, descReady, descStarted, descProbeFailures, descUnitRestarts, descMemory, descCPU,
		descStartLatency, descSyncDuration, descSyncTime, descSyncs, descSyncErrors, descManifestErrors, descConflicts,
		descRollouts, descImagePullsFailed, descAutoUpdateChecks, descRolledBack, descServiceEndpoints} {
		ch <- d
	}
}

func (c *podCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	snap, err := c.s.snapshot(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPods, err)
		return
	}
	phases := map[corev1.PodPhase]float64{corev1.PodPending: 0, corev1.PodRunning: 0, corev1.PodSucceeded: 0, corev1.PodFailed: 0}
	buckets := map[float64]uint64{}
	for _, b := range startBuckets {
		buckets[b] = 0
	}
	var n uint64
	var sum float64
	for _, c := range snap.pods {
		p := &c.pod
		for key, failures := range c.probeFailures {
			container, kind, _ := strings.Cut(key, "/")
			ch <- prometheus.MustNewConstMetric(descProbeFailures, prometheus.CounterValue, float64(failures), p.Namespace, p.Name, container, kind)
		}
		phase := p.Status.Phase
		if phase == "" {
			phase = corev1.PodPending
		}
		phases[phase]++
		for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(cs.RestartCount), p.Namespace, p.Name, cs.Name)
			ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, boolValue(cs.Ready), p.Namespace, p.Name, cs.Name)
			ch <- prometheus.MustNewConstMetric(descStarted, prometheus.GaugeValue, boolValue(cs.Started != nil && *cs.Started), p.Namespace, p.Name, cs.Name)
		}
		unit := p.Annotations[AnnotationUnit]
		if st, ok := snap.stats[unit]; ok {
			ch <- prometheus.MustNewConstMetric(descUnitRestarts, prometheus.CounterValue, float64(st.Restarts), p.Namespace, p.Name, unit)
			if st.MemoryBytes > 0 {
				ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(st.MemoryBytes), p.Namespace, p.Name, unit)
			}
			if st.hasCPU {
				ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, float64(st.CPUNSec)/1e9, p.Namespace, p.Name, unit)
			}
		}
		if d, ok := startDuration(p); ok {
			n++
			sum += d
			for _, b := range startBuckets {
				if d <= b {
					buckets[b]++
				}
			}
		}
	}
	for phase, count := range phases {
		ch <- prometheus.MustNewConstMetric(descPods, prometheus.GaugeValue, count, string(phase))
	}
	ch <- prometheus.MustNewConstHistogram(descStartLatency, n, sum, buckets)
	counter := func(d *prometheus.Desc, name string, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(snap.counters[name]), labels...)
	}
	counter(descRollouts, engine.CounterRolloutsReady, "ready")
	counter(descRollouts, engine.CounterRolloutsRolledBack, "rolled_back")
	counter(descImagePullsFailed, engine.CounterImagePullsFailed)
	checks, changed := snap.counters[engine.CounterAutoUpdateChecks], snap.counters[engine.CounterAutoUpdatesAvailable]
	ch <- prometheus.MustNewConstMetric(descAutoUpdateChecks, prometheus.CounterValue, float64(checks-min(changed, checks)), "unchanged")
	counter(descAutoUpdateChecks, engine.CounterAutoUpdatesAvailable, "changed")
	// The pods whose condition says RolledBack: a record says so before
	// its pod runs the last ready generation again (RollingBack).
	var rolledBack float64
	for _, p := range snap.pods {
		for _, c := range p.pod.Status.Conditions {
			if c.Type == ConditionUpToDate && c.Reason == engine.PhaseRolledBack {
				rolledBack++
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descRolledBack, prometheus.GaugeValue, rolledBack)
	if v := c.s.services(snap); v.readError == nil {
		for _, svc := range v.snapshot.Services {
			var ready, notReady float64
			for _, ep := range v.snapshot.Endpoints[svc.Key()] {
				if ep.Ready {
					ready++
				} else {
					notReady++
				}
			}
			ch <- prometheus.MustNewConstMetric(descServiceEndpoints, prometheus.GaugeValue, ready, svc.Namespace, svc.Name, "true")
			ch <- prometheus.MustNewConstMetric(descServiceEndpoints, prometheus.GaugeValue, notReady, svc.Namespace, svc.Name, "false")
		}
	}
	if st := snap.sync; !st.Time.IsZero() {
		ch <- prometheus.MustNewConstMetric(descSyncDuration, prometheus.GaugeValue, st.Duration)
		ch <- prometheus.MustNewConstMetric(descSyncTime, prometheus.GaugeValue, float64(st.Time.UnixNano())/1e9)
		ch <- prometheus.MustNewConstMetric(descSyncs, prometheus.CounterValue, float64(st.Syncs))
		ch <- prometheus.MustNewConstMetric(descSyncErrors, prometheus.CounterValue, float64(st.FailedSyncs))
		ch <- prometheus.MustNewConstMetric(descManifestErrors, prometheus.GaugeValue, float64(len(st.Invalid)))
		ch <- prometheus.MustNewConstMetric(descConflicts, prometheus.GaugeValue, float64(len(st.Conflicts)))
	}
}

// startDuration is from the pod's start to its ContainersReady condition
// turning true, when it has.
func startDuration(p *corev1.Pod) (float64, bool) {
	if p.Status.StartTime == nil {
		return 0, false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.ContainersReady && c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
			d := c.LastTransitionTime.Sub(p.Status.StartTime.Time).Seconds()
			return max(d, 0), true
		}
	}
	return 0, false
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
