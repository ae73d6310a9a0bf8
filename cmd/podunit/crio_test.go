package main

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/criclient"
)

// dropInOf runs the printf of a drop-in fix and reads what it writes, after
// base, as CRI-O would: the fix must be a drop-in CRI-O reads, setting the
// key.
func dropInOf(t *testing.T, base, fix string) criclient.CRIOConfig {
	t.Helper()
	printf, _, ok := strings.Cut(fix, " >"+crioDropInDir+"/")
	if !ok || !strings.HasPrefix(printf, "printf '") || !strings.HasSuffix(fix, "&& systemctl restart crio") {
		t.Fatalf("not a crio.conf.d drop-in: %s", fix)
	}
	out, err := exec.Command("sh", "-c", printf).Output()
	if err != nil {
		t.Fatalf("%s: %v", printf, err)
	}
	c, err := criclient.ParseCRIOConfig(strings.NewReader(base + string(out)))
	if err != nil {
		t.Fatalf("the drop-in %q: %v", out, err)
	}
	return c
}

func TestCRIOFixesAreDropIns(t *testing.T) {
	if c := dropInOf(t, "", crioCgroupFix("systemd")); c.CgroupManager != "systemd" {
		t.Errorf("cgroup fix sets %+v", c)
	}
	if c := dropInOf(t, "", crioCNIFix("/usr/lib/cni")); len(c.PluginDirs) != 1 || c.PluginDirs[0] != "/usr/lib/cni" {
		t.Errorf("CNI fix sets %+v", c)
	}
	fix := crioSandboxImageFix()
	if c := dropInOf(t, "", fix[strings.Index(fix, "printf"):]); c.PauseImage != "IMAGE" {
		t.Errorf("sandbox image fix sets %+v", c)
	}
}

func TestCRIOFindings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config criclient.CRIOConfig
		want   string // the one finding, as doctor prints it
	}{{
		name:   "conmon in the pod's slice",
		config: criclient.CRIOConfig{CgroupManager: "systemd", DefaultRuntime: "runc", MonitorCgroup: "pod"},
		want:   "[ok]   conmon: in each pod's slice (monitor_cgroup \"pod\" of runtime runc)\n",
	}, {
		name:   "CRI-O's default: conmon in system.slice",
		config: criclient.CRIOConfig{CgroupManager: "systemd", DefaultRuntime: "crun", MonitorCgroup: "system.slice"},
		want: "[warn] conmon: each container's conmon runs in system.slice, outside its pod's slice: systemctl status and the slice's memory and tasks miss it\n" +
			`       fix: printf '[crio.runtime.runtimes.crun]\nmonitor_cgroup = "pod"\n' >/etc/crio/crio.conf.d/90-podunit-conmon.conf && systemctl restart crio` + "\n",
	}, {
		name:   "cgroupfs: the cgroup driver check speaks",
		config: criclient.CRIOConfig{CgroupManager: "cgroupfs", DefaultRuntime: "crun", ConmonCgroup: "system.slice"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			printFindings(&out, crioFindings(tc.config))
			if out.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
	fs := crioFindings(criclient.CRIOConfig{CgroupManager: "systemd", DefaultRuntime: "crun", MonitorCgroup: "system.slice"})
	if c := dropInOf(t, "[crio.runtime]\ndefault_runtime = \"crun\"\n", fs[0].fix); !c.ConmonInPod() {
		t.Errorf("conmon fix sets %+v", c)
	}
}

// versionOnly answers Version as the named runtime does.
type versionOnly struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	name string
}

func (v versionOnly) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: v.name, RuntimeVersion: "1.34.0", RuntimeApiVersion: "v1"}, nil
}

// On a machine with CRI-O and podunit's default criEndpoint (containerd's
// socket), doctor's fix names the socket that answers, as the line to set.
func TestDoctorNamesTheRuntimeThatAnswers(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "crio.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, versionOnly{name: "cri-o"})
	go srv.Serve(l)
	t.Cleanup(srv.Stop)

	missing := "unix://" + filepath.Join(dir, "containerd.sock")
	crio := "unix://" + sock
	for _, tc := range []struct {
		name  string
		known []string
		want  string
	}{
		{"CRI-O answers", []string{missing, crio}, "fix: CRI-O answers at " + crio + ": set criEndpoint: " + crio + " in /etc/podunit/config.yaml"},
		{"nothing answers", []string{missing}, "fix: systemctl enable --now containerd (or crio)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &doctor{configPath: "/etc/podunit/config.yaml", knownEndpoints: tc.known}
			d.cfg.CRIEndpoint = missing
			var out bytes.Buffer
			if printFindings(&out, d.runtime(t.Context())) != 1 || !strings.Contains(out.String(), "[fail] runtime: "+missing+" does not answer") ||
				!strings.Contains(out.String(), tc.want) {
				t.Errorf("doctor:\n%s\nwant %q", out.String(), tc.want)
			}
		})
	}
}
