package oracle

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/podunit/podunit/generator"
)

var update = flag.Bool("update", false, "rewrite docs/oracle.md from this run, keeping each row's reason")

// corpora are podunit's manifests, by glob from the repository's root.
var corpora = []string{
	"generator/testdata/valid/*.yaml",
	"generator/testdata/valid/*.json",
	"generator/testdata/services/*.yaml",
	"generator/testdata/invalid/*.yaml",
	"generator/quadlet/testdata/*/*.yaml",
	"generator/quadlet/testdata/*/*/*.yaml",
	"test/testdata/real/*.yaml",
	"test/testdata/bad/*.yaml",
}

// Every document of the corpora, through podunit and through a real
// kube-apiserver's dry-run create with strict field validation: the
// differences are exactly those docs/oracle.md lists, each with a reason.
func TestAPIServerParity(t *testing.T) {
	bin := os.Getenv("PODUNIT_K8S_BIN")
	if bin == "" {
		t.Skip("PODUNIT_K8S_BIN is not set: make test-oracle builds etcd and kube-apiserver (test/k8s/build.sh) and sets it")
	}
	ctx := t.Context()
	judge := startAPIServer(ctx, t, bin)

	t.Chdir("../..")
	var files []string
	for _, g := range corpora {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) < 150 {
		t.Fatalf("%d corpus files, want at least 150: are the globs right?", len(files))
	}
	type judged struct {
		doc Document
		pv  Verdict
	}
	var all []judged
	namespaces := map[string]bool{}
	reader := generator.Reader{Node: generator.Node{Name: "node1", Labels: map[string]string{"kubernetes.io/arch": "amd64"}}}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		docs := Split(file, data)
		verdicts, err := Podunit(reader, file, data, docs, generator.Source{Dir: filepath.Dir(file)})
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range docs {
			all = append(all, judged{d, verdicts[i]})
			for _, ns := range docNamespaces(d.Data) {
				namespaces[ns] = true
			}
		}
	}
	// Namespace documents first, while their namespaces do not exist
	// yet; then the namespaces the others are in, for real.
	server := make([]ServerVerdict, len(all))
	for pass := range 2 {
		if pass == 1 {
			for ns := range namespaces {
				if err := judge.EnsureNamespace(ctx, ns); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i, j := range all {
			if isNamespace(j.doc.Data) != (pass == 0) {
				continue
			}
			sv, err := judge.Create(ctx, j.doc.Data)
			if err != nil {
				t.Fatalf("%s: %v", j.doc.ID(), err)
			}
			server[i] = sv
		}
	}

	table := Table{Outcomes: map[string]map[string]int{}}
	var notices, unknown int // how many of each the server judged
	for i, j := range all {
		sv := server[i]
		notices += len(j.pv.Notices)
		unknown += len(j.pv.UnknownFields())
		corpus := filepath.Dir(j.doc.File)
		if table.Outcomes[corpus] == nil {
			table.Outcomes[corpus] = map[string]int{}
		}
		switch {
		case j.pv.Accepted() != sv.Accepted():
			table.Outcomes[corpus]["differ"]++
		case sv.Accepted():
			table.Outcomes[corpus]["both accept"]++
		default:
			table.Outcomes[corpus]["both refuse"]++
		}
		table.Findings = append(table.Findings, Compare(j.doc, j.pv, sv)...)
	}

	const path = "docs/oracle.md"
	reasons := map[string]string{}
	if f, err := os.Open(path); err == nil {
		reasons, err = ParseTable(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	} else if !*update {
		t.Fatalf("%v (make test-oracle ORACLE_FLAGS=-update writes it)", err)
	}
	seen := map[string]bool{}
	for i, f := range table.Findings {
		seen[f.Key()] = true
		reason, listed := reasons[f.Key()]
		table.Findings[i].Reason = reason
		switch {
		case !listed && !*update:
			t.Errorf("%s: a difference %s does not list:\n  podunit: %s\n  API server: %s\n(fix podunit, or -update and write the reason)", f.Key(), path, f.Podunit, f.Server)
		case reason == "":
			t.Errorf("%s: no reason in %s (write why the difference stands, or fix podunit)", f.Key(), path)
		}
	}
	for key := range reasons {
		if !seen[key] && !*update {
			t.Errorf("%s: listed in %s but no longer a difference (-update removes it)", key, path)
		}
	}
	if *update {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := RenderTable(f, table); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if notices < 50 || unknown < 3 {
		t.Errorf("%d notices and %d unknown fields judged: the corpora hold more (typos in generator/testdata/invalid, notices in test/testdata/real)", notices, unknown)
	}
	t.Logf("%d documents of %d files, %d notices, %d unknown fields; %d differences", len(all), len(files), notices, unknown, len(table.Findings))
}

// isNamespace tells whether a document is a Namespace.
func isNamespace(doc []byte) bool {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return false
	}
	var obj struct{ APIVersion, Kind string }
	return json.Unmarshal(js, &obj) == nil && obj.APIVersion == "v1" && obj.Kind == "Namespace"
}

// docNamespaces are the namespaces a document's objects are in.
func docNamespaces(doc []byte) []string {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil
	}
	var obj struct {
		Metadata struct{ Namespace string } `json:"metadata"`
		Items    []struct {
			Metadata struct{ Namespace string } `json:"metadata"`
		} `json:"items"`
	}
	if json.Unmarshal(js, &obj) != nil {
		return nil
	}
	var out []string
	if obj.Metadata.Namespace != "" {
		out = append(out, obj.Metadata.Namespace)
	}
	for _, it := range obj.Items {
		if it.Metadata.Namespace != "" {
			out = append(out, it.Metadata.Namespace)
		}
	}
	return out
}

// startAPIServer starts etcd and kube-apiserver from bin on loopback ports
// of their own, with a PKI made here and one static token (no other
// authentication, every request allowed), and stops both when the test
// ends. The ServiceAccount admission plugin is off: no controller manager
// creates the namespaces' default ServiceAccount.
func startAPIServer(ctx context.Context, t *testing.T, bin string) *Judge {
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := testPKI()
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	saDER, err := x509.MarshalPKCS8PrivateKey(saKey)
	if err != nil {
		t.Fatal(err)
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	token := fmt.Sprintf("%x", must(randomBytes(16)))
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("ca.crt", caPEM)
	crt, key := write("apiserver.crt", certPEM), write("apiserver.key", keyPEM)
	saKeyFile := write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: saDER}))
	saPubFile := write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}))
	tokens := write("tokens.csv", []byte(token+",oracle,oracle,system:masters\n"))

	etcdClient, etcdPeer, secure := freePort(t), freePort(t), freePort(t)
	client := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peer := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	etcdExited := start(t, dir, filepath.Join(bin, "etcd"),
		"--name=oracle", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=oracle="+peer, "--log-level=warn")
	apiserverExited := start(t, dir, filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+client,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(secure),
		"--tls-cert-file="+crt, "--tls-private-key-file="+key,
		"--token-auth-file="+tokens, "--anonymous-auth=false", "--authorization-mode=AlwaysAllow",
		"--service-cluster-ip-range=10.96.0.0/12",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saPubFile, "--service-account-signing-key-file="+saKeyFile,
		"--disable-admission-plugins=ServiceAccount",
		"--endpoint-reconciler-type=none", // no kubernetes Service endpoint: 127.0.0.1 may not be one
		"--enable-priority-and-fairness=false", "--profiling=false")

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	j := &Judge{
		Base:   fmt.Sprintf("https://127.0.0.1:%d", secure),
		Token:  token,
		Client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		code, _, err := j.do(ctx, http.MethodGet, "/readyz", "", nil)
		if err == nil && code == http.StatusOK {
			return j
		}
		select {
		case <-etcdExited:
			log, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
			t.Fatalf("etcd exited; its log ends:\n%s", tail(log, 3000))
		case <-apiserverExited:
		case <-time.After(500 * time.Millisecond):
			if time.Now().Before(deadline) {
				continue
			}
		}
		log, _ := os.ReadFile(filepath.Join(dir, "kube-apiserver.log"))
		t.Fatalf("kube-apiserver not ready (last: %d, %v); its log ends:\n%s", code, err, tail(log, 3000))
	}
}

// start runs program with args, its output in dir, and stops it (by its
// pid) when the test ends; the channel is closed when it exits.
func start(t *testing.T, dir, program string, args ...string) <-chan struct{} {
	log, err := os.Create(filepath.Join(dir, filepath.Base(program)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(program, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
	return done
}

// testPKI makes a CA and a serving certificate for 127.0.0.1 it signs.
func testPKI() (caPEM, certPEM, keyPEM []byte) {
	caKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "podunit oracle CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER := must(x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey))
	caCert := must(x509.ParseCertificate(caDER))
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der := must(x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey))
	keyDER := must(x509.MarshalECPrivateKey(key))
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}

// freePort is a loopback TCP port free when asked.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(b []byte, n int) string {
	s := string(b)
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

// must is v, for calls that fail only when the machine is broken (no
// randomness).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
