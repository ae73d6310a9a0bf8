package podshim

import (
	"encoding/base64"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/podspec"
)

// pullCredentials are the credentials of the pod's image pull Secrets for
// image, best match first (the longest registry/path prefix), each Secret
// in the pod's order, as the kubelet's keyring gives them. None: pull
// without.
func (s *Shim) pullCredentials(image string) []*runtimeapi.AuthConfig {
	host, path := registryOf(image)
	type match struct {
		prefix int
		auth   *runtimeapi.AuthConfig
	}
	var matches []match
	for _, ref := range s.pod.Spec.ImagePullSecrets {
		secret := s.cfg.Objects.Secret(ref.Name)
		if secret == nil {
			continue
		}
		auths, err := podspec.DockerConfig(secret)
		if err != nil {
			continue // sync checked it
		}
		for key, a := range auths {
			kh, kp := registryKey(key)
			if kh != host || (kp != "" && path != kp && !strings.HasPrefix(path, kp+"/")) {
				continue
			}
			user, pass := a.Username, a.Password
			if a.Auth != "" && user == "" {
				if b, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
					user, pass, _ = strings.Cut(string(b), ":")
				}
			}
			// No ServerAddress, as the kubelet sends none: containerd
			// compares it, parsed as a URL, with the registry's host, and
			// "host:port" does not parse as one.
			matches = append(matches, match{len(kh) + len(kp), &runtimeapi.AuthConfig{
				Username: user, Password: pass,
				IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
			}})
		}
	}
	slices.SortStableFunc(matches, func(a, b match) int { return b.prefix - a.prefix })
	out := make([]*runtimeapi.AuthConfig, len(matches))
	for i, m := range matches {
		out[i] = m.auth
	}
	return out
}

// dockerHub is the registry of images named without one.
const dockerHub = "docker.io"

// registryOf splits an image reference into its registry host and the
// repository path: "registry.example:5000/team/app:1" → registry.example:5000,
// team/app; "nginx" → docker.io, library/nginx.
func registryOf(image string) (host, path string) {
	ref, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i] // the tag
	}
	first, rest, ok := strings.Cut(ref, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		if !ok {
			return dockerHub, "library/" + ref
		}
		return dockerHub, ref
	}
	return first, rest
}

// registryKey normalizes a docker config's registry key: a scheme, Docker
// Hub's legacy index URLs and a trailing /v1/ or /v2/ go.
func registryKey(key string) (host, path string) {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(key, "/"), "/v1"), "/v2")
	host, path, _ = strings.Cut(key, "/")
	switch host {
	case "index.docker.io", "registry-1.docker.io":
		host = dockerHub
	}
	return host, path
}
