package main

import (
	"os/exec"
	"strings"
	"testing"
)

// podshim runs once per pod, so it stays lean: no D-Bus, no YAML, no unit
// model. A dependency that pulls these in fails this test.
func TestPodshimDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v\n%s", err, out)
	}
	for _, banned := range []string{
		"github.com/godbus/dbus/v5",
		"github.com/coreos/go-systemd/v22/dbus",
		"github.com/podunit/podunit/units",
		"github.com/podunit/podunit/generator",
		"go.yaml.in/yaml/v3",
		"sigs.k8s.io/yaml",
		"k8s.io/kubernetes",
	} {
		for _, dep := range strings.Fields(string(out)) {
			if dep == banned {
				t.Errorf("podshim depends on %s", banned)
			}
		}
	}
}
