package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units/bus"
	"github.com/podunit/podunit/units/engine/enginetest"
)

func TestVolumeLsAndRm(t *testing.T) {
	dir := t.TempDir()
	root, specs := filepath.Join(dir, "volumes"), filepath.Join(dir, "specs")
	for _, c := range []string{"default/data", "default/old", "edge/cache"} {
		if err := os.MkdirAll(filepath.Join(root, c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "default/old/file"), []byte("x"), 0o644)
	pods, err := generator.Decode("db.yaml", []byte(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: db}
spec:
  containers: [{name: c, image: "i:1", volumeMounts: [{name: d, mountPath: /data}]}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := podspec.EncodeSpec(pods[0].Spec)
	enginetest.Write(t, specs, "default_db-x.json", string(spec))

	var out bytes.Buffer
	flags := []string{"volume", "--volume-root", root, "--spec-dir", specs}
	if err := run(append(flags, "ls"), &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"default/data", "default/db", "default/old", "edge/cache"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ls lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	err = run(append(flags, "rm", "default/data", "default/old", "../etc"), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "default/data is used by pod default/db") || !strings.Contains(err.Error(), `"../etc": name a claim as NAMESPACE/CLAIM`) {
		t.Errorf("rm: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "default/data")); err != nil {
		t.Error("a claim in use was removed")
	}
	if _, err := os.Stat(filepath.Join(root, "default/old")); !os.IsNotExist(err) {
		t.Errorf("an unused claim was not removed: %v", err)
	}
}

// A spec file counts for `volume rm` while its unit runs it or its manifest
// is still there; one a gone pod left behind does not.
func TestSpecInUse(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "db.yaml")
	p := &generator.Pod{Source: manifest, Hash: "h1", Spec: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"}}}
	running := map[string]bus.Running{"pod-db.service": {Name: "pod-db.service", Namespace: "default", PodName: "db", ConfigHash: "h1"}}
	if !specInUse(p, running) {
		t.Error("the spec its unit runs is not in use")
	}
	if specInUse(p, map[string]bus.Running{}) {
		t.Error("a gone pod's spec (no unit, no manifest) is in use")
	}
	os.WriteFile(manifest, []byte("x"), 0o644)
	if !specInUse(p, map[string]bus.Running{}) {
		t.Error("a pod whose manifest is there (not started yet) is not in use")
	}
}
