package registry

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CertsDirs are where registries' CA certificates are looked for, one
// directory a registry host ("registry.example:5000"): containerd's
// hosts directories (a hosts.toml's ca = …, or *.crt files), and podman's
// and docker's. A registry the runtime trusts this way is trusted by
// Digest too.
var CertsDirs = []string{"/etc/containerd/certs.d", "/run/containerd/certs.d", "/etc/containers/certs.d", "/etc/docker/certs.d"}

// Resolver asks registries which digest a tag names now, over the
// registry API (distribution-spec), with a pull's credentials.
type Resolver struct {
	// CertsDirs: nil is CertsDirs.
	CertsDirs []string
	// Timeout bounds each question; 0 is 30 s.
	Timeout time.Duration
}

// manifestTypes are what a HEAD of a tag accepts: an index (multi-platform)
// first, as the runtimes resolve a tag.
var manifestTypes = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

// Digest is the digest image's tag names in its registry now ("sha256:…"),
// asked with each of creds in turn (none: anonymously). The digest is what
// a pull of the tag resolves to, so it is in the pulled image's
// RepoDigests.
func (r Resolver) Digest(ctx context.Context, image string, creds []*runtimeapi.AuthConfig) (string, error) {
	host, repo := Of(image)
	tag := Tag(image)
	if tag == "" {
		_, d, _ := strings.Cut(image, "@")
		return d, nil // a digest names itself
	}
	client, err := r.client(host)
	if err != nil {
		return "", err
	}
	endpoint := host
	if host == DockerHub {
		endpoint = "registry-1.docker.io"
	}
	u := fmt.Sprintf("https://%s/v2/%s/manifests/%s", endpoint, repo, tag)
	if len(creds) == 0 {
		creds = []*runtimeapi.AuthConfig{nil}
	}
	var errs []error
	for _, c := range creds {
		d, err := r.head(ctx, client, u, repo, c)
		if err == nil {
			return d, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("%s: %w", image, errors.Join(errs...))
}

func (r Resolver) head(ctx context.Context, client *http.Client, u, repo string, cred *runtimeapi.AuthConfig) (string, error) {
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	authz := ""
	for try := 0; try < 2; try++ {
		resp, err := manifestRequest(ctx, client, http.MethodHead, u, authz)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			if d := resp.Header.Get("Docker-Content-Digest"); d != "" {
				return d, nil
			}
			return getDigest(ctx, client, u, authz)
		case resp.StatusCode == http.StatusUnauthorized && try == 0:
			if authz, err = authorize(ctx, client, resp.Header.Get("WWW-Authenticate"), repo, cred); err != nil {
				return "", err
			}
		default:
			return "", fmt.Errorf("HEAD %s: %s", u, resp.Status)
		}
	}
	return "", fmt.Errorf("HEAD %s: unauthorized", u)
}

// manifestRequest asks for a manifest, accepting every kind a tag may name.
func manifestRequest(ctx context.Context, client *http.Client, method, u, authz string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", manifestTypes)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	return client.Do(req)
}

// getDigest computes a manifest's digest from its body, for a registry
// that does not send Docker-Content-Digest.
func getDigest(ctx context.Context, client *http.Client, u, authz string) (string, error) {
	resp, err := manifestRequest(ctx, client, http.MethodGet, u, authz)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(resp.Body, 4<<20)); err != nil {
		return "", err
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil)), nil
}

// The patterns are compiled when first used: podshim, which imports this
// package for its keyring, never asks a registry for a digest.
var (
	challengeParam = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(\w+)="([^"]*)"`) })
	tomlCA         = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^\s*ca\s*=\s*(\[[^\]]*\]|"[^"]*")`) })
	quoted         = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`"([^"]*)"`) })
)

// authorize answers a registry's challenge: Basic with the credentials, or
// Bearer with a token from the challenge's realm (asked with them).
func authorize(ctx context.Context, client *http.Client, challenge, repo string, cred *runtimeapi.AuthConfig) (string, error) {
	scheme, params, _ := strings.Cut(challenge, " ")
	basic := ""
	if cred != nil && cred.Username != "" {
		basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(cred.Username+":"+cred.Password))
	}
	switch strings.ToLower(scheme) {
	case "basic":
		if basic == "" {
			return "", errors.New("the registry asks for credentials, and none match it")
		}
		return basic, nil
	case "bearer":
	default:
		return "", fmt.Errorf("the registry asks for %q authentication", scheme)
	}
	p := map[string]string{}
	for _, m := range challengeParam().FindAllStringSubmatch(params, -1) {
		p[m[1]] = m[2]
	}
	if cred != nil && cred.RegistryToken != "" {
		return "Bearer " + cred.RegistryToken, nil
	}
	q := url.Values{}
	if p["service"] != "" {
		q.Set("service", p["service"])
	}
	scope := p["scope"]
	if scope == "" {
		scope = "repository:" + repo + ":pull"
	}
	q.Set("scope", scope)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p["realm"]+"?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	if basic != "" {
		req.Header.Set("Authorization", basic)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token from %s: %s", p["realm"], resp.Status)
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil {
		return "", fmt.Errorf("token from %s: %w", p["realm"], err)
	}
	if tok.Token == "" {
		tok.Token = tok.AccessToken
	}
	return "Bearer " + tok.Token, nil
}

// client is an HTTP client that trusts the system's CAs and those
// configured for host.
func (r Resolver) client(host string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	dirs := r.CertsDirs
	if dirs == nil {
		dirs = CertsDirs
	}
	for _, d := range dirs {
		dir := filepath.Join(d, host)
		var files []string
		crts, _ := filepath.Glob(filepath.Join(dir, "*.crt"))
		files = append(files, crts...)
		if b, err := os.ReadFile(filepath.Join(dir, "hosts.toml")); err == nil {
			for _, m := range tomlCA().FindAllStringSubmatch(string(b), -1) {
				for _, q := range quoted().FindAllStringSubmatch(m[1], -1) {
					files = append(files, q[1])
				}
			}
		}
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil {
				pool.AppendCertsFromPEM(b)
			}
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: t, Timeout: 2 * time.Minute}, nil
}
