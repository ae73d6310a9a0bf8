// Package enginetest helps the tests of what reads what a sync leaves
// (the status server, the CLI): a sync engine on a temporary directory
// with systemd and the runtime faked, and manifests to give it. The
// engine's own tests cannot import it (it imports the engine).
package enginetest

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

// NewSyncer is a sync engine on a temporary directory, with systemd
// (unitstest) and the runtime (cri-api's fake) faked. Its messages go to
// the buffer it returns, as podunit sync prints them on a terminal.
func NewSyncer(t testing.TB) (*engine.Syncer, *unitstest.Manager, *critest.FakeRuntimeService, *bytes.Buffer) {
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
		Report:  &Reporter{W: &out},
		Services: engine.ServiceConfig{Dir: filepath.Join(dir, "services"), TablePath: filepath.Join(dir, "run", "services.json"),
			ClusterDomain: "cluster.local"},
	}
	m.Handoff = func(ctx context.Context, specs []string, rolling bool) error {
		r := &engine.Replacer{Manager: m, UnitConfig: s.UnitConfig, Report: &Reporter{W: io.Discard}}
		return engine.Handoff(ctx, r, engine.Job{Specs: specs, Rolling: rolling})
	}
	return s, m, rt, &out
}

// Run runs s once: an error for a sync that failed or found problems.
func Run(ctx context.Context, s *engine.Syncer) error {
	res, err := s.Run(ctx)
	if err == nil && (res.Failed > 0 || res.Invalid > 0) {
		err = errors.New("the sync found problems")
	}
	return err
}

// Reporter writes a sync's messages, one a line, errors with "error: ".
type Reporter struct{ W io.Writer }

func (r *Reporter) Errorf(format string, args ...any) {
	fmt.Fprintf(r.W, "error: "+format+"\n", args...)
}
func (r *Reporter) Noticef(format string, args ...any) { fmt.Fprintf(r.W, format+"\n", args...) }
func (r *Reporter) Infof(format string, args ...any)   { fmt.Fprintf(r.W, format+"\n", args...) }
func (r *Reporter) Debugf(format string, args ...any)  { fmt.Fprintf(r.W, format+"\n", args...) }

// Write writes a file, its directory made.
func Write(t testing.TB, dir, name, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Pod is a one-container pod's manifest.
func Pod(name, image string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n  containers: [{name: c, image: \"" + image + "\"}]\n"
}

// WebManifest is a realistic pod's manifest: two containers, env, a
// probe, limits and a volume.
func WebManifest(name string) string {
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
