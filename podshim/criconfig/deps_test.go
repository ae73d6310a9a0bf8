package criconfig

import (
	"os/exec"
	"strings"
	"testing"
)

// The translation reads its inputs only: it reaches neither the runtime
// (the CRI client; the CRI's own types bring gRPC's in), systemd, nor the
// manifests' decoder, and runs no program.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v\n%s", err, out)
	}
	for _, banned := range []string{
		"github.com/podunit/podunit/criclient",
		"github.com/podunit/podunit/podshim",
		"github.com/podunit/podunit/generator",
		"github.com/podunit/podunit/units",
		"github.com/godbus/dbus/v5",
		"os/exec",
	} {
		for _, dep := range strings.Fields(string(out)) {
			if dep == banned {
				t.Errorf("criconfig depends on %s", banned)
			}
		}
	}
}
