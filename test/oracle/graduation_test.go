package oracle

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/podunit/podunit/generator"
)

// graduates are the files of one podunit machine's manifest directory, as
// a user grows it: an app of several workloads behind Services (the
// guestbook, copied from kubernetes.io), a StatefulSet with its headless
// Service, a ConfigMap and a Secret with the pods that read them, a
// CronJob, and a pod as podunit's users write them (podunit.io
// annotations, a claim no manifest defines: podman's named volume).
var graduates = []string{
	"test/e2e/testdata/guestbook.yaml",
	"test/testdata/real/k8sio-statefulset-web.yaml",
	"test/testdata/real/k8sio-configmap-env.yaml",
	"test/testdata/real/k8sio-secret-definition.yaml",
	"test/testdata/real/k8sio-secret-volume.yaml",
	"test/testdata/real/k8sio-cronjob-hello.yaml",
	"test/testdata/real/podman-5-kube-generate-web.yaml",
	"test/testdata/real/podman-kube-play-configmap-web.yaml",
}

const podunitPod = `apiVersion: v1
kind: Pod
metadata:
  name: gated
  annotations:
    podunit.io/rollout-deadline: 30s
    podunit.io/min-ready-seconds: "3"
    podunit.io/after: default/web-0
spec:
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    command: ["sleep", "3600"]
    readinessProbe:
      exec: {command: ["true"]}
`

// A podunit manifest directory goes to a cluster unchanged: podunit runs
// it, and `kubectl apply --server-side -f DIR` onto a real API server
// accepts every object of it, which is then there (docs/graduation.md).
func TestGraduation(t *testing.T) {
	bin := os.Getenv("PODUNIT_K8S_BIN")
	if bin == "" {
		t.Skip("PODUNIT_K8S_BIN is not set: make test-oracle builds etcd, kube-apiserver and kubectl (test/k8s/build.sh) and sets it")
	}
	kubectl := filepath.Join(bin, "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("no kubectl in %s: make test-oracle builds it", bin)
	}
	ctx := t.Context()
	judge := startAPIServer(ctx, t, bin)

	dir := t.TempDir()
	var documents []object
	for _, f := range graduates {
		data, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		data = []byte(strings.ReplaceAll(string(data), "docker.io/library/busybox:latest", "localhost/podunit/busybox:1.35"))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		documents = append(documents, objects(t, f, data)...)
	}
	if err := os.WriteFile(filepath.Join(dir, "gated.yaml"), []byte(podunitPod), 0o644); err != nil {
		t.Fatal(err)
	}
	documents = append(documents, objects(t, "gated.yaml", []byte(podunitPod))...)

	// podunit runs the directory as it is.
	reader := generator.Reader{Node: generator.Node{Name: "node1", Labels: map[string]string{"kubernetes.io/arch": "amd64"}}}
	set, err := reader.Read(generator.Source{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Errors) > 0 || len(set.Pods) < 10 || len(set.Services) < 4 {
		t.Fatalf("podunit does not run the directory: %d pods, %d Services, errors: %v", len(set.Pods), len(set.Services), set.Errors)
	}

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: oracle, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: oracle, user: {token: %q}}]
contexts: [{name: oracle, context: {cluster: oracle, user: oracle, namespace: default}}]
current-context: oracle
`, judge.Base, judge.Token)
	if err := os.WriteFile(kubeconfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// What podunit accepts with a notice because podman writes it (a
	// volume named podman_web_data-pvc), the API server refuses: a file
	// the API server refuses must be one podunit gave a rename notice for,
	// whose field the refusal names, and the renames the notices give make
	// it one the cluster accepts. Every other file is accepted as it is.
	apply := func(file string) (string, error) {
		cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "apply", "--server-side", "--field-manager=podunit-graduation", "-f", file)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	renames := noticedRenames(set.Notices)
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var out string
	for _, file := range files {
		o, err := apply(file)
		if err != nil {
			var mine []rename
			for _, n := range renames {
				if n.file == file {
					mine = append(mine, n)
				}
			}
			if !slices.ContainsFunc(mine, func(n rename) bool { return strings.Contains(o, n.field) }) {
				t.Fatalf("the API server refuses %s, and no rename notice of podunit's names the field it refuses:\n%s\nnotices: %v", filepath.Base(file), o, set.Notices)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			text := string(data)
			for _, n := range mine {
				text = strings.ReplaceAll(text, n.from, n.to)
			}
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s refused at first:\n%s\npodunit's notices gave the renames %v", filepath.Base(file), o, mine)
			if o, err = apply(file); err != nil {
				t.Fatalf("%s after the renames podunit's notices give: %v\n%s", filepath.Base(file), err, o)
			}
		}
		out += o
	}
	t.Logf("kubectl apply --server-side -f DIR:\n%s", out)

	// Every object of the directory is on the server, as written.
	var want []string
	for _, o := range documents {
		want = append(want, o.String())
	}
	sort.Strings(want)
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(run("get", "-f", dir, "-o", "name")), "\n") {
		got = append(got, line)
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("objects on the server:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// podunit's annotations travel unchanged (the cluster ignores them).
	if a := run("get", "pod", "gated", "-o", "jsonpath={.metadata.annotations.podunit\\.io/after}"); a != "default/web-0" {
		t.Errorf("podunit.io/after on the server: %q", a)
	}
	// A second apply of the same directory changes nothing: no object's
	// resourceVersion moves.
	versions := func() string {
		return run("get", "-f", dir, "-o", "jsonpath={range .items[*]}{.metadata.resourceVersion} {end}")
	}
	before := versions()
	run("apply", "--server-side", "--field-manager=podunit-graduation", "-f", dir)
	if after := versions(); after != before {
		t.Errorf("a second apply changed objects: resourceVersions %s, then %s", before, after)
	}
}

// object is one document's kind and name, as `kubectl get -o name` prints it.
type object struct{ kind, group, name, file string }

func (o object) String() string {
	if o.group == "" {
		return strings.ToLower(o.kind) + "/" + o.name
	}
	return strings.ToLower(o.kind) + "." + o.group + "/" + o.name
}

func objects(t *testing.T, file string, data []byte) []object {
	t.Helper()
	var out []object
	for _, d := range Split(file, data) {
		var m struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(d.Data, &m); err != nil {
			t.Fatalf("%s: %v", d.ID(), err)
		}
		if m.Kind == "" {
			continue
		}
		group, _, _ := strings.Cut(m.APIVersion, "/")
		if !strings.Contains(m.APIVersion, "/") {
			group = ""
		}
		out = append(out, object{m.Kind, group, m.Metadata.Name, filepath.Base(file)})
	}
	return out
}

// rename is one podunit's notice gives: in file, field's value from is
// not a name Kubernetes accepts; to is.
type rename struct{ file, field, from, to string }

// noticedRenames are the renames podunit's notices give ("… "old" is not a
// DNS-1123 label …; rename it new …"), longest names first, so that a name
// is not replaced inside a longer one that begins with it.
func noticedRenames(notices []generator.Notice) []rename {
	re := regexp.MustCompile(`^"([^"]+)" is not a DNS-1123 .*rename it ([a-z0-9.-]+)`)
	var out []rename
	for _, n := range notices {
		if m := re.FindStringSubmatch(n.Msg); m != nil {
			out = append(out, rename{n.File, n.Field, m[1], m[2]})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].from) > len(out[j].from) })
	return out
}
