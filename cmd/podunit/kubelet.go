package main

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/podunit/podunit/criclient"
)

// kubeletConfiguration is the part of a kubelet's KubeletConfiguration
// (kubelet.config.k8s.io/v1beta1) that describes static pods: what podunit
// takes over when it replaces a standalone kubelet.
type kubeletConfiguration struct {
	Kind               string              `json:"kind"`
	APIVersion         string              `json:"apiVersion"`
	StaticPodPath      string              `json:"staticPodPath"`
	StaticPodURL       string              `json:"staticPodURL"`
	StaticPodURLHeader map[string][]string `json:"staticPodURLHeader"`
	HTTPCheckFrequency string              `json:"httpCheckFrequency"`
	ReadOnlyPort       int                 `json:"readOnlyPort"`
	Address            string              `json:"address"`
	ClusterDomain      string              `json:"clusterDomain"`

	ContainerRuntimeEndpoint string `json:"containerRuntimeEndpoint"`

	ImageCredentialProviderConfigPath string `json:"imageCredentialProviderConfigPath"`
	ImageCredentialProviderBinDir     string `json:"imageCredentialProviderBinDir"`
}

// kubeletUsed are the keys podunit takes from a KubeletConfiguration; every
// other key is reported (with -v) as not applying to podunit.
var kubeletUsed = map[string]bool{"kind": true, "apiVersion": true, "staticPodPath": true, "staticPodURL": true,
	"staticPodURLHeader": true, "httpCheckFrequency": true, "readOnlyPort": true, "address": true, "clusterDomain": true,
	"containerRuntimeEndpoint": true, "imageCredentialProviderConfigPath": true, "imageCredentialProviderBinDir": true}

// applyKubeletConfig reads a KubeletConfiguration and takes its static pod
// sources over cfg's: staticPodPath becomes manifestDir (a directory or one
// file), staticPodURL, staticPodURLHeader and httpCheckFrequency become
// manifestURL, manifestURLHeaders and manifestURLInterval,
// containerRuntimeEndpoint becomes criEndpoint (the runtime the kubelet
// used), and its clusterDomain and address (where the kubelet served its
// readOnlyPort) are the Services' domain and readOnlyAddress unless
// config.yaml names them. It returns notes on what it did and on the keys
// that do not apply.
func applyKubeletConfig(cfg *Config, path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubelet config: %w", err)
	}
	var kc kubeletConfiguration
	if err := yaml.Unmarshal(b, &kc); err != nil {
		return nil, fmt.Errorf("kubelet config %s: %w", path, err)
	}
	if kc.Kind != "KubeletConfiguration" {
		return nil, fmt.Errorf("kubelet config %s: kind %q, want KubeletConfiguration", path, kc.Kind)
	}
	var notes []string
	if kc.StaticPodPath != "" {
		cfg.ManifestDir = kc.StaticPodPath
		notes = append(notes, fmt.Sprintf("%s: staticPodPath %s is the manifest directory", path, kc.StaticPodPath))
	}
	if kc.StaticPodURL != "" {
		cfg.ManifestURL, cfg.ManifestURLHeaders = kc.StaticPodURL, kc.StaticPodURLHeader
		notes = append(notes, fmt.Sprintf("%s: staticPodURL %s is the manifest URL", path, kc.StaticPodURL))
	}
	if kc.HTTPCheckFrequency != "" {
		if _, err := time.ParseDuration(kc.HTTPCheckFrequency); err != nil {
			return nil, fmt.Errorf("kubelet config %s: httpCheckFrequency: %w", path, err)
		}
		cfg.ManifestURLInterval = kc.HTTPCheckFrequency
	}
	if err := cfg.checkURL(); err != nil {
		return nil, fmt.Errorf("kubelet config %s: %w", path, err)
	}
	if kc.ReadOnlyPort != 0 {
		cfg.ReadOnlyPort = kc.ReadOnlyPort
		notes = append(notes, fmt.Sprintf("%s: readOnlyPort %d serves podunit's read-only API (podunit-status.service)", path, kc.ReadOnlyPort))
	}
	if kc.ContainerRuntimeEndpoint != "" {
		endpoint, err := kubeletEndpoint(kc.ContainerRuntimeEndpoint)
		if err != nil {
			return nil, fmt.Errorf("kubelet config %s: containerRuntimeEndpoint: %w", path, err)
		}
		cfg.CRIEndpoint = endpoint
		notes = append(notes, fmt.Sprintf("%s: containerRuntimeEndpoint %s is the runtime podunit uses", path, endpoint))
	}
	switch a := kc.Address; {
	case a == "":
	case net.ParseIP(a) == nil:
		return nil, fmt.Errorf("kubelet config %s: address: %q: must be an IP address", path, a)
	case cfg.ReadOnlyAddress == "":
		cfg.ReadOnlyAddress = a
		notes = append(notes, fmt.Sprintf("%s: address %s is where readOnlyPort listens", path, a))
	case cfg.ReadOnlyAddress != a:
		notes = append(notes, fmt.Sprintf("%s: address %s is not used: config.yaml's readOnlyAddress %s is", path, a, cfg.ReadOnlyAddress))
	}
	switch kd := kc.ClusterDomain; {
	case kd == "":
	case cfg.ClusterDomain == "":
		cfg.ClusterDomain = kd
		if _, err := cfg.services(); err != nil {
			return nil, fmt.Errorf("kubelet config %s: %w", path, err)
		}
		notes = append(notes, fmt.Sprintf("%s: clusterDomain %s is the domain of the Services' names", path, kd))
	case cfg.ClusterDomain != kd:
		notes = append(notes, fmt.Sprintf("%s: clusterDomain %s is not used: config.yaml's clusterDomain %s is", path, kd, cfg.ClusterDomain))
	}
	if kc.ImageCredentialProviderConfigPath != "" {
		cfg.ImageCredentialProviderConfigPath, cfg.ImageCredentialProviderBinDir = kc.ImageCredentialProviderConfigPath, kc.ImageCredentialProviderBinDir
		notes = append(notes, fmt.Sprintf("%s: the credential provider plugins of %s (in %s) give pulls their credentials", path, kc.ImageCredentialProviderConfigPath, kc.ImageCredentialProviderBinDir))
	}
	var all map[string]any
	if yaml.Unmarshal(b, &all) == nil {
		var other []string
		for k := range all {
			if !kubeletUsed[k] {
				other = append(other, k)
			}
		}
		sort.Strings(other)
		if len(other) > 0 {
			notes = append(notes, fmt.Sprintf("%s: keys that do not apply to podunit: %v", path, other))
		}
	}
	return notes, nil
}

// kubeletEndpoint is a kubelet's containerRuntimeEndpoint as a CRI endpoint
// podunit's client takes: unix:///path, or a bare absolute path, which the
// kubelet still reads as a unix socket.
func kubeletEndpoint(e string) (string, error) {
	if strings.HasPrefix(e, "/") {
		e = "unix://" + e
	}
	if path, ok := strings.CutPrefix(e, "unix://"); !ok || !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("%q: %w", e, criclient.ErrEndpoint)
	}
	return e, nil
}
