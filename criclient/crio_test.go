package criclient

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// crioConfigText is CRI-O 1.34's configuration as `crio status config`
// prints it, the tables and keys CRIOConfig reads and some of their
// neighbours.
const crioConfigText = `[crio]
  root = "/var/lib/containers/storage"
  runroot = "/run/containers/storage"
  storage_driver = "overlay"
  storage_option = ["overlay.mountopt=nodev"]
  internal_wipe = true
  [crio.api]
    grpc_max_send_msg_size = 83886080
    listen = "/run/crio/crio.sock"
  [crio.runtime]
    default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FSETID"]
    default_runtime = "runc"
    conmon = ""
    conmon_cgroup = ""
    cgroup_manager = "systemd"
    [crio.runtime.runtimes]
      [crio.runtime.runtimes.crun]
        runtime_path = "/usr/bin/crun"
        monitor_cgroup = "system.slice"
      [crio.runtime.runtimes.runc]
        runtime_path = "/usr/sbin/runc"
        monitor_cgroup = "pod"
        monitor_env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
  [crio.image]
    pause_image = "localhost/podunit/pause:1"
    pause_command = ""
    pinned_images = ["localhost/podunit/pause:1", "quay.io/app/*"]
  [crio.network]
    cni_default_network = ""
    network_dir = "/etc/cni/net.d/"
    plugin_dirs = ["/usr/lib/cni"]
  [crio.metrics]
    metrics_port = 9090
`

func TestParseCRIOConfig(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       CRIOConfig
		inPod      bool
		err        string
	}{{
		name: "CRI-O 1.34 in the test bed",
		text: crioConfigText,
		want: CRIOConfig{
			StorageDriver: "overlay", Root: "/var/lib/containers/storage", RunRoot: "/run/containers/storage",
			CgroupManager: "systemd", DefaultRuntime: "runc", MonitorCgroup: "pod",
			PauseImage: "localhost/podunit/pause:1", PinnedImages: []string{"localhost/podunit/pause:1", "quay.io/app/*"},
			NetworkDir: "/etc/cni/net.d/", PluginDirs: []string{"/usr/lib/cni"},
		},
		inPod: true,
	}, {
		name: "defaults: crun with conmon in system.slice, CNI plugins in /opt/cni/bin",
		text: strings.NewReplacer(`default_runtime = "runc"`, `default_runtime = "crun"`, `plugin_dirs = ["/usr/lib/cni"]`, `plugin_dirs = ["/opt/cni/bin/"]`).Replace(crioConfigText),
		want: CRIOConfig{
			StorageDriver: "overlay", Root: "/var/lib/containers/storage", RunRoot: "/run/containers/storage",
			CgroupManager: "systemd", DefaultRuntime: "crun", MonitorCgroup: "system.slice",
			PauseImage: "localhost/podunit/pause:1", PinnedImages: []string{"localhost/podunit/pause:1", "quay.io/app/*"},
			NetworkDir: "/etc/cni/net.d/", PluginDirs: []string{"/opt/cni/bin/"},
		},
	}, {
		name:  "the deprecated conmon_cgroup, for a runtime without monitor_cgroup",
		text:  "[crio.runtime]\n  conmon_cgroup = \"pod\"\n  default_runtime = \"kata\"\n  [crio.runtime.runtimes.\"kata\"]\n    runtime_path = \"/usr/bin/kata\"\n",
		want:  CRIOConfig{DefaultRuntime: "kata", ConmonCgroup: "pod"},
		inPod: true,
	}, {
		name: "a value of the wrong kind",
		text: "[crio.network]\n  plugin_dirs = \"/usr/lib/cni\"\n",
		err:  "line 2: plugin_dirs: want a list of strings",
	}, {
		name: "not TOML",
		text: "<html>404</html>\n",
		err:  "line 1: not key = value",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCRIOConfig(strings.NewReader(tc.text))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if got.ConmonInPod() != tc.inPod {
				t.Errorf("ConmonInPod() = %v, want %v", got.ConmonInPod(), tc.inPod)
			}
		})
	}
}

// ReadCRIOConfig asks the socket's HTTP side, as `crio status config` does.
func TestReadCRIOConfig(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "crio.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+CRIOConfigPath, func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(crioConfigText)) })
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	c, err := ReadCRIOConfig(context.Background(), "unix://"+sock)
	if err != nil || c.CgroupManager != "systemd" || !c.ConmonInPod() || c.PluginDirs[0] != "/usr/lib/cni" {
		t.Errorf("ReadCRIOConfig: %+v, %v", c, err)
	}
	if _, err := ReadCRIOConfig(context.Background(), "unix://"+filepath.Join(t.TempDir(), "none.sock")); err == nil {
		t.Error("no error from a socket that is not there")
	}
}
