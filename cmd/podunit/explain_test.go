package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podunit/podunit/generator"
)

// `podunit explain` prints what kubectl explain prints, Kubernetes'
// description of the field, then what podunit does with it and its
// fields, each with its class: the whole output of each query equals its
// golden file (testdata/explain/<query>.txt; -update rewrites them).
func TestExplainGolden(t *testing.T) {
	for _, query := range []string{
		"pod",
		"pod.apiVersion",
		"pod.spec.containers.readinessProbe",
		"pod.spec.tolerations",
		"pod.spec.volumes.persistentVolumeClaim.claimName",
		"pod.metadata.annotations",
		"deployment.spec.template.metadata.name",
	} {
		t.Run(query, func(t *testing.T) {
			e, err := generator.Explain(query)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := printExplanation(&out, e); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "explain", query+".txt")
			if *updateGolden {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./cmd/podunit -run TestExplainGolden -update writes it)", err)
			}
			if out.String() != string(want) {
				t.Errorf("podunit explain %s:\n%s\nwant (%s):\n%s", query, out.String(), golden, want)
			}
		})
	}
}

// The readiness probe's explanation says what a readiness probe is in
// Kubernetes and what it does here: READY=1 to systemd, the Ready
// condition, the Services' endpoints.
func TestExplainReadinessProbe(t *testing.T) {
	e, err := generator.Explain("pod.spec.containers.readinessProbe")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printExplanation(&out, e); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{"DESCRIPTION: Periodic probe of container service readiness.", "IN PODUNIT:", "`READY=1`", "`Ready` condition", "endpoints of the Services"} {
		if !strings.Contains(text, want) {
			t.Errorf("explain readinessProbe lacks %q:\n%s", want, out.String())
		}
	}
}
