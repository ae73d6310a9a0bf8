package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/units"
)

// DefaultConfigPath is podunit's configuration file.
const DefaultConfigPath = "/etc/podunit/config.yaml"

// Config is /etc/podunit/config.yaml. Every key is optional.
type Config struct {
	// ManifestDir is the directory of Pod manifests.
	ManifestDir string `json:"manifestDir"`
	// CRIEndpoint is the container runtime's CRI socket.
	CRIEndpoint string `json:"criEndpoint"`
	// CgroupDriver must match the runtime's: systemd or cgroupfs.
	CgroupDriver string `json:"cgroupDriver"`
}

func defaultConfig() Config {
	return Config{
		ManifestDir:  "/etc/podunit/manifests",
		CRIEndpoint:  criclient.DefaultEndpoint,
		CgroupDriver: units.CgroupDriverSystemd,
	}
}

// loadConfig reads path over the defaults. A missing file at the default
// path is the defaults; a missing file named explicitly is an error.
func loadConfig(path string, explicit bool) (Config, error) {
	cfg := defaultConfig()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := units.CgroupParent(cfg.CgroupDriver, "default", "x"); err != nil {
		return cfg, fmt.Errorf("config %s: cgroupDriver: %w", path, err)
	}
	return cfg, nil
}
