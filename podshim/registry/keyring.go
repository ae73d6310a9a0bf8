// Package registry is what podunit knows of image registries: which
// credentials go with an image (a pod's image pull Secrets, then the
// node's auth file), pulling through the CRI with each in turn as the
// kubelet does, telling a registry that cannot be reached from one that
// refuses, and asking a registry for the digest a tag names now. podshim,
// the hand-offs and auto-update share it.
package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/podspec"
)

// DefaultAuthFile is the node's registry credentials, in the
// containers-auth.json format podman and skopeo read and `podman login
// --authfile` writes: {"auths": {"registry:5000": {"auth": "base64"}}}.
const DefaultAuthFile = "/etc/podunit/auth.json"

// Keyring holds the credentials that may go with a pull.
type Keyring struct {
	// Secrets are the auths of a pod's image pull Secrets, in the pod's
	// order.
	Secrets []map[string]podspec.DockerAuth
	// Node are the node's auths (DefaultAuthFile), tried after the pod's.
	Node map[string]podspec.DockerAuth
	// Providers are the kubelet's credential provider plugins, run for an
	// image they match, tried after the node's auths.
	Providers *Providers
}

// Node are the node's own credentials: its auth file and its credential
// provider plugins.
type Node struct {
	Auths     map[string]podspec.DockerAuth
	Providers *Providers
}

// ReadNode reads the node's credentials: the auth file (DefaultAuthFile)
// and the plugins sync configured (DefaultProvidersPath). What cannot be
// read is left out, and said in the error.
func ReadNode(authFile, providersPath string) (Node, error) {
	auths, err1 := ReadAuthFile(authFile)
	var providers *Providers
	var err2 error
	if providersPath != "" {
		providers, err2 = ReadProviders(providersPath)
	}
	return Node{Auths: auths, Providers: providers}, errors.Join(err1, err2)
}

// PodKeyring is the keyring of a pod: its image pull Secrets (from the
// objects of its data file), then the node's credentials. A Secret that is
// missing or unreadable adds nothing: sync checked them.
func PodKeyring(pod *corev1.Pod, objects podspec.Objects, node Node) Keyring {
	k := Keyring{Node: node.Auths, Providers: node.Providers}
	for _, ref := range pod.Spec.ImagePullSecrets {
		secret := objects.Secret(ref.Name)
		if secret == nil {
			continue
		}
		if auths, err := podspec.DockerConfig(secret); err == nil {
			k.Secrets = append(k.Secrets, auths)
		}
	}
	return k
}

// ReadAuthFile reads a containers-auth.json file. A file that does not
// exist holds no credentials; one that is not readable or not JSON is an
// error naming it.
func ReadAuthFile(path string) (map[string]podspec.DockerAuth, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f struct {
		Auths map[string]podspec.DockerAuth `json:"auths"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: not a containers-auth.json file: %w", path, err)
	}
	return f.Auths, nil
}

// Credentials are the credentials for image, as the kubelet's keyring
// gives them: the pod's Secrets' entries that match its registry (and
// path), the most specific first, each Secret in the pod's order; then the
// node's, the same way; then what the credential provider plugins that
// match it give. None: pull without.
func (k Keyring) Credentials(image string) []*runtimeapi.AuthConfig {
	host, path := Of(image)
	out := matching(host, path, k.Secrets)
	out = append(out, matching(host, path, []map[string]podspec.DockerAuth{k.Node})...)
	return append(out, k.Providers.Credentials(context.Background(), image)...)
}

func matching(host, path string, sets []map[string]podspec.DockerAuth) []*runtimeapi.AuthConfig {
	type match struct {
		prefix int
		auth   *runtimeapi.AuthConfig
	}
	var matches []match
	for _, auths := range sets {
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

// DockerHub is the registry of images named without one.
const DockerHub = "docker.io"

// Of splits an image reference into its registry host and repository path:
// "registry.example:5000/team/app:1" → registry.example:5000, team/app;
// "nginx" → docker.io, library/nginx.
func Of(image string) (host, path string) {
	ref, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i] // the tag
	}
	first, rest, ok := strings.Cut(ref, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		if !ok {
			return DockerHub, "library/" + ref
		}
		return DockerHub, ref
	}
	return first, rest
}

// Tag is the tag of an image reference: "latest" when it names none, ""
// when it names a digest.
func Tag(image string) string {
	if strings.Contains(image, "@") {
		return ""
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[i+1:]
	}
	return "latest"
}

// key2 normalizes a docker config's registry key: a scheme, Docker Hub's
// legacy index URLs and a trailing /v1/ or /v2/ go.
func registryKey(key string) (host, path string) {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(key, "/"), "/v1"), "/v2")
	host, path, _ = strings.Cut(key, "/")
	switch host {
	case "index.docker.io", "registry-1.docker.io":
		host = DockerHub
	}
	return host, path
}
