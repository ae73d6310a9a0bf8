package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/units"
)

// An auto-update leaves alone a pod that something else is replacing, or
// that a rollback holds on its last ready generation: its hand-off would
// end the rollback's hold, and the sync would try the failed generation
// again.
func TestAutoUpdateLeavesAlone(t *testing.T) {
	dir := t.TempDir()
	manifests := filepath.Join(dir, "manifests")
	if err := os.MkdirAll(manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {io.containers.autoupdate: registry}
    spec:
      containers: [{name: c, image: "registry.example/web:1"}]
`
	if err := os.WriteFile(filepath.Join(manifests, "web.yaml"), []byte(deployment), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := generator.ReadDir(manifests)
	if err != nil || len(set.Pods) != 1 {
		t.Fatalf("read: %v, %d pods", err, len(set.Pods))
	}
	p := set.Pods[0]
	ucfg := generator.UnitConfig{PodshimPath: "/usr/libexec/podunit/podshim", SpecDir: filepath.Join(dir, "specs"), CRIEndpoint: "unix:///run/containerd/containerd.sock", CgroupDriver: units.CgroupDriverSystemd}
	u, err := generator.Unit(ucfg, p)
	if err != nil || u.Group == "" {
		t.Fatalf("unit: %v, group %q", err, u.Group)
	}
	a := &AutoUpdater{UnitConfig: ucfg, Rollouts: Rollouts{Dir: filepath.Join(dir, "rollouts")}}
	for _, tc := range []struct {
		name string
		busy map[string]bool
		rec  *Rollout
		want string // a part of the reason; "" for none
	}{
		{name: "free", want: ""},
		{name: "its hand-off runs", busy: map[string]bool{units.HandoffName(u.Name): true}, want: "replacement of the pod"},
		{name: "its workload's rollout runs", busy: map[string]bool{units.RolloutName(u.Namespace, u.Group): true}, want: "rollout of " + u.Group},
		{name: "held by a manifest's rollback", rec: &Rollout{Phase: PhaseRolledBack, Generation: "bad", Previous: p.Hash}, want: "rolled back"},
		{name: "a replacement cut short (no hand-off: the next sync carries it on)", rec: &Rollout{Phase: PhaseStarting, Generation: p.Hash, Previous: "v1hash"}, want: "cut short"},
		{name: "an auto-update's rollback (the next check skips the failed images)", rec: &Rollout{Phase: PhaseRolledBack, Generation: p.Hash, Previous: p.Hash}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rec != nil {
				tc.rec.Namespace, tc.rec.Name = p.Namespace(), p.Name()
				if err := a.Rollouts.Write(tc.rec); err != nil {
					t.Fatal(err)
				}
				defer a.Rollouts.Remove(p.Namespace(), p.Name())
			}
			got := a.leftAlone(p, tc.busy)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("leftAlone = %q, want %q", got, tc.want)
			}
		})
	}
}
