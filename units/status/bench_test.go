package status

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units/engine/enginetest"
)

// BenchmarkStatusPods is GET /pods over 100 running pods (the in-memory
// systemd of the unit tests): "build" is an answer after a state file
// changed (a rebuild: the unit list, a stat a pod, one state file read, the
// JSON), "unchanged" one when nothing did (make bench-status measures the
// whole server under wrk).
func BenchmarkStatusPods(b *testing.B) {
	s, m, _, _ := enginetest.NewSyncer(b)
	s.StatePath = filepath.Join(b.TempDir(), "sync.json")
	const pods = 100
	for i := range pods {
		enginetest.Write(b, s.Sources[0].Dir, fmt.Sprintf("web-%d.yaml", i), enginetest.WebManifest(fmt.Sprintf("web-%d", i)))
	}
	if err := enginetest.Run(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	stateDir := b.TempDir()
	start := metav1.NewTime(time.Now())
	for i := range pods {
		name := fmt.Sprintf("web-%d", i)
		spec, _ := filepath.Glob(filepath.Join(s.UnitConfig.SpecDir, "default_"+name+"-*.json"))
		var p corev1.Pod
		data, _ := os.ReadFile(spec[0])
		json.Unmarshal(data, &p)
		st := podshim.State{Namespace: "default", Name: name, UID: string(p.UID), Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.88.0.%d", i+2), StartTime: &start,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "web", Ready: true, ContainerID: "containerd://" + strings.Repeat("a", 64), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}},
				{Name: "sidecar", Ready: true, ContainerID: "containerd://" + strings.Repeat("b", 64), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}},
			},
		}}
		sb, _ := json.Marshal(st)
		enginetest.Write(b, stateDir, "default_"+name+".json", string(sb))
	}
	srv := &Server{SpecDir: s.UnitConfig.SpecDir, StateDir: stateDir, SyncState: s.StatePath, Manager: m, Runtime: fakeVersioner{},
		StatsMaxAge: time.Hour, MaxAge: time.Hour}
	if err := srv.Watch(b.Context()); err != nil {
		b.Fatal(err)
	}
	if _, body := get(b, srv, "/pods"); !strings.Contains(body, `"name":"web-99"`) {
		b.Fatal("no pods")
	}
	state := filepath.Join(stateDir, "default_web-7.json")
	b.Run("build", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			os.Chtimes(state, time.Now(), time.Unix(int64(i), 0))
			srv.changed.Store(true)
			get(b, srv, "/pods")
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		srv.changed.Store(false)
		for b.Loop() {
			get(b, srv, "/pods")
		}
	})
}
