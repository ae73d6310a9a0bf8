package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/podunit/podunit/criclient"
)

// doctor's fixes are in the syntax of the containerd that answers:
// config version 2 for containerd 1.x (Debian 12, 13), version 3 for 2.x
// (Debian 14), whose CRI plugin is split in two.
func TestContainerdFixesSpeakItsVersion(t *testing.T) {
	for _, c := range []struct {
		version              string
		cgroup, cni, sandbox string
	}{
		{"1.6.20~ds1", `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`,
			`[plugins."io.containerd.grpc.v1.cri".cni]`, `sandbox_image = "IMAGE" under [plugins."io.containerd.grpc.v1.cri"]`},
		{"v1.7.24", `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`,
			`[plugins."io.containerd.grpc.v1.cri".cni]`, `sandbox_image = "IMAGE" under [plugins."io.containerd.grpc.v1.cri"]`},
		{"2.0.5", `[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]`,
			`bin_dir = "/usr/lib/cni" under [plugins.'io.containerd.cri.v1.runtime'.cni]`, `sandbox = "IMAGE" under [plugins.'io.containerd.cri.v1.images'.pinned_images]`},
		{"2.1.9+unknown", `[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]`,
			`bin_dirs = ["/usr/lib/cni"] under [plugins.'io.containerd.cri.v1.runtime'.cni]`, `sandbox = "IMAGE" under [plugins.'io.containerd.cri.v1.images'.pinned_images]`},
	} {
		cc := newContainerdConfig("containerd", c.version)
		for _, f := range []struct{ fix, want string }{
			{cc.cgroupFix(), c.cgroup}, {cc.cniFix("/usr/lib/cni"), c.cni}, {cc.sandboxImageFix(), c.sandbox},
		} {
			if !strings.Contains(f.fix, f.want) {
				t.Errorf("containerd %s: fix %q does not name %s", c.version, f.fix, f.want)
			}
		}
	}
	if newContainerdConfig("cri-o", "1.28.1").major != 0 {
		t.Error("CRI-O taken for containerd")
	}
}

// containerd 2's status no longer shows the sandbox image; its config dump
// does, among the pinned images.
func TestPinnedSandboxOf(t *testing.T) {
	dump := `version = 3

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'

    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'localhost/podunit/pause:1'

    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = ''
  [plugins.'io.containerd.grpc.v1.other']
    sandbox = 'not this'
`
	if got := pinnedSandboxOf([]byte(dump)); got != "localhost/podunit/pause:1" {
		t.Errorf("pinned sandbox image = %q", got)
	}
	if got := pinnedSandboxOf([]byte("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"x\"\n")); got != "" {
		t.Errorf("a version 2 dump has no pinned images, got %q", got)
	}
}

// Where containerd runs runc and crun is installed, doctor hints at crun
// (a hint: no check fails), in the syntax of the containerd that answers;
// nowhere else.
func TestDoctorHintsAtCrun(t *testing.T) {
	found := func(string) (string, error) { return "/usr/bin/crun", nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	for _, c := range []struct {
		name, runtime, version, oci string
		lookPath                    func(string) (string, error)
		want                        string // in the fix; "": no hint
	}{
		{"containerd 1.6 on runc, crun installed", "containerd", "1.6.20~ds1", "runc", found,
			`BinaryName = "/usr/bin/crun" under [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`},
		{"containerd 2 on runc, crun installed", "containerd", "2.1.4", "runc", found,
			`BinaryName = "/usr/bin/crun" under [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]`},
		{"crun not installed", "containerd", "1.6.20~ds1", "runc", missing, ""},
		{"containerd on crun already", "containerd", "1.6.20~ds1", "crun", found, ""},
		{"CRI-O", "cri-o", "1.34.0", "", found, ""},
	} {
		d := &doctor{containerd: newContainerdConfig(c.runtime, c.version), lookPath: c.lookPath}
		fs := d.ociRuntime(criclient.Settings{OCIRuntime: c.oci})
		var out strings.Builder
		if printFindings(&out, fs) != 0 {
			t.Errorf("%s: a hint counted as a failure", c.name)
		}
		switch {
		case c.want == "" && len(fs) != 0:
			t.Errorf("%s: unexpected hint %q", c.name, out.String())
		case c.want != "" && (len(fs) != 1 || !strings.HasPrefix(out.String(), "[hint] OCI runtime: ") || !strings.Contains(out.String(), c.want)):
			t.Errorf("%s: hint %q, want one naming %s", c.name, out.String(), c.want)
		}
	}
}
