package generator

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

const (
	referencePath  = "../docs/manifest-reference.md"
	referenceBegin = "<!-- supported-fields:begin (generated from generator.Kinds: go test ./generator -run TestManifestReference -update) -->"
	referenceEnd   = "<!-- supported-fields:end -->"
)

// renderFieldTable is the docs' tables of supported fields, one a kind.
func renderFieldTable() string {
	var b strings.Builder
	for i, k := range Kinds {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "### %s\n\n| Field | Class | Notes |\n|---|---|---|\n", k.Name)
		for _, f := range k.Fields {
			if k.SameAsPod(f) {
				continue // summed up below
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", f.Path, f.Class, strings.ReplaceAll(f.Doc, "|", `\|`))
		}
		if k.Workload {
			t := strings.TrimSuffix(k.Template(), ".")
			fmt.Fprintf(&b, "| `%s.metadata.*`, `%s.spec.*` | as in a Pod | The pod template: every other Pod field above, under `%s`, in the same class. |\n", t, t, t)
		}
	}
	b.WriteString("\n### Annotations with a meaning\n\nOn a pod or a workload's pod template; `podunit explain pod.metadata.annotations` lists them too. Any other annotation is copied to the pod sandbox as it is.\n\n| Annotation | Class | Notes |\n|---|---|---|\n")
	for _, a := range PodAnnotations {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", a.Pattern(), a.Class, strings.ReplaceAll(a.Notes(), "|", `\|`))
	}
	b.WriteString("\n### Kinds skipped with a notice\n\n| Kind | API group | Why |\n|---|---|---|\n")
	for _, k := range SkippedKinds {
		group := k.Group
		if group == "" {
			group = "core"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", k.Name, group, k.Why)
	}
	b.WriteString("| any kind of a group that is not Kubernetes' own | e.g. `monitoring.coreos.com` | a custom resource: no controller here |\n")
	return b.String()
}

// docs/manifest-reference.md lists exactly the fields in Fields.
func TestManifestReference(t *testing.T) {
	doc, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	before, rest, ok1 := strings.Cut(text, referenceBegin+"\n")
	table, after, ok2 := strings.Cut(rest, referenceEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the generated-table markers", referencePath)
	}
	want := renderFieldTable()
	if *update {
		if err := os.WriteFile(referencePath, []byte(before+referenceBegin+"\n"+want+referenceEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if table != want {
		t.Errorf("%s does not list the supported fields as generator.Fields has them; run go test ./generator -run TestManifestReference -update\ngot:\n%s\nwant:\n%s", referencePath, table, want)
	}
}

// Every supported field's path exists in its kind's v1 type and is accepted
// by the decoder (a typo in Fields would otherwise reject the field it names).
func TestFieldsExist(t *testing.T) {
	for _, k := range Kinds {
		for _, f := range k.Fields {
			if _, ok := lookupPath(k.Type, f.Path); !ok {
				t.Errorf("%s fields have %q, which is not a v1 %s field", k.Name, f.Path, k.Name)
			}
		}
	}
}

// lookupPath finds a field path ("spec.containers[].name") in type t.
func lookupPath(t reflect.Type, path string) (string, bool) {
	for _, part := range strings.Split(strings.ReplaceAll(path, "[]", ""), ".") {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return "", false
		}
		next, ok := jsonFields(t)[part]
		if !ok {
			return "", false
		}
		t = next
	}
	return t.String(), true
}
