package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/atomicfile"
)

// DefaultProvidersPath is where podunit sync writes the kubelet credential
// provider configuration it was given (imageCredentialProviderConfigPath),
// as JSON, with the plugins' directory: what podshim, the hand-offs and
// auto-update read.
const DefaultProvidersPath = "/run/podunit/credential-providers.json"

// Providers are the kubelet's credential provider plugins
// (CredentialProviderConfig, kubelet.config.k8s.io/v1): executables in
// BinDir that, given an image on stdin, print the credentials to pull it
// with. podunit runs them as the kubelet does, without its cache: a plugin
// runs at each pull that needs it.
type Providers struct {
	BinDir    string     `json:"binDir"`
	Providers []Provider `json:"providers"`
}

// Provider is one plugin, as the kubelet's configuration names it.
type Provider struct {
	Name                 string   `json:"name"`
	MatchImages          []string `json:"matchImages"`
	DefaultCacheDuration string   `json:"defaultCacheDuration,omitempty"`
	APIVersion           string   `json:"apiVersion"`
	Args                 []string `json:"args,omitempty"`
	Env                  []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"env,omitempty"`
}

// Check checks a configuration as the kubelet does at its start.
func (p *Providers) Check() error {
	if len(p.Providers) > 0 && !filepath.IsAbs(p.BinDir) {
		return fmt.Errorf("imageCredentialProviderBinDir: %q: must be an absolute path", p.BinDir)
	}
	for i, pr := range p.Providers {
		field := fmt.Sprintf("providers[%d]", i)
		switch {
		case pr.Name == "" || strings.ContainsAny(pr.Name, "/\\") || pr.Name == "." || pr.Name == "..":
			return fmt.Errorf("%s.name: %q: the name of an executable in %s", field, pr.Name, p.BinDir)
		case len(pr.MatchImages) == 0:
			return fmt.Errorf("%s.matchImages: required", field)
		}
		switch pr.APIVersion {
		case "credentialprovider.kubelet.k8s.io/v1", "credentialprovider.kubelet.k8s.io/v1beta1", "credentialprovider.kubelet.k8s.io/v1alpha1":
		default:
			return fmt.Errorf("%s.apiVersion: %q: must be credentialprovider.kubelet.k8s.io/v1 (or v1beta1, v1alpha1)", field, pr.APIVersion)
		}
		for _, m := range pr.MatchImages {
			if _, err := path.Match(m, ""); err != nil {
				return fmt.Errorf("%s.matchImages: %q: %w", field, m, err)
			}
		}
	}
	return nil
}

// ReadProviders reads what sync wrote; nil when there are no plugins.
func ReadProviders(path string) (*Providers, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p Providers
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}

// WriteProviders writes p for podshim and the hand-offs (root only: a
// provider's env may hold secrets); nil removes the file.
func WriteProviders(path string, p *Providers) error {
	if p == nil || len(p.Providers) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}

// pluginTimeout bounds a plugin's run, as the kubelet's.
const pluginTimeout = time.Minute

// Credentials runs the plugins whose matchImages match image, in order,
// and returns the credentials they give for it.
func (p *Providers) Credentials(ctx context.Context, image string) []*runtimeapi.AuthConfig {
	if p == nil {
		return nil
	}
	var out []*runtimeapi.AuthConfig
	for _, pr := range p.Providers {
		if !pr.matches(image) {
			continue
		}
		out = append(out, p.run(ctx, pr, image)...)
	}
	return out
}

// run runs one plugin; a plugin that fails gives nothing (the pull then
// says why it was refused, as with the kubelet).
func (p *Providers) run(ctx context.Context, pr Provider, image string) []*runtimeapi.AuthConfig {
	ctx, cancel := context.WithTimeout(ctx, pluginTimeout)
	defer cancel()
	req, _ := json.Marshal(map[string]string{"apiVersion": pr.APIVersion, "kind": "CredentialProviderRequest", "image": image})
	cmd := exec.CommandContext(ctx, filepath.Join(p.BinDir, pr.Name), pr.Args...)
	cmd.Stdin = bytes.NewReader(req)
	cmd.Env = os.Environ()
	for _, e := range pr.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	out, err := cmd.Output()
	if err != nil {
		return nil
	}
	var resp struct {
		Kind string `json:"kind"`
		Auth map[string]struct {
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"auth"`
	}
	if json.Unmarshal(out, &resp) != nil || resp.Kind != "CredentialProviderResponse" {
		return nil
	}
	host, repo := Of(image)
	type match struct {
		n    int
		auth *runtimeapi.AuthConfig
	}
	var matches []match
	for key, a := range resp.Auth {
		if !matchImage(key, host, repo) {
			continue
		}
		matches = append(matches, match{len(key), &runtimeapi.AuthConfig{Username: a.Username, Password: a.Password}})
	}
	// The most specific key first.
	for i := range matches {
		for j := i + 1; j < len(matches); j++ {
			if matches[j].n > matches[i].n {
				matches[i], matches[j] = matches[j], matches[i]
			}
		}
	}
	auths := make([]*runtimeapi.AuthConfig, len(matches))
	for i, m := range matches {
		auths[i] = m.auth
	}
	return auths
}

func (pr Provider) matches(image string) bool {
	host, repo := Of(image)
	for _, m := range pr.MatchImages {
		if matchImage(m, host, repo) {
			return true
		}
	}
	return false
}

// matchImage matches an image's registry host and repository against a
// matchImages pattern, as the kubelet does: the host's dot-separated parts
// each match a glob part (so *.example.com matches a.example.com, not
// example.com), a port must be the same, and the pattern's path, if any, is
// a prefix of the repository's.
func matchImage(pattern, host, repo string) bool {
	pattern = strings.TrimPrefix(strings.TrimPrefix(pattern, "https://"), "http://")
	phost, ppath, _ := strings.Cut(pattern, "/")
	phostname, pport, _ := strings.Cut(phost, ":")
	hostname, port, _ := strings.Cut(host, ":")
	if pport != port {
		return false
	}
	pparts, parts := strings.Split(phostname, "."), strings.Split(hostname, ".")
	if len(pparts) != len(parts) {
		return false
	}
	for i := range parts {
		if ok, _ := path.Match(pparts[i], parts[i]); !ok {
			return false
		}
	}
	return ppath == "" || repo == ppath || strings.HasPrefix(repo, strings.TrimSuffix(ppath, "/")+"/")
}
