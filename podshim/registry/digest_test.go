package registry

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A registry with a CA of its own (trusted through a hosts.toml, as
// containerd's) and token authentication, as the distribution registry
// with a token server: the digest comes with the right credentials only.
func TestDigestWithTokenAuth(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/token":
			if u, p, ok := r.BasicAuth(); !ok || u != "bot" || p != "s3cret" || r.URL.Query().Get("scope") != "repository:team/app:pull" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"token": "t0k"})
		case r.URL.Path == "/v2/team/app/manifests/1" && r.Method == http.MethodHead:
			if r.Header.Get("Authorization") != "Bearer t0k" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="test",scope="repository:team/app:pull"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if !strings.Contains(r.Header.Get("Accept"), "application/vnd.oci.image.index.v1+json") {
				t.Errorf("Accept %q", r.Header.Get("Accept"))
			}
			w.Header().Set("Docker-Content-Digest", digest)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	certs := t.TempDir()
	ca := filepath.Join(certs, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	os.MkdirAll(filepath.Join(certs, host), 0o755)
	os.WriteFile(filepath.Join(certs, host, "hosts.toml"), []byte("server = \"https://"+host+"\"\n[host.\"https://"+host+"\"]\n  ca = \""+ca+"\"\n"), 0o644)
	r := Resolver{CertsDirs: []string{certs}}
	image := host + "/team/app:1"
	got, err := r.Digest(context.Background(), image, []*runtimeapi.AuthConfig{{Username: "x", Password: "wrong"}, {Username: "bot", Password: "s3cret"}})
	if err != nil || got != digest {
		t.Fatalf("Digest = %q, %v; want %s", got, err, digest)
	}
	if _, err := r.Digest(context.Background(), image, nil); err == nil {
		t.Error("anonymous: got a digest from a registry that wants credentials")
	}
	if _, err := (Resolver{CertsDirs: []string{t.TempDir()}}).Digest(context.Background(), image, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an untrusted CA: %v", err)
	}
	if got, _ := r.Digest(context.Background(), host+"/team/app@"+digest, nil); got != digest {
		t.Errorf("a digest reference: %q", got)
	}
}
