package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/cni"
	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/units/bus"
)

// finding is one result of `podunit doctor`: a problem comes with its fix.
type finding struct {
	level   string // ok, warn or fail
	subject string
	msg     string
	fix     string
}

func passed(subject, format string, args ...any) finding {
	return finding{level: "ok", subject: subject, msg: fmt.Sprintf(format, args...)}
}

func warned(subject, fix, format string, args ...any) finding {
	return finding{level: "warn", subject: subject, msg: fmt.Sprintf(format, args...), fix: fix}
}

// hinted is a finding that is no problem: a change that would help.
func hinted(subject, fix, format string, args ...any) finding {
	return finding{level: "hint", subject: subject, msg: fmt.Sprintf(format, args...), fix: fix}
}

func failed(subject, fix, format string, args ...any) finding {
	return finding{level: "fail", subject: subject, msg: fmt.Sprintf(format, args...), fix: fix}
}

// minSystemd is the oldest systemd podunit's units work on.
const minSystemd = 247

// doctor holds where to look; each check reads what it needs.
type doctor struct {
	cfg         Config
	configPath  string
	cniConfDir  string
	cniBinDirs  []string
	procRoot    string // /proc, for ip_forward and swaps
	unitsActive []string
	// cniFromRuntime: take the CNI directories the runtime reports, when
	// it does, over the defaults.
	cniFromRuntime bool
	// containerd is the configuration syntax of the containerd that
	// answered, for the fixes.
	containerd containerdConfig
	// crio: CRI-O answered; its fixes are crio.conf.d drop-ins.
	crio bool
	// knownEndpoints are asked when criEndpoint does not answer
	// (wellKnownEndpoints).
	knownEndpoints []string
	// lookPath finds a program on PATH (exec.LookPath).
	lookPath func(string) (string, error)
}

func newDoctorCommand() *cobra.Command {
	d := &doctor{procRoot: "/proc", knownEndpoints: wellKnownEndpoints, lookPath: exec.LookPath}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "check that this machine can run pods, and say how to fix what it cannot",
		Long: `Checks what pods need and names the fix for each problem: systemd's version,
the runtime's CRI socket, that the runtime's cgroup driver is podunit's, the
CNI network the runtime gives pods and its plugins (with libcni, as the
runtime loads them), the manifest directories, podunit's own units,
net.ipv4.ip_forward and swap. On CRI-O it reads CRI-O's configuration from
its socket too (where conmon runs, where CNI plugins are looked for), and
its fixes are drop-ins in /etc/crio/crio.conf.d. Where containerd runs
runc and crun is installed, a hint says how to switch (pods start faster
with crun: docs/benchmarks.md); a hint fails nothing. Exit status 1 when a
check fails.`,
		Args: exactArgs(0, "no arguments"),
	}
	f := cmd.Flags()
	f.StringVar(&d.configPath, "config", DefaultConfigPath, "configuration file")
	f.StringVar(&d.cniConfDir, "cni-conf-dir", cni.DefaultConfDir, "the runtime's CNI configuration directory")
	f.StringSliceVar(&d.cniBinDirs, "cni-bin-dir", cni.DefaultBinDirs, "where the CNI plugins are")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, _, err := loadConfigWithKubelet(d.configPath, f.Changed("config"), "")
		if err != nil {
			return err
		}
		d.cfg = cfg
		d.cniFromRuntime = !f.Changed("cni-conf-dir") && !f.Changed("cni-bin-dir")
		d.unitsActive = []string{"podunit.path", "podunit-sync.timer", "podunit-status.socket"}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		failed := printFindings(cmd.OutOrStdout(), d.run(ctx))
		if failed > 0 {
			return &exitError{exitFailure, fmt.Errorf("%d check(s) failed", failed)}
		}
		return nil
	}
	return cmd
}

func printFindings(w io.Writer, fs []finding) (failed int) {
	for _, f := range fs {
		fmt.Fprintf(w, "%-6s %s: %s\n", "["+f.level+"]", f.subject, f.msg)
		if f.fix != "" {
			fmt.Fprintf(w, "       fix: %s\n", f.fix)
		}
		if f.level == "fail" {
			failed++
		}
	}
	return failed
}

func (d *doctor) run(ctx context.Context) []finding {
	var out []finding
	out = append(out, d.systemd(ctx)...)
	out = append(out, d.runtime(ctx)...)
	out = append(out, d.network(ctx), d.services())
	out = append(out, d.manifests()...)
	out = append(out, d.ipForward(), d.swap())
	return out
}

func (d *doctor) systemd(ctx context.Context) []finding {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return []finding{failed("systemd", "podunit needs systemd as the init system, with its D-Bus API (/run/systemd/private)",
			"cannot connect: %v", err)}
	}
	defer conn.Close()
	var out []finding
	version, err := bus.Version(conn)
	if err != nil {
		return []finding{failed("systemd", "", "cannot read its version: %v", err)}
	}
	major, _, _ := generator.ParseVersion(version)
	switch {
	case major < minSystemd:
		out = append(out, failed("systemd", "upgrade systemd (Debian 12 has 252)", "version %s; podunit needs %d or newer", version, minSystemd))
	case major < 254:
		out = append(out, passed("systemd", "version %s (crash-looping pods back off in podshim; 254 and newer let systemd do it with RestartSteps=)", version))
	default:
		out = append(out, passed("systemd", "version %s", version))
	}
	statuses, err := bus.States(ctx, conn, d.unitsActive)
	if err != nil {
		return append(out, failed("podunit units", "", "cannot list them: %v", err))
	}
	for _, s := range statuses {
		switch {
		case s.LoadState != "loaded":
			out = append(out, failed(s.Name, "reinstall the podunit package (its units are in /usr/lib/systemd/system)", "not installed (%s)", s.LoadState))
		case s.ActiveState != "active":
			out = append(out, failed(s.Name, "systemctl enable --now "+s.Name, "%s: manifests are not picked up or the status API does not answer", s.ActiveState))
		default:
			out = append(out, passed(s.Name, "active"))
		}
	}
	return out
}

func (d *doctor) runtime(ctx context.Context) []finding {
	rt, err := criclient.New(d.cfg.CRIEndpoint)
	if err != nil {
		return []finding{failed("runtime", "set criEndpoint in "+d.configPath+" to unix:///run/containerd/containerd.sock or unix:///run/crio/crio.sock", "%v", err)}
	}
	defer rt.Close()
	rt.Timeout = 3 * time.Second
	v, err := rt.Version(ctx, "")
	if err != nil {
		fix := "systemctl enable --now containerd (or crio); criEndpoint in " + d.configPath + " names its socket"
		if other, name := answeringRuntime(ctx, d.cfg.CRIEndpoint, d.knownEndpoints); other != "" {
			fix = name + " answers at " + other + ": set criEndpoint: " + other + " in " + d.configPath
		}
		return []finding{failed("runtime", fix, "%s does not answer: %v", d.cfg.CRIEndpoint, err)}
	}
	out := []finding{passed("runtime", "%s %s (%s) at %s", v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion, d.cfg.CRIEndpoint)}
	d.containerd = newContainerdConfig(v.RuntimeName, v.RuntimeVersion)
	d.crio = v.RuntimeName == "cri-o"
	settings, err := rt.Settings(ctx)
	if err == nil && settings.SandboxImage == "" && d.containerd.v3() {
		settings.SandboxImage = pinnedSandboxImage(ctx)
	}
	switch driver := settings.CgroupDriver; {
	case err != nil:
		out = append(out, warned("cgroup driver", "", "cannot tell the runtime's: %v", err))
	case driver == "":
		out = append(out, warned("cgroup driver", "check that the runtime's cgroup driver is "+d.cfg.CgroupDriver, "the runtime does not tell its driver"))
	case driver != d.cfg.CgroupDriver:
		out = append(out, failed("cgroup driver", d.cgroupDriverFix(driver),
			"the runtime uses %s, podunit %s: pods' containers would land outside their units", driver, d.cfg.CgroupDriver))
	default:
		out = append(out, passed("cgroup driver", "%s, as the runtime's", driver))
	}
	if err == nil {
		out = append(out, d.ociRuntime(settings)...)
	}
	// The sandbox image: without it no pod starts, and a machine that
	// cannot reach its registry never gets it.
	if img := settings.SandboxImage; err == nil && img != "" {
		st, ierr := rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: img}, false)
		switch {
		case ierr != nil:
			out = append(out, warned("sandbox image", "", "cannot tell whether %s is here: %v", img, ierr))
		case st.GetImage() == nil:
			fix := d.containerd.sandboxImageFix()
			if d.crio {
				fix = crioSandboxImageFix()
			}
			out = append(out, warned("sandbox image", fix,
				"%s is not on this machine: the first pod pulls it from its registry", img))
		default:
			out = append(out, passed("sandbox image", "%s, present", img))
		}
	}
	// The runtime's own CNI directories: containerd looks for plugins in
	// /opt/cni/bin unless told, Debian's package puts them in /usr/lib/cni.
	if d.cniFromRuntime && len(settings.CNIPluginDirs) > 0 {
		d.cniConfDir, d.cniBinDirs = cmp.Or(settings.CNIConfDir, d.cniConfDir), settings.CNIPluginDirs
	}
	if d.crio {
		// What CRI-O's Status does not tell: its configuration, served
		// on the same socket.
		c, err := criclient.ReadCRIOConfig(ctx, d.cfg.CRIEndpoint)
		if err != nil {
			return append(out, warned("CRI-O configuration", "", "cannot read it: %v", err))
		}
		out = append(out, crioFindings(c)...)
		if d.cniFromRuntime && len(c.PluginDirs) > 0 {
			d.cniConfDir, d.cniBinDirs = cmp.Or(c.NetworkDir, d.cniConfDir), c.PluginDirs
		}
	}
	return out
}

// ociRuntime hints at crun where containerd runs runc and crun is
// installed: in make bench's start trace (docs/benchmarks.md) the raw CRI
// start of a pod took about three quarters of runc's time with crun.
func (d *doctor) ociRuntime(s criclient.Settings) []finding {
	if d.containerd.major == 0 || s.OCIRuntime != "runc" || d.lookPath == nil {
		return nil
	}
	crun, err := d.lookPath("crun")
	if err != nil {
		return nil
	}
	return []finding{hinted("OCI runtime", d.containerd.crunFix(crun),
		"containerd runs containers with runc; crun is installed (%s), and pods start faster with it (docs/benchmarks.md)", crun)}
}

func (d *doctor) cgroupDriverFix(runtime string) string {
	switch {
	case d.cfg.CgroupDriver == "systemd" && d.containerd.major > 0:
		return d.containerd.cgroupFix() + ", or set cgroupDriver: " + runtime + " in " + d.configPath
	case d.cfg.CgroupDriver == "systemd" && d.crio:
		return crioCgroupFix("systemd") + ", or set cgroupDriver: " + runtime + " in " + d.configPath
	}
	return "set cgroupDriver: " + runtime + " in " + d.configPath
}

func (d *doctor) network(ctx context.Context) finding {
	n, err := cni.Load(d.cniConfDir)
	if errors.Is(err, cni.ErrNoNetwork) {
		return failed("CNI", "install the podunit package's network (/usr/share/podunit/cni/10-podunit.conflist) into "+d.cniConfDir+" and restart the runtime", "%v: pods cannot get an IP", err)
	}
	if err != nil {
		return failed("CNI", "fix or remove the file", "%v", err)
	}
	bin := cni.BinDir(d.cniBinDirs)
	if bin == "" {
		fix := "apt install containernetworking-plugins (or put the plugins into /opt/cni/bin)"
		if other := cni.BinDir(cni.DefaultBinDirs); other != "" {
			fix = "the plugins are in " + other + ": set the runtime's CNI plugin directory to it and restart the runtime"
			switch {
			case d.containerd.major > 0:
				fix = "the plugins are in " + other + ": " + d.containerd.cniFix(other)
			case d.crio:
				fix = "the plugins are in " + other + ": " + crioCNIFix(other)
			}
		}
		return failed("CNI", fix, "no plugins in %s, where the runtime looks", strings.Join(d.cniBinDirs, ", "))
	}
	if err := n.Check(ctx, []string{bin}); err != nil {
		return failed("CNI", "install the missing plugins into "+bin, "%v", err)
	}
	return passed("CNI", "network %q from %s (%s), plugins in %s", n.Name, n.File, strings.Join(n.Plugins, ", "), bin)
}

// services checks the Service addresses against the pods' network.
func (d *doctor) services() finding {
	sn, err := d.cfg.services()
	if err != nil {
		return failed("Services", "fix it in "+d.configPath, "%v", err)
	}
	if n, err := cni.Load(d.cniConfDir); err == nil {
		if err := sn.checkPodNetwork(n); err != nil {
			return failed("Services", "set serviceClusterIPRange (and clusterDNS) in "+d.configPath+" outside the pods' network", "%v", err)
		}
	}
	return passed("Services", "ClusterIPs from %s, node ports %s, cluster DNS %s (%s)", sn.ClusterIPRange, sn.NodePorts, sn.ClusterDNS, sn.ClusterDomain)
}

func (d *doctor) manifests() []finding {
	dirs := append([]string{d.cfg.ManifestDir}, d.cfg.ManifestDirs...)
	var out []finding
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			out = append(out, warned("manifests", "mkdir -p "+dir, "%s does not exist: no pods from it", dir))
			continue
		case err != nil:
			out = append(out, failed("manifests", "", "%v", err))
			continue
		case !fi.IsDir():
			out = append(out, passed("manifests", "%s is a single manifest file", dir))
			continue
		}
	}
	set, err := readManifestDirs(dirs)
	if err != nil {
		return append(out, failed("manifests", "", "%v", err))
	}
	if len(set.Errors) > 0 {
		return append(out, warned("manifests", "podunit validate FILE shows each error with its line; journalctl -u podunit-sync",
			"%d pod(s), %d problem(s), the first: %v", len(set.Pods), len(set.Errors), firstError(set.Errors[0])))
	}
	return append(out, passed("manifests", "%d pod(s) in %s", len(set.Pods), strings.Join(dirs, ", ")))
}

func firstError(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
		return j.Unwrap()[0]
	}
	return err
}

func (d *doctor) ipForward() finding {
	b, err := os.ReadFile(d.procRoot + "/sys/net/ipv4/ip_forward")
	if err != nil {
		return warned("ip_forward", "", "cannot read it: %v", err)
	}
	if strings.TrimSpace(string(b)) != "1" {
		return warned("ip_forward", "echo net.ipv4.ip_forward=1 >/etc/sysctl.d/90-podunit.conf && sysctl --system",
			"off: pods reach only this host until the bridge plugin turns it on with the first pod")
	}
	return passed("ip_forward", "on")
}

func (d *doctor) swap() finding {
	b, err := os.ReadFile(d.procRoot + "/swaps")
	if err != nil {
		return warned("swap", "", "cannot read /proc/swaps: %v", err)
	}
	if lines := strings.Count(strings.TrimSpace(string(b)), "\n"); lines > 0 {
		return warned("swap", "swapoff -a, or accept it: podunit sets MemoryMax= but not MemorySwapMax=",
			"%d swap device(s) on: a container at its memory limit swaps instead of being OOM-killed, as the kubelet's NoSwap would", lines)
	}
	return passed("swap", "off")
}

// wellKnownEndpoints are the CRI sockets of the runtimes as their packages
// install them, in crictl's order.
var wellKnownEndpoints = []string{criclient.DefaultEndpoint, "unix:///run/crio/crio.sock"}

// answeringRuntime returns the first of endpoints other than configured
// whose runtime answers, and the runtime's name: what a machine with CRI-O
// and podunit's default criEndpoint (containerd's) should be told.
func answeringRuntime(ctx context.Context, configured string, endpoints []string) (endpoint, name string) {
	for _, e := range endpoints {
		if e == configured {
			continue
		}
		rt, err := criclient.New(e)
		if err != nil {
			continue
		}
		rt.Timeout = time.Second
		v, err := rt.Version(ctx, "")
		rt.Close()
		if err == nil {
			return e, runtimeDisplayName(v.RuntimeName)
		}
	}
	return "", ""
}

// runtimeDisplayName is the name a user knows the runtime by.
func runtimeDisplayName(cri string) string {
	if cri == "cri-o" {
		return "CRI-O"
	}
	return cri
}
