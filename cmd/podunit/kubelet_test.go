package main

import (
	"context"
	"github.com/podunit/podunit/units/engine/enginetest"
	"path/filepath"
	"strings"
	"testing"
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
	for _, want := range []string{"readOnlyPort 10255", "keys that do not apply to podunit: [authentication authorization cgroupDriver containerRuntimeEndpoint enableServer]"} {
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
