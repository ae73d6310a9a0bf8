package generator

import (
	"os/exec"
	"strings"
	"testing"
)

// generator (with generator/quadlet) is translation, and podspec the contract both sides of a pod's
// spec files share: neither reaches podshim's runtime side, the CRI client
// (gRPC), systemd's D-Bus API (generator uses the units model, not its
// D-Bus side) or the command line, and podspec not even the unit model. A
// dependency that pulls these in fails this test.
func TestGeneratorDependencies(t *testing.T) {
	for _, pkg := range []string{".", "./quadlet", "../podshim/podspec"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Skipf("go list unavailable: %v\n%s", err, out)
		}
		for _, banned := range []string{
			"github.com/podunit/podunit/podshim",
			"github.com/podunit/podunit/criclient",
			"github.com/podunit/podunit/generator", // for podspec
			"github.com/podunit/podunit/units",     // for podspec
			"github.com/podunit/podunit/units/bus",
			"github.com/godbus/dbus/v5",
			"github.com/coreos/go-systemd/v22/dbus",
			"github.com/spf13/cobra",
			"google.golang.org/grpc",
			"k8s.io/kubernetes",
		} {
			if pkg != "../podshim/podspec" && (banned == "github.com/podunit/podunit/generator" || banned == "github.com/podunit/podunit/units") {
				continue
			}
			for _, dep := range strings.Fields(string(out)) {
				if dep == banned {
					t.Errorf("%s depends on %s", pkg, banned)
				}
			}
		}
	}
}
