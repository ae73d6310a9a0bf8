package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The packaged config.yaml states the defaults: loading it must give the
// same units as no file at all.
func TestPackagedConfigIsTheDefaults(t *testing.T) {
	cfg, err := loadConfig("../../packaging/config.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	def := defaultConfig()
	got, want := cfg.unitConfig("/run/podunit/specs", nil), def.unitConfig("/run/podunit/specs", nil)
	if cfg.ManifestDir != def.ManifestDir || cfg.CRIEndpoint != def.CRIEndpoint || cfg.CgroupDriver != def.CgroupDriver {
		t.Errorf("packaged config %+v differs from the defaults %+v", cfg, def)
	}
	// The log keys restate podshim's defaults as flags.
	if !slices.Equal(got.Podshim.Argv("podshim"), []string{"podshim", "--log-max-size", "10485760", "--log-max-files", "5"}) ||
		!slices.Equal(want.Podshim.Argv("podshim"), []string{"podshim"}) {
		t.Errorf("podshim args: packaged %q, default %q", got.Podshim.Argv("podshim"), want.Podshim.Argv("podshim"))
	}
}

// The credential provider plugins' configuration is read as the kubelet's:
// a CredentialProviderConfig, checked, with its executables' directory.
func TestCredentialProviderConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "providers.yaml")
	os.WriteFile(good, []byte(`apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
- name: ecr-credential-provider
  matchImages: ["*.dkr.ecr.*.amazonaws.com"]
  defaultCacheDuration: 12h
  apiVersion: credentialprovider.kubelet.k8s.io/v1
  args: [get-credentials]
`), 0o644)
	cfg := Config{ImageCredentialProviderConfigPath: good, ImageCredentialProviderBinDir: "/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec"}
	p, err := cfg.providers()
	if err != nil || len(p.Providers) != 1 || p.Providers[0].Name != "ecr-credential-provider" || p.BinDir != cfg.ImageCredentialProviderBinDir {
		t.Fatalf("providers %+v, %v", p, err)
	}
	if args, _ := cfg.podshimArgs(); args.CredentialProviders == "" {
		t.Error("podshim is not given the plugins' configuration")
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("kind: CredentialProviderConfig\nproviders:\n- name: x\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n"), 0o644)
	cfg.ImageCredentialProviderConfigPath = bad
	if _, err := cfg.providers(); err == nil || !strings.Contains(err.Error(), "matchImages") || !strings.Contains(err.Error(), bad) {
		t.Errorf("a provider without matchImages: %v", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for text, want := range map[string]string{
		"containerLogMaxSize: lots\n":   "containerLogMaxSize",
		"containerLogMaxFiles: 1\n":     "containerLogMaxFiles",
		"resolvConf: etc/resolv.conf\n": "resolvConf",
		"manifestDirs: /x\n":            "manifestDirs",
		"cgroupDriver: both\n":          "cgroupDriver",
		"restrictHostAccess: yes\n":     "restrictHostAccess",
		"imagePullOffline: never\n":     "imagePullOffline",
		"registryAuthFile: auth.json\n": "registryAuthFile",
	} {
		path := writeConfig(t, text)
		_, err := loadConfig(path, true)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: error %v, want one naming %s and the file", text, err, want)
		}
	}
}
