package oracle

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/generator"
)

func TestSplit(t *testing.T) {
	type span struct{ First, Last int }
	tests := []struct {
		name string
		data string
		want []span
	}{
		{"one", "a: 1\nb: 2\n", []span{{1, 3}}},
		{"leading separator", "---\na: 1\n", []span{{2, 3}}},
		{"two with a comment on the separator", "a: 1\n--- # next\nb: 2\n", []span{{1, 1}, {3, 4}}},
		{"empty and comment-only documents dropped", "---\n# c\n---\n\n---\na: 1\n", []span{{6, 7}}},
		{"--- inside a value is not a separator", "a: |\n  x\n---x\nb: 1\n", []span{{1, 5}}},
		{"nothing but separators: the whole file", "---\n---\n", []span{{1, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []span
			for i, d := range Split("f.yaml", []byte(tt.data)) {
				if d.Index != i || d.File != "f.yaml" {
					t.Errorf("document %d: index %d, file %q", i, d.Index, d.File)
				}
				got = append(got, span{d.First, d.Last})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Split: %v, want %v", got, tt.want)
			}
		})
	}
}

// podunit's errors and notices land on the document whose lines hold
// them; a file-level error on every document.
func TestPodunitPerDocument(t *testing.T) {
	data := []byte(`apiVersion: v1
kind: Pod
metadata: {name: good}
spec:
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: typo}
spec:
  containers: [{name: c, image: busybox, imagePullPolicyy: Always}]
`)
	docs := Split("two.yaml", data)
	v, err := Podunit(generator.Reader{}, "two.yaml", data, docs)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 2 {
		t.Fatalf("%d verdicts, want 2", len(v))
	}
	if !v[0].Accepted() {
		t.Errorf("first document: %v, want accepted", v[0].Errors)
	}
	if v[1].Accepted() || !reflect.DeepEqual(v[1].UnknownFields(), []string{"spec.containers[0].imagePullPolicyy"}) {
		t.Errorf("second document: errors %v, unknown fields %v; want the typo as unknown", v[1].Errors, v[1].UnknownFields())
	}

	garbage := []byte("a: [\n")
	v, err = Podunit(generator.Reader{}, "bad.yaml", garbage, Split("bad.yaml", garbage))
	if err != nil {
		t.Fatal(err)
	}
	if v[0].Accepted() {
		t.Error("unparsable file accepted")
	}
}

func TestCompare(t *testing.T) {
	doc := Document{File: "f.yaml", Index: 1}
	refused := ServerVerdict{Status: 422, Message: `Pod "x" is invalid: spec.priority: Forbidden`, Causes: []metav1.StatusCause{{Field: "spec.priority"}}}
	strict := ServerVerdict{Status: 400, Message: `strict decoding error: unknown field "spec.foo"`}
	ok := ServerVerdict{Status: 201}
	unknown := &generator.FieldError{File: "f.yaml", Line: 3, Field: "spec.foo", Msg: "unknown field"}
	notice := generator.Notice{File: "f.yaml", Line: 4, Field: "spec.priority", Msg: "the API server sets it"}
	tests := []struct {
		name string
		pv   Verdict
		sv   ServerVerdict
		want []string
	}{
		{"both accept", Verdict{}, ok, nil},
		{"both refuse the same unknown field", Verdict{Errors: []*generator.FieldError{unknown}}, strict, nil},
		{"podunit only", Verdict{Errors: []*generator.FieldError{unknown}}, ok, []string{PodunitOnlyRefuses, "unknown field spec.foo to podunit, not to strict validation"}},
		{"server only, on a noticed field", Verdict{Notices: []generator.Notice{notice}}, refused, []string{ServerOnlyRefuses, "notice on spec.priority, which the API server refuses"}},
		{"a notice on the annotation key the server refuses", Verdict{Notices: []generator.Notice{{Field: "metadata.annotations[bind-mount-options:/x]"}, {Field: "metadata.annotations[io.podman/y]"}}},
			ServerVerdict{Status: 422, Causes: []metav1.StatusCause{{Field: "metadata.annotations", Message: `Invalid value: "bind-mount-options:/x": a valid label key …`}}},
			[]string{ServerOnlyRefuses, "notice on metadata.annotations[bind-mount-options:/x], which the API server refuses"}},
		{"a notice on a field the server does not name", Verdict{Notices: []generator.Notice{{Field: "spec.schedulerName"}}}, refused, []string{ServerOnlyRefuses}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range Compare(doc, tt.pv, tt.sv) {
				if f.Doc != "f.yaml#1" {
					t.Errorf("finding on %q", f.Doc)
				}
				got = append(got, f.What)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Compare: %q, want %q", got, tt.want)
			}
		})
	}
}

// A rendered table reads back as the reasons it was given, pipes and all.
func TestTableRoundTrip(t *testing.T) {
	in := Table{
		Findings: []Finding{
			{Doc: "b.yaml#0", What: PodunitOnlyRefuses, Podunit: "b.yaml:3: x | y", Server: "accepted", Reason: "one node: a | b"},
			{Doc: "a.yaml#2", What: ServerOnlyRefuses, Podunit: "accepted", Server: "422: no\nmore", Reason: ""},
		},
		Outcomes: map[string]map[string]int{"corpus": {"both accept": 3, "differ": 2}},
	}
	var b bytes.Buffer
	if err := RenderTable(&b, in); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| `corpus` | 3 | 0 | 2 |") {
		t.Errorf("outcomes missing:\n%s", b.String())
	}
	got, err := ParseTable(&b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"b.yaml#0 | " + PodunitOnlyRefuses: "one node: a | b",
		"a.yaml#2 | " + ServerOnlyRefuses:  "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseTable: %q, want %q", got, want)
	}
}
