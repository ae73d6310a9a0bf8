package criclient

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// CRIOConfig is what CRI-O's configuration says of what podunit depends on:
// the keys of crio.conf (and its crio.conf.d drop-ins) as CRI-O runs with
// them, which its CRI Status does not tell.
type CRIOConfig struct {
	// StorageDriver, Root and RunRoot are its image store ([crio]).
	StorageDriver, Root, RunRoot string
	// CgroupManager is "systemd" or "cgroupfs" ([crio.runtime]).
	CgroupManager string
	// DefaultRuntime names the OCI runtime of pods that ask for none.
	DefaultRuntime string
	// MonitorCgroup is where the default runtime's conmon runs: "pod" (in
	// the pod's cgroup), a slice ("system.slice", CRI-O's default) or ""
	// (then the deprecated [crio.runtime] conmon_cgroup decides).
	MonitorCgroup string
	// ConmonCgroup is [crio.runtime] conmon_cgroup.
	ConmonCgroup string
	// PauseImage and PauseCommand make each pod's infra container
	// ([crio.image]); PinnedImages are never garbage-collected.
	PauseImage, PauseCommand string
	PinnedImages             []string
	// NetworkDir and PluginDirs are where it reads CNI configurations and
	// plugins ([crio.network]).
	NetworkDir string
	PluginDirs []string
}

// ConmonInPod reports whether each container's conmon runs in its pod's
// cgroup (so in the pod's slice with the systemd cgroup manager).
func (c CRIOConfig) ConmonInPod() bool {
	if c.MonitorCgroup != "" {
		return c.MonitorCgroup == "pod"
	}
	return c.ConmonCgroup == "pod"
}

// CRIOConfigPath is the URL path of CRI-O's configuration on its socket,
// what `crio status config` prints.
const CRIOConfigPath = "/config"

// ReadCRIOConfig asks the CRI-O at endpoint (unix:///run/crio/crio.sock) for
// its configuration: CRI-O serves it over HTTP on the same socket as the
// CRI, as TOML.
func ReadCRIOConfig(ctx context.Context, endpoint string) (CRIOConfig, error) {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok || !strings.HasPrefix(path, "/") {
		return CRIOConfig{}, fmt.Errorf("%q: %w", endpoint, ErrEndpoint)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://crio"+CRIOConfigPath, nil)
	if err != nil {
		return CRIOConfig{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return CRIOConfig{}, fmt.Errorf("CRI-O's configuration: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return CRIOConfig{}, fmt.Errorf("CRI-O's configuration: GET %s: %s", CRIOConfigPath, resp.Status)
	}
	return ParseCRIOConfig(io.LimitReader(resp.Body, 4<<20))
}

// ParseCRIOConfig reads the keys of CRIOConfig from CRI-O's configuration
// as CRI-O writes it (crio status config, crio config): TOML tables and
// one key = value per line, where values are strings, arrays of strings on
// one line, numbers and booleans. Other keys are skipped.
func ParseCRIOConfig(r io.Reader) (CRIOConfig, error) {
	var c CRIOConfig
	// The default runtime's table may come before default_runtime names
	// it: keep every runtime's monitor_cgroup until the end.
	monitor := map[string]string{}
	table := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			table = strings.Trim(line, "[] ")
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return CRIOConfig{}, fmt.Errorf("CRI-O's configuration, line %d: not key = value: %q", n, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		str := func(dst *string) error {
			if err := json.Unmarshal([]byte(value), dst); err != nil {
				return fmt.Errorf("CRI-O's configuration, line %d: %s: want a string: %w", n, key, err)
			}
			return nil
		}
		list := func(dst *[]string) error {
			if err := json.Unmarshal([]byte(value), dst); err != nil {
				return fmt.Errorf("CRI-O's configuration, line %d: %s: want a list of strings: %w", n, key, err)
			}
			return nil
		}
		var err error
		switch table + "." + key {
		case "crio.root":
			err = str(&c.Root)
		case "crio.runroot":
			err = str(&c.RunRoot)
		case "crio.storage_driver":
			err = str(&c.StorageDriver)
		case "crio.runtime.cgroup_manager":
			err = str(&c.CgroupManager)
		case "crio.runtime.default_runtime":
			err = str(&c.DefaultRuntime)
		case "crio.runtime.conmon_cgroup":
			err = str(&c.ConmonCgroup)
		case "crio.image.pause_image":
			err = str(&c.PauseImage)
		case "crio.image.pause_command":
			err = str(&c.PauseCommand)
		case "crio.image.pinned_images":
			err = list(&c.PinnedImages)
		case "crio.network.network_dir":
			err = str(&c.NetworkDir)
		case "crio.network.plugin_dirs":
			err = list(&c.PluginDirs)
		default:
			if name, ok := strings.CutPrefix(table, "crio.runtime.runtimes."); ok && key == "monitor_cgroup" {
				var v string
				err = str(&v)
				monitor[strings.Trim(name, `"`)] = v
			}
		}
		if err != nil {
			return CRIOConfig{}, err
		}
	}
	if err := sc.Err(); err != nil {
		return CRIOConfig{}, fmt.Errorf("CRI-O's configuration: %w", err)
	}
	c.MonitorCgroup = monitor[c.DefaultRuntime]
	return c, nil
}
