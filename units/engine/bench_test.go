package engine_test

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

	"github.com/podunit/podunit/units/engine"
	"github.com/podunit/podunit/units/engine/enginetest"
)

// benchPods is how many manifests the sync benchmarks read
// (SYNC_BENCH_PODS, default 1000).
func benchPods() int {
	if n, err := strconv.Atoi(os.Getenv("SYNC_BENCH_PODS")); err == nil && n > 0 {
		return n
	}
	return 1000
}

func benchSyncer(b *testing.B) *engine.Syncer {
	debug.SetGCPercent(engine.GCPercent) // as podunit sync
	s, _, _, _ := enginetest.NewSyncer(b)
	for i := range benchPods() {
		enginetest.Write(b, s.Sources[0].Dir, fmt.Sprintf("pod-%04d.yaml", i), enginetest.WebManifest(fmt.Sprintf("pod-%04d", i)))
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
	if err := enginetest.Run(ctx, s); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := enginetest.Run(ctx, s); err != nil {
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
		if err := enginetest.Run(ctx, s); err != nil {
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
