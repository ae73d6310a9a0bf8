package main

import (
	"fmt"
	"os"
	"sort"
	"time"

	"sigs.k8s.io/yaml"
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
	ClusterDomain      string              `json:"clusterDomain"`

	ImageCredentialProviderConfigPath string `json:"imageCredentialProviderConfigPath"`
	ImageCredentialProviderBinDir     string `json:"imageCredentialProviderBinDir"`
}

// kubeletUsed are the keys podunit takes from a KubeletConfiguration; every
// other key is reported (with -v) as not applying to podunit.
var kubeletUsed = map[string]bool{"kind": true, "apiVersion": true, "staticPodPath": true, "staticPodURL": true,
	"staticPodURLHeader": true, "httpCheckFrequency": true, "readOnlyPort": true, "clusterDomain": true,
	"imageCredentialProviderConfigPath": true, "imageCredentialProviderBinDir": true}

// applyKubeletConfig reads a KubeletConfiguration and takes its static pod
// sources over cfg's: staticPodPath becomes manifestDir (a directory or one
// file), staticPodURL, staticPodURLHeader and httpCheckFrequency become
// manifestURL, manifestURLHeaders and manifestURLInterval, and its
// clusterDomain is the Services' unless config.yaml names one. It returns notes
// on what it did and on the keys that do not apply.
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
