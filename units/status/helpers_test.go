package status

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	critest "k8s.io/cri-api/pkg/apis/testing"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/engine"
	"github.com/podunit/podunit/units/unitstest"
)

// newSyncer is a sync engine on a temporary directory, with systemd and the
// runtime faked, whose spec files and record the server reads.
func newSyncer(t testing.TB) (*engine.Syncer, *unitstest.Manager, *critest.FakeRuntimeService, *bytes.Buffer) {
	t.Helper()
	m := unitstest.NewManager()
	rt := critest.NewFakeRuntimeService()
	var out bytes.Buffer
	dir := t.TempDir()
	s := &engine.Syncer{
		HandoffCmd: []string{"/usr/local/bin/podunit", "handoff"},
		Sources:    []generator.Source{{Dir: filepath.Join(dir, "manifests")}},
		UnitConfig: generator.UnitConfig{
			PodshimPath: "/usr/libexec/podunit/podshim", SpecDir: filepath.Join(dir, "specs"),
			CRIEndpoint: "unix:///run/containerd/containerd.sock", CgroupDriver: units.CgroupDriverSystemd,
		},
		Manager: m,
		Runtime: rt,
		Report:  &reporter{w: &out},
	}
	m.Handoff = func(ctx context.Context, specs []string, rolling bool) error {
		return engine.Handoff(ctx, m, s.UnitConfig, specs, rolling, &reporter{w: io.Discard})
	}
	return s, m, rt, &out
}

// syncOnce runs s once: an error for a sync that failed or found problems.
func syncOnce(ctx context.Context, s *engine.Syncer) error {
	res, err := s.Run(ctx)
	if err == nil && (res.Failed > 0 || res.Invalid > 0) {
		err = errors.New("the sync found problems")
	}
	return err
}

// reporter writes a sync's messages, one a line.
type reporter struct{ w io.Writer }

func (r *reporter) Errorf(format string, args ...any) {
	fmt.Fprintf(r.w, "error: "+format+"\n", args...)
}
func (r *reporter) Noticef(format string, args ...any) { fmt.Fprintf(r.w, format+"\n", args...) }
func (r *reporter) Infof(format string, args ...any)   { fmt.Fprintf(r.w, format+"\n", args...) }
func (r *reporter) Debugf(format string, args ...any)  { fmt.Fprintf(r.w, format+"\n", args...) }

func write(t testing.TB, dir, name, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func pod(name, image string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n  containers: [{name: c, image: \"" + image + "\"}]\n"
}

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
