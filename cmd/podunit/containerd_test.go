package main

import (
	"strings"
	"testing"
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
