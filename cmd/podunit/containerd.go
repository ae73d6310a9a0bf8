package main

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strings"
	"time"

	"github.com/podunit/podunit/generator"
)

// containerdConfig names the sections of /etc/containerd/config.toml
// that doctor's fixes point at, in the syntax of the containerd that
// answers: version 2 (containerd 1.x) or version 3 (containerd 2.x, whose
// CRI plugin is split into a runtime and an images plugin).
type containerdConfig struct {
	major, minor int // containerd's version; major 0: not containerd
}

func newContainerdConfig(runtimeName, runtimeVersion string) containerdConfig {
	if runtimeName != "containerd" {
		return containerdConfig{}
	}
	major, minor, ok := generator.ParseVersion(runtimeVersion)
	if !ok {
		major, minor = 1, 0 // the older syntax, which containerd 2 still reads
	}
	return containerdConfig{major: major, minor: minor}
}

func (c containerdConfig) v3() bool { return c.major >= 2 }

// section is the TOML table of the CRI plugin's part: "runtime" (runc's
// options, cni) or "images" (the sandbox image).
func (c containerdConfig) section(part, sub string) string {
	if c.v3() {
		return "[plugins.'io.containerd.cri.v1." + part + "'" + sub + "]"
	}
	return `[plugins."io.containerd.grpc.v1.cri"` + sub + "]"
}

func (c containerdConfig) cgroupFix() string {
	return "in /etc/containerd/config.toml set SystemdCgroup = true under " +
		c.section("runtime", ".containerd.runtimes.runc.options") + " and restart containerd"
}

// crunFix has containerd's default runtime run containers with crun.
func (c containerdConfig) crunFix(crun string) string {
	return "in /etc/containerd/config.toml set BinaryName = \"" + crun + "\" under " +
		c.section("runtime", ".containerd.runtimes.runc.options") + " and restart containerd"
}

// cniFix: bin_dirs from containerd 2.1 on, which deprecates bin_dir.
func (c containerdConfig) cniFix(binDir string) string {
	set := "bin_dir = \"" + binDir + "\""
	if c.major > 2 || c.major == 2 && c.minor >= 1 {
		set = "bin_dirs = [\"" + binDir + "\"]"
	}
	return "set " + set + " under " + c.section("runtime", ".cni") + " in /etc/containerd/config.toml and restart containerd"
}

func (c containerdConfig) sandboxImageFix() string {
	if c.v3() {
		return "where the registry cannot be reached, import the image (ctr -n k8s.io images import FILE) or set sandbox = \"IMAGE\" under " +
			c.section("images", ".pinned_images") + " in /etc/containerd/config.toml to one this machine has"
	}
	return "where the registry cannot be reached, import the image (ctr -n k8s.io images import FILE) or set sandbox_image = \"IMAGE\" under " +
		c.section("", "") + " in /etc/containerd/config.toml to one this machine has"
}

// pinnedSandboxImage is containerd 2's sandbox image, which its CRI status
// no longer shows (it belongs to the images plugin): the sandbox entry of
// the pinned images in `containerd config dump`.
func pinnedSandboxImage(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "containerd", "config", "dump").Output()
	if err != nil {
		return ""
	}
	return pinnedSandboxOf(out)
}

func pinnedSandboxOf(dump []byte) string {
	in := false
	s := bufio.NewScanner(bytes.NewReader(dump))
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if strings.HasPrefix(line, "[") {
			in = strings.Contains(line, "io.containerd.cri.v1.images") && strings.HasSuffix(line, ".pinned_images]")
			continue
		}
		if key, value, ok := strings.Cut(line, "="); in && ok && strings.TrimSpace(key) == "sandbox" {
			return strings.Trim(strings.TrimSpace(value), `'"`)
		}
	}
	return ""
}
