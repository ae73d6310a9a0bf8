package generator

import (
	"encoding/json"
	"strings"
	"testing"
)

// hostile are values that would break out of a unit name, a unit-file line,
// a file path or a command line if they reached one unescaped.
var hostile = []string{"a\nExecStartPre=/bin/sh -c id", "x%n%i", `a\b`, "a b", "..", "../../etc/passwd", "$HOME", "a;b", `"q"`, "a\x00b"}

// Nothing a manifest says reaches a unit name, slice name, unit-file line,
// podshim's command line or a path outside podunit's own: names are refused
// with the field named, and every other value stays in the spec file,
// which podshim reads as data.
func TestInjectionIsContained(t *testing.T) {
	pod := func(mutate func(m map[string]any)) []byte {
		m := map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "web", "annotations": map[string]any{}, "labels": map[string]any{}},
			"spec": map[string]any{"containers": []any{map[string]any{
				"name": "app", "image": "busybox", "command": []any{"sh"},
				"env": []any{map[string]any{"name": "E", "value": ""}},
			}}},
		}
		mutate(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	meta := func(m map[string]any) map[string]any { return m["metadata"].(map[string]any) }
	container := func(m map[string]any) map[string]any {
		return m["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	}
	// Where a hostile value goes, and the field an error must name when
	// the value is refused ("" when it is data: it must decode).
	places := []struct {
		field string
		set   func(m map[string]any, v string)
		data  bool
	}{
		{"metadata.name", func(m map[string]any, v string) { meta(m)["name"] = v }, false},
		{"metadata.namespace", func(m map[string]any, v string) { meta(m)["namespace"] = v }, false},
		{"spec.containers[0].name", func(m map[string]any, v string) { container(m)["name"] = v }, false},
		{"metadata.labels", func(m map[string]any, v string) { meta(m)["labels"].(map[string]any)["app"] = v }, false},
		{"spec.hostname", func(m map[string]any, v string) { m["spec"].(map[string]any)["hostname"] = v }, false},
		{"metadata.annotations[podunit.io/after]", func(m map[string]any, v string) {
			meta(m)["annotations"].(map[string]any)[AnnotationAfter] = v
		}, false},
		{"metadata.annotations", func(m map[string]any, v string) { meta(m)["annotations"].(map[string]any)["note"] = v }, true},
		{"spec.containers[0].env[0].value", func(m map[string]any, v string) {
			container(m)["env"].([]any)[0].(map[string]any)["value"] = v
		}, true},
		{"spec.containers[0].command", func(m map[string]any, v string) { container(m)["command"] = []any{"sh", "-c", v} }, true},
		{"spec.containers[0].args", func(m map[string]any, v string) { container(m)["args"] = []any{v} }, true},
	}
	for _, p := range places {
		for _, v := range hostile {
			pods, err := Decode("/etc/podunit/manifests/web.yaml", pod(func(m map[string]any) { p.set(m, v) }))
			if !p.data {
				if err == nil {
					t.Errorf("%s = %q was accepted", p.field, v)
				} else if !strings.Contains(err.Error(), p.field) {
					t.Errorf("%s = %q: the error does not name the field: %v", p.field, v, err)
				}
				continue
			}
			if err != nil {
				// Data may be refused too (a NUL byte), but with its field.
				if !strings.Contains(err.Error(), p.field) {
					t.Errorf("%s = %q refused without naming the field: %v", p.field, v, err)
				}
				continue
			}
			for _, pd := range pods {
				u, err := Unit(testUnitConfig, pd)
				if err != nil {
					t.Fatalf("%s = %q: %v", p.field, v, err)
				}
				checkUnitText(t, u)
				text, _ := u.Render()
				if strings.Contains(text, v) || strings.Contains(strings.Join(u.ExecStart, " "), v) {
					t.Errorf("%s = %q reached the unit:\n%s", p.field, v, text)
				}
			}
		}
	}
}

// A manifest's file name reaches the unit (SourcePath=), escaped, on one
// line; the spec file's name stays podunit's own.
func TestHostileManifestFileName(t *testing.T) {
	for _, v := range hostile {
		if strings.ContainsRune(v, 0) || strings.Contains(v, "/") {
			continue // no file has such a name
		}
		pods, err := Decode("/etc/podunit/manifests/"+v+".yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: app, image: busybox}]}\n"))
		if err != nil {
			t.Fatalf("file %q: %v", v, err)
		}
		u, err := Unit(testUnitConfig, pods[0])
		if err != nil {
			t.Fatalf("file %q: %v", v, err)
		}
		checkUnitText(t, u)
	}
}
