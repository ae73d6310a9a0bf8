package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podunit/podunit/units/engine/enginetest"
)

// A standalone kubelet's configuration, as tutorials write it.
const kubeletYAML = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
enableServer: false
readOnlyPort: 10255
cgroupDriver: systemd
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
staticPodPath: %s
staticPodURL: http://config.example/pods
staticPodURLHeader:
  Authorization: ["Bearer t"]
httpCheckFrequency: 30s
`

func TestKubeletConfigSources(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kubelet.yaml")
	enginetest.Write(t, dir, "kubelet.yaml", strings.Replace(kubeletYAML, "%s", "/etc/kubernetes/manifests", 1))
	cfg := defaultConfig()
	notes, err := applyKubeletConfig(&cfg, path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ManifestDir != "/etc/kubernetes/manifests" || cfg.ManifestURL != "http://config.example/pods" ||
		cfg.ManifestURLHeaders["Authorization"][0] != "Bearer t" || cfg.ManifestURLInterval != "30s" {
		t.Errorf("config from the kubelet's: %+v", cfg)
	}
	all := strings.Join(notes, "\n")
	if cfg.ReadOnlyPort != 10255 {
		t.Errorf("readOnlyPort %d, want the kubelet's 10255", cfg.ReadOnlyPort)
	}
	if cfg.CRIEndpoint != "unix:///run/containerd/containerd.sock" {
		t.Errorf("criEndpoint %q, want the kubelet's containerRuntimeEndpoint", cfg.CRIEndpoint)
	}
	for _, want := range []string{"readOnlyPort 10255", "keys that do not apply to podunit: [authentication authorization cgroupDriver enableServer]"} {
		if !strings.Contains(all, want) {
			t.Errorf("notes lack %q:\n%s", want, all)
		}
	}
	enginetest.Write(t, dir, "bad.yaml", "kind: KubeletConfiguration\nstaticPodURL: ftp://x\n")
	if _, err := applyKubeletConfig(&cfg, filepath.Join(dir, "bad.yaml")); err == nil || !strings.Contains(err.Error(), "manifestURL") {
		t.Errorf("bad staticPodURL: %v", err)
	}
}

// staticPodPath may name one file, as the kubelet allows.
func TestSyncStaticPodPathFile(t *testing.T) {
	s, m, _, _ := enginetest.NewSyncer(t)
	enginetest.Write(t, filepath.Dir(s.Sources[0].Dir), "one-pod.yaml", enginetest.Pod("web", "img:1"))
	s.Sources[0].Dir = filepath.Join(filepath.Dir(s.Sources[0].Dir), "one-pod.yaml")
	if err := enginetest.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Units["pod-web.service"]; !ok {
		t.Errorf("units %v", m.Units)
	}
}

// The kubeletConfig key reaches every command that loads the configuration
// (serve takes the kubelet's readOnlyPort from it); the flag wins.
func TestKubeletConfigKey(t *testing.T) {
	dir := t.TempDir()
	enginetest.Write(t, dir, "kubelet.yaml", strings.Replace(kubeletYAML, "%s", "/etc/kubernetes/manifests", 1))
	enginetest.Write(t, dir, "other.yaml", "kind: KubeletConfiguration\nreadOnlyPort: 10266\n")
	enginetest.Write(t, dir, "config.yaml", "kubeletConfig: "+filepath.Join(dir, "kubelet.yaml")+"\n")
	cfg, _, err := loadConfigWithKubelet(filepath.Join(dir, "config.yaml"), true, "")
	if err != nil || cfg.ReadOnlyPort != 10255 || cfg.ManifestDir != "/etc/kubernetes/manifests" {
		t.Errorf("from the key: %+v, %v", cfg, err)
	}
	cfg, _, err = loadConfigWithKubelet(filepath.Join(dir, "config.yaml"), true, filepath.Join(dir, "other.yaml"))
	if err != nil || cfg.ReadOnlyPort != 10266 {
		t.Errorf("the flag: %+v, %v", cfg, err)
	}
}

// The kubelet configuration of kubernetes.io's tutorial "Running Kubelet in
// Standalone Mode", as its reader writes it (the file the e2e test
// TestStandaloneKubeletTutorial follows the tutorial with), named by the
// packaged config.yaml's kubeletConfig: podunit takes the tutorial's
// manifest directory, CRI-O's socket over the packaged containerd one, and
// the read-only port on the kubelet's address; the keys about the kubelet's
// own server and logging do not apply.
func TestKubeletTutorialConfig(t *testing.T) {
	const tutorial = "../../test/e2e/testdata/kubelet-standalone/kubelet.yaml"
	cfg, notes, err := loadConfigWithKubelet(writeConfig(t, "criEndpoint: unix:///run/containerd/containerd.sock\nkubeletConfig: "+tutorial+"\n"), true, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ManifestDir != "/etc/kubernetes/manifests" || cfg.CRIEndpoint != "unix:///var/run/crio/crio.sock" ||
		cfg.ReadOnlyPort != 10255 || cfg.readOnlyAddress() != "127.0.0.1" {
		t.Errorf("the tutorial's kubelet.yaml gave manifestDir %q, criEndpoint %q, readOnly %s:%d",
			cfg.ManifestDir, cfg.CRIEndpoint, cfg.readOnlyAddress(), cfg.ReadOnlyPort)
	}
	if u := cfg.unitConfig("/run/podunit/specs", nil); u.CRIEndpoint != "unix:///var/run/crio/crio.sock" {
		t.Errorf("podshim is given %q, not the kubelet's runtime", u.CRIEndpoint)
	}
	all := strings.Join(notes, "\n")
	for _, want := range []string{
		"containerRuntimeEndpoint unix:///var/run/crio/crio.sock is the runtime podunit uses",
		"address 127.0.0.1 is where readOnlyPort listens",
		"keys that do not apply to podunit: [authentication authorization enableServer logging]",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("notes lack %q:\n%s", want, all)
		}
	}
}

// What podunit makes of a kubelet's containerRuntimeEndpoint and address,
// and how config.yaml's keys weigh against them.
func TestKubeletRuntimeAndAddress(t *testing.T) {
	for _, tc := range []struct {
		name, config, kubelet string
		endpoint, address     string
		err                   string
	}{
		{name: "a unix URL", kubelet: "containerRuntimeEndpoint: unix:///run/crio/crio.sock", endpoint: "unix:///run/crio/crio.sock", address: "127.0.0.1"},
		{name: "a bare path, as the kubelet still reads it", kubelet: "containerRuntimeEndpoint: /run/crio/crio.sock", endpoint: "unix:///run/crio/crio.sock", address: "127.0.0.1"},
		{name: "no endpoint: config.yaml's", config: "criEndpoint: unix:///run/crio/crio.sock", endpoint: "unix:///run/crio/crio.sock", address: "127.0.0.1"},
		{name: "the kubelet's endpoint over config.yaml's", config: "criEndpoint: unix:///run/crio/crio.sock", kubelet: "containerRuntimeEndpoint: unix:///run/containerd/containerd.sock",
			endpoint: "unix:///run/containerd/containerd.sock", address: "127.0.0.1"},
		{name: "a TCP endpoint", kubelet: "containerRuntimeEndpoint: tcp://10.0.0.1:3735", err: "containerRuntimeEndpoint"},
		{name: "the kubelet's address", kubelet: "address: 0.0.0.0", endpoint: "unix:///run/containerd/containerd.sock", address: "0.0.0.0"},
		{name: "config.yaml's readOnlyAddress wins", config: "readOnlyAddress: 10.0.0.5", kubelet: "address: 0.0.0.0", endpoint: "unix:///run/containerd/containerd.sock", address: "10.0.0.5"},
		{name: "a bad address", kubelet: "address: localhost", err: "address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			enginetest.Write(t, dir, "kubelet.yaml", "kind: KubeletConfiguration\n"+tc.kubelet+"\n")
			cfg, _, err := loadConfigWithKubelet(writeConfig(t, tc.config+"\nkubeletConfig: "+filepath.Join(dir, "kubelet.yaml")+"\n"), true, "")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "kubelet.yaml") {
					t.Errorf("error %v, want one naming %s and the file", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.CRIEndpoint != tc.endpoint || cfg.readOnlyAddress() != tc.address {
				t.Errorf("criEndpoint %q, readOnlyAddress %q; want %q, %q", cfg.CRIEndpoint, cfg.readOnlyAddress(), tc.endpoint, tc.address)
			}
		})
	}
}
