package main

import (
	"fmt"
	"strings"

	"github.com/podunit/podunit/criclient"
)

// crioDropInDir is where CRI-O reads drop-ins over /etc/crio/crio.conf, in
// name order: doctor's fixes add files of their own there, named to come
// after a distribution's.
const crioDropInDir = "/etc/crio/crio.conf.d"

// crioDropIn is the fix that sets keys of one table of CRI-O's
// configuration: a command writing a drop-in of its own, then restarting
// CRI-O (its running pods keep running: conmon is not its child).
func crioDropIn(name, table string, keys ...string) string {
	return fmt.Sprintf(`printf '[%s]\n%s\n' >%s/90-podunit-%s.conf && systemctl restart crio`,
		table, strings.Join(keys, `\n`), crioDropInDir, name)
}

func crioCgroupFix(driver string) string {
	return crioDropIn("cgroup", "crio.runtime", fmt.Sprintf("cgroup_manager = %q", driver))
}

func crioCNIFix(binDir string) string {
	return crioDropIn("cni", "crio.network", fmt.Sprintf("plugin_dirs = [%q]", binDir))
}

func crioSandboxImageFix() string {
	return `where the registry cannot be reached, copy the image into CRI-O's store (skopeo copy oci-archive:FILE containers-storage:IMAGE) or point CRI-O at one this machine has: ` +
		crioDropIn("pause", "crio.image", `pause_image = "IMAGE"`)
}

// crioFindings are doctor's checks of CRI-O's own configuration, beyond
// what its CRI calls show: where each container's conmon runs.
func crioFindings(c criclient.CRIOConfig) []finding {
	var out []finding
	switch {
	case c.CgroupManager != "systemd":
		// conmon goes where cgroupfs puts it; the cgroup driver check says the rest.
	case c.ConmonInPod():
		out = append(out, passed("conmon", "in each pod's slice (monitor_cgroup \"pod\" of runtime %s)", c.DefaultRuntime))
	default:
		where := c.MonitorCgroup
		if where == "" {
			where = c.ConmonCgroup
		}
		out = append(out, warned("conmon", crioDropIn("conmon", "crio.runtime.runtimes."+c.DefaultRuntime, `monitor_cgroup = "pod"`),
			"each container's conmon runs in %s, outside its pod's slice: systemctl status and the slice's memory and tasks miss it", where))
	}
	return out
}
