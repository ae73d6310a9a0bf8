package registry

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/podshim/podspec"
)

func TestOf(t *testing.T) {
	for image, want := range map[string][3]string{
		"nginx":                                 {"docker.io", "library/nginx", "latest"},
		"nginx:1.25":                            {"docker.io", "library/nginx", "1.25"},
		"bitnami/redis:7":                       {"docker.io", "bitnami/redis", "7"},
		"registry.example:5000/team/app:1":      {"registry.example:5000", "team/app", "1"},
		"registry.example:5000/team/app":        {"registry.example:5000", "team/app", "latest"},
		"localhost/podunit/busybox:1.35":        {"localhost", "podunit/busybox", "1.35"},
		"registry.example/app@sha256:0123abcd":  {"registry.example", "app", ""},
		"registry.example:5000/app:1@sha256:00": {"registry.example:5000", "app", ""},
	} {
		if h, p := Of(image); h != want[0] || p != want[1] {
			t.Errorf("Of(%q) = %s, %s; want %s, %s", image, h, p, want[0], want[1])
		}
		if tag := Tag(image); tag != want[2] {
			t.Errorf("Tag(%q) = %q, want %q", image, tag, want[2])
		}
	}
}

// The pod's Secrets whose registry (and path) match come first, the most
// specific first; the node's auth file after them; another registry's
// entries never.
func TestKeyring(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("bot:s3cret"))
	pod := &corev1.Pod{Spec: corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "team"}, {Name: "missing"}}}}
	objects := podspec.Objects{Secrets: []corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{
			corev1.DockerConfigJsonKey: []byte(`{"auths":{"https://registry.example:5000/v1/":{"auth":"` + auth + `"},"other.example":{"username":"x","password":"y"}}}`)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team"}, Type: corev1.SecretTypeDockercfg, Data: map[string][]byte{
			corev1.DockerConfigKey: []byte(`{"registry.example:5000/team":{"username":"team","password":"pw"}}`)}},
	}}
	dir := t.TempDir()
	authFile := filepath.Join(dir, "auth.json")
	os.WriteFile(authFile, []byte(`{"auths":{"registry.example:5000":{"auth":"`+base64.StdEncoding.EncodeToString([]byte("node:pw2"))+`"}}}`), 0o600)
	node, err := ReadAuthFile(authFile)
	if err != nil {
		t.Fatal(err)
	}
	k := PodKeyring(pod, objects, Node{Auths: node})
	var users []string
	for _, c := range k.Credentials("registry.example:5000/team/app:1") {
		users = append(users, c.Username+":"+c.Password)
	}
	if want := []string{"team:pw", "bot:s3cret", "node:pw2"}; !slices.Equal(users, want) {
		t.Errorf("credentials %v, want %v", users, want)
	}
	if c := k.Credentials("docker.io/library/nginx"); len(c) != 0 {
		t.Errorf("credentials for another registry: %v", c)
	}
	if none, err := ReadAuthFile(filepath.Join(dir, "absent.json")); none != nil || err != nil {
		t.Errorf("a missing auth file: %v, %v; want no credentials and no error", none, err)
	}
	os.WriteFile(authFile, []byte("{"), 0o600)
	if _, err := ReadAuthFile(authFile); err == nil {
		t.Error("a broken auth file was read without an error")
	}
}

func TestUnreachable(t *testing.T) {
	for msg, want := range map[string]bool{
		`failed to pull and unpack image "127.0.0.1:5443/app:1": failed to resolve reference: failed to do request: Head "https://127.0.0.1:5443/v2/app/manifests/1": dial tcp 127.0.0.1:5443: connect: connection refused`: true,
		`failed to resolve reference "registry.example/app:1": failed to do request: Head "https://registry.example/v2/app/manifests/1": dial tcp: lookup registry.example on 10.0.0.1:53: no such host`:                    true,
		`pinging container registry registry.example: Get "https://registry.example/v2/": dial tcp 10.1.1.1:443: i/o timeout`:                                                                                               true,
		`failed to resolve reference "127.0.0.1:5443/app:1": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`:                          false,
		`failed to resolve reference "127.0.0.1:5443/app:2": 127.0.0.1:5443/app:2: not found`:                                                                                                                               false,
		`unexpected status from HEAD request to https://127.0.0.1:5443/v2/app/manifests/1: 401 Unauthorized`:                                                                                                                false,
	} {
		if got := Unreachable(errors.New(msg)); got != want {
			t.Errorf("Unreachable(%q) = %v, want %v", msg, got, want)
		}
	}
}

func TestMatchImage(t *testing.T) {
	for _, tc := range []struct {
		pattern, image string
		want           bool
	}{
		{"*.dkr.ecr.*.amazonaws.com", "123.dkr.ecr.eu-west-1.amazonaws.com/app:1", true},
		{"*.example.com", "example.com/app", false},
		{"*.example.com", "a.example.com/app", true},
		{"registry.example:5000", "registry.example:5000/app:1", true},
		{"registry.example:5000", "registry.example/app:1", false},
		{"registry.example/team", "registry.example/team/app:1", true},
		{"registry.example/team", "registry.example/teams/app:1", false},
		{"docker.io", "nginx", true},
	} {
		host, repo := Of(tc.image)
		if got := matchImage(tc.pattern, host, repo); got != tc.want {
			t.Errorf("matchImage(%q, %q) = %v, want %v", tc.pattern, tc.image, got, tc.want)
		}
	}
}

// A credential provider plugin gets the kubelet's request on stdin and its
// credentials go with the pull, after the node's auth file.
func TestCredentialProviderPlugin(t *testing.T) {
	bin := t.TempDir()
	script := `#!/bin/sh
read -r req
case "$req" in *'"kind":"CredentialProviderRequest"'*) ;; *) exit 1 ;; esac
case "$req" in *'"image":"registry.example:5000/app:1"'*) ;; *) exit 1 ;; esac
echo '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Registry","auth":{"registry.example:5000":{"username":"'"$USER_NAME"'","password":"pw"}}}'
`
	os.WriteFile(filepath.Join(bin, "fake-provider"), []byte(script), 0o755)
	p := &Providers{BinDir: bin, Providers: []Provider{{Name: "fake-provider", MatchImages: []string{"registry.example:5000"},
		APIVersion: "credentialprovider.kubelet.k8s.io/v1"}}}
	p.Providers[0].Env = append(p.Providers[0].Env, struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}{"USER_NAME", "plugin"})
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "providers.json")
	if err := WriteProviders(path, p); err != nil {
		t.Fatal(err)
	}
	read, err := ReadProviders(path)
	if err != nil {
		t.Fatal(err)
	}
	k := Keyring{Node: map[string]podspec.DockerAuth{"registry.example:5000": {Username: "node", Password: "x"}}, Providers: read}
	var users []string
	for _, c := range k.Credentials("registry.example:5000/app:1") {
		users = append(users, c.Username)
	}
	if want := []string{"node", "plugin"}; !slices.Equal(users, want) {
		t.Errorf("credentials of %v, want %v", users, want)
	}
	if c := k.Credentials("other.example/app:1"); len(c) != 0 {
		t.Errorf("a plugin ran for an image it does not match: %v", c)
	}
	bad := &Providers{BinDir: bin, Providers: []Provider{{Name: "../x", MatchImages: []string{"a"}, APIVersion: "credentialprovider.kubelet.k8s.io/v1"}}}
	if err := bad.Check(); err == nil {
		t.Error("a provider name with a path was accepted")
	}
}
