//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/podshim"
)

// registry is Debian's docker-registry (the CNCF distribution registry) run
// in the test bed on 127.0.0.1 with TLS (a CA of the test's, which
// containerd trusts through its hosts.toml, CRI-O through
// /etc/containers/certs.d) and htpasswd authentication,
// holding the test bed's busybox image as private/busybox:1.
type registry struct {
	addr, dir string
	// stop stops the registry (a box that lost its network).
	stop func()
}

const (
	registryUser     = "bot"
	registryPassword = "e2e-canary-s3cret"
)

func startRegistry(t *testing.T) *registry {
	t.Helper()
	for _, tool := range []string{"docker-registry", "skopeo", "htpasswd", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make deps installs it): %v", tool, err)
		}
	}
	r := &registry{addr: "127.0.0.1:5443", dir: "/run/e2e-registry"}
	freshDir(t, r.dir)
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	if err := os.MkdirAll(filepath.Join(r.dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(r.dir, name) }
	run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=podunit e2e CA",
		"-keyout", p("ca.key"), "-out", p("ca.crt"))
	os.WriteFile(p("san.cnf"), []byte("subjectAltName=IP:127.0.0.1\n"), 0o600)
	run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", p("server.key"), "-out", p("server.csr"))
	run("openssl", "x509", "-req", "-in", p("server.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial",
		"-days", "1", "-extfile", p("san.cnf"), "-out", p("server.crt"))
	run("htpasswd", "-Bbc", p("htpasswd"), registryUser, registryPassword)
	config := fmt.Sprintf(`version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: %s}}
http:
  addr: %s
  secret: podunit-e2e
  tls: {certificate: %s, key: %s}
auth:
  htpasswd: {realm: podunit-e2e, path: %s}
`, p("data"), r.addr, p("server.crt"), p("server.key"), p("htpasswd"))
	os.WriteFile(p("config.yml"), []byte(config), 0o600)
	cmd := exec.Command("docker-registry", "serve", p("config.yml"))
	logf, _ := os.Create(p("registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stopped bool
	r.stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
			logf.Close()
		}
	}
	t.Cleanup(r.stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", r.addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p("registry.log"))
			t.Fatalf("the registry does not listen on %s:\n%s", r.addr, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if onCRIO() {
		// CRI-O (containers/image) trusts the CAs in the registry's
		// directory of /etc/containers/certs.d.
		certsd := filepath.Join("/etc/containers/certs.d", r.addr)
		os.MkdirAll(certsd, 0o755)
		t.Cleanup(func() { os.RemoveAll(certsd) })
		run("cp", p("ca.crt"), filepath.Join(certsd, "ca.crt"))
	} else {
		// containerd trusts the test's CA for this registry (config_path).
		hosts := filepath.Join("/run/containerd/certs.d", r.addr)
		os.MkdirAll(hosts, 0o755)
		t.Cleanup(func() { os.RemoveAll(hosts) })
		os.WriteFile(filepath.Join(hosts, "hosts.toml"), []byte(fmt.Sprintf("server = \"https://%s\"\n\n[host.\"https://%s\"]\n  ca = %q\n", r.addr, r.addr, p("ca.crt"))), 0o644)
	}
	// Push the test bed's busybox image, as a user would with skopeo.
	images := filepath.Join(os.Getenv("PODUNIT_TESTBED_DIR"), "images", "busybox.tar")
	certs := p("certs")
	os.MkdirAll(certs, 0o700)
	run("cp", p("ca.crt"), filepath.Join(certs, "ca.crt"))
	run("skopeo", "copy", "--dest-cert-dir", certs, "--dest-creds", registryUser+":"+registryPassword,
		"oci-archive:"+images, "docker://"+r.addr+"/private/busybox:1")
	return r
}

// dockerConfigJSON is what `kubectl create secret docker-registry` puts
// under .dockerconfigjson.
func dockerConfigJSON(server, user, password string) string {
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{server: map[string]string{
		"username": user, "password": password, "auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
	}}})
	return base64.StdEncoding.EncodeToString(b)
}

// imagePullSecrets against a real registry with TLS and authentication: a
// pod whose Secret holds the credentials pulls its image and runs; one
// without them cannot pull and says so in Kubernetes' words; the password
// never reaches the journal, the status API or a process's arguments.
func TestImagePullSecretsFromRegistry(t *testing.T) {
	r := startRegistry(t)
	image := r.addr + "/private/busybox:1"
	pod := func(name, secrets string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
%s  containers:
  - name: app
    image: %s
    imagePullPolicy: Always
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`, name, secrets, image)
	}
	begin := time.Now()
	writeManifest(t, "e2e-regcred.yaml", `apiVersion: v1
kind: Secret
metadata: {name: e2e-regcred}
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: `+dockerConfigJSON(r.addr, registryUser, registryPassword)+"\n---\n"+pod("e2e-private", "  imagePullSecrets: [{name: e2e-regcred}]\n"))
	writeManifest(t, "e2e-nocred.yaml", pod("e2e-nocred", ""))
	unit := waitActive(t, "default", "e2e-private")
	waitFor(t, "the pod without credentials waiting for its image", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", "e2e-nocred")
		if err != nil || len(st.Status.ContainerStatuses) == 0 || st.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, err
		}
		w := st.Status.ContainerStatuses[0].State.Waiting
		return w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff", nil
	})
	// The canary: the password appears nowhere a user or another process
	// could read it.
	places := map[string]string{
		"the pod's journal":  journal(t, unit, begin),
		"the sync's journal": journal(t, "podunit-sync.service", begin),
	}
	if out, err := exec.Command(podunitBin, "get", "pods", "-A", "-o", "yaml").Output(); err == nil {
		places["get pods -o yaml"] = string(out)
	}
	if out, err := exec.Command(podunitBin, "describe", "pod", "e2e-private").Output(); err == nil {
		places["describe"] = string(out)
	}
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range cmdlines {
		b, _ := os.ReadFile(c)
		places[c] += string(b)
	}
	props := unitProps(t, unit)
	places["the unit's properties"] = fmt.Sprint(props)
	for where, text := range places {
		if strings.Contains(text, registryPassword) {
			t.Errorf("the registry password is in %s", where)
		}
	}
}
