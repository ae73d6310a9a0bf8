package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// benchPods is how many manifests the sync benchmarks read
// (SYNC_BENCH_PODS, default 1000).
func benchPods() int {
	if n, err := strconv.Atoi(os.Getenv("SYNC_BENCH_PODS")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// webManifest is a realistic pod: two containers, probes, ports, env, a
// volume.
func webManifest(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {app: %s, tier: web}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: web
    image: localhost/web:1.2.3
    args: ["--listen", ":8080"]
    env:
    - {name: MODE, value: production}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    ports:
    - {name: http, containerPort: 8080}
    readinessProbe:
      httpGet: {path: /healthz, port: http}
    resources:
      limits: {cpu: 500m, memory: 128Mi}
    volumeMounts:
    - {name: cache, mountPath: /cache}
  - name: sidecar
    image: localhost/logger:1
    command: ["sh", "-c", "tail -F /cache/log"]
    volumeMounts:
    - {name: cache, mountPath: /cache}
  volumes:
  - name: cache
    emptyDir: {}
`, name, name)
}

func benchSyncer(b *testing.B) *Syncer {
	debug.SetGCPercent(GCPercent) // as podunit sync
	s, _, _, _ := newSyncer(b)
	for i := range benchPods() {
		write(b, s.Sources[0].Dir, fmt.Sprintf("pod-%04d.yaml", i), webManifest(fmt.Sprintf("pod-%04d", i)))
	}
	return s
}

// BenchmarkSyncUnchanged is a sync of a directory where nothing changed
// since the last one: every manifest read, decoded, validated and hashed,
// every unit found unchanged. The manager's answers are in memory, so this
// is podunit's own work (docs/benchmarks.md).
func BenchmarkSyncUnchanged(b *testing.B) {
	s := benchSyncer(b)
	ctx := context.Background()
	if err := runSync(ctx, s); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := runSync(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchPods()), "manifests")
}

// BenchmarkSyncNew is a sync that creates every pod's unit (and spec
// file); no container is started.
func BenchmarkSyncNew(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		s := benchSyncer(b)
		b.StartTimer()
		if err := runSync(ctx, s); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(filepath.Dir(s.Sources[0].Dir))
		b.StartTimer()
	}
	b.ReportMetric(float64(benchPods()), "manifests")
}

// BenchmarkSyncFloor is the floor for BenchmarkSyncUnchanged: what the
// kubelet's file source does with the same directory on every pass, read
// each manifest and decode it into a Pod (sigs.k8s.io/yaml, one file after
// another), without podunit's checks, line-numbered errors, hashes or
// units.
func BenchmarkSyncFloor(b *testing.B) {
	s := benchSyncer(b)
	for b.Loop() {
		entries, err := os.ReadDir(s.Sources[0].Dir)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(s.Sources[0].Dir, e.Name()))
			if err != nil {
				b.Fatal(err)
			}
			var pod corev1.Pod
			if err := yaml.Unmarshal(data, &pod); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(benchPods()), "manifests")
}
