package generator

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

const webPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: nginx:1
`

// What a server wrote is dropped without a word and what only a scheduler
// acts on is accepted with a notice; neither changes the pod, so neither
// restarts it when added or removed.
func TestServerAndSchedulerFieldsDoNotChangeThePod(t *testing.T) {
	plain, err := DecodeManifest("web.yaml", []byte(webPod))
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Notices) != 0 {
		t.Errorf("notices for a plain pod: %v", plain.Notices)
	}
	withServer := `apiVersion: v1
kind: Pod
metadata:
  name: web
  creationTimestamp: null
  resourceVersion: "42"
  managedFields: [{manager: kubectl, operation: Update}]
spec:
  containers:
  - name: web
    image: nginx:1
    resources: {}
  tolerations:
  - {key: example, operator: Exists, effect: NoSchedule}
  schedulerName: default-scheduler
  priority: 0
  strategy: {}
status: {phase: Running, podIP: 10.0.0.1}
`
	// strategy is not a Pod field at all: a typo, even when empty.
	if _, err := DecodeManifest("web.yaml", []byte(withServer)); err == nil || !strings.Contains(err.Error(), "spec.strategy: unknown field") {
		t.Fatalf("an unknown field that is empty: %v", err)
	}
	withServer = strings.Replace(withServer, "  strategy: {}\n", "", 1)
	m, err := DecodeManifest("web.yaml", []byte(withServer))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Pods[0].Hash, plain.Pods[0].Hash; got != want {
		t.Errorf("hash %s with server and scheduler fields, %s without", got, want)
	}
	var fields []string
	for _, n := range m.Notices {
		fields = append(fields, n.Field)
		if n.File != "web.yaml" || n.Line == 0 || n.Msg == "" {
			t.Errorf("notice without its place or text: %+v", n)
		}
	}
	// priority: 0 asks for nothing: no notice.
	if got, want := strings.Join(fields, " "), "spec.tolerations spec.schedulerName"; got != want {
		t.Errorf("notices on %q, want %q", got, want)
	}
	ann := m.Pods[0].Spec.Annotations[AnnotationNotices]
	if !strings.Contains(ann, "spec.tolerations: ") || !strings.Contains(ann, "spec.schedulerName: ") {
		t.Errorf("the pod's %s annotation: %q", AnnotationNotices, ann)
	}
	if m.Pods[0].Spec.Spec.Tolerations != nil {
		t.Errorf("a noticed field reached the pod: %v", m.Pods[0].Spec.Spec.Tolerations)
	}
}

// Other kinds in a file are skipped with a notice naming the document, and
// the file's workload and Service run; a misspelt kind is still an error.
func TestSkippedKindsLetTheRestOfTheFileRun(t *testing.T) {
	file := webPod + `---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: web}
spec: {anything: [goes, here]}
`
	m, err := DecodeManifest("all.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Pods) != 1 || len(m.Services) != 1 || len(m.Notices) != 2 {
		t.Fatalf("%d pods, %d Services, notices %v", len(m.Pods), len(m.Services), m.Notices)
	}
	if n := m.Notices[0].String(); n != `all.yaml:11: notice: kind: document 2: ServiceAccount "web" skipped: there is no API server, so no service account tokens; the rest of the file runs` {
		t.Errorf("notice %q", n)
	}
	if n := m.Notices[1].String(); !strings.Contains(n, `document 4: ServiceMonitor "web" (monitoring.coreos.com/v1) skipped: a custom resource`) {
		t.Errorf("notice %q", n)
	}
	_, err = DecodeManifest("typo.yaml", []byte("apiVersion: v1\nkind: Servce\nmetadata: {name: web}\n"))
	if err == nil || !strings.Contains(err.Error(), `"Servce" is not supported (did you mean "Service"?)`) {
		t.Errorf("a misspelt kind: %v", err)
	}
}

// strict: true makes every notice an error: the file is invalid as a whole.
func TestStrictMakesNoticesErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", strings.Replace(webPod, "spec:\n", "spec:\n  tolerations: [{operator: Exists}]\n", 1))
	set, err := Reader{}.Read(Source{Dir: dir})
	if err != nil || len(set.Pods) != 1 || len(set.Notices) != 1 || len(set.Errors) != 0 {
		t.Fatalf("lenient: %v pods %d notices %v errors %v", err, len(set.Pods), set.Notices, set.Errors)
	}
	set, err = Reader{Strict: true}.Read(Source{Dir: dir})
	if err != nil || len(set.Pods) != 0 || len(set.Errors) != 1 {
		t.Fatalf("strict: %v pods %d errors %v", err, len(set.Pods), set.Errors)
	}
	if e := set.Errors[0].Error(); !strings.Contains(e, "a.yaml:6: spec.tolerations: ") || !strings.Contains(e, "strict: true") {
		t.Errorf("strict error %q", e)
	}
}

// nodeSelector and required node affinity are matched as the kubelet's
// admission matches them; a pod that does not fit is not run, with the
// kubelet's reason.
func TestAdmission(t *testing.T) {
	node := NewNode("node1", map[string]string{"disktype": "ssd", "cores": "8"})
	term := func(reqs ...corev1.NodeSelectorRequirement) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: reqs}}}}}
	}
	req := func(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	for _, tc := range []struct {
		name     string
		selector map[string]string
		affinity *corev1.Affinity
		os       corev1.OSName
		reason   string
	}{
		{name: "no constraints"},
		{name: "selector matches", selector: map[string]string{"disktype": "ssd", "kubernetes.io/hostname": "node1", "kubernetes.io/os": "linux"}},
		{name: "selector differs", selector: map[string]string{"disktype": "hdd"}, reason: "NodeAffinity"},
		{name: "selector label missing", selector: map[string]string{"gpu": "yes"}, reason: "NodeAffinity"},
		{name: "In", affinity: term(req("disktype", "In", "nvme", "ssd"))},
		{name: "NotIn", affinity: term(req("disktype", "NotIn", "ssd")), reason: "NodeAffinity"},
		{name: "Exists and DoesNotExist", affinity: term(req("disktype", "Exists"), req("gpu", "DoesNotExist"))},
		{name: "Gt", affinity: term(req("cores", "Gt", "4"))},
		{name: "Lt", affinity: term(req("cores", "Lt", "4")), reason: "NodeAffinity"},
		{name: "matchFields", affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{req("metadata.name", "In", "node1")}}}}}}},
		{name: "second term matches", affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{req("zone", "In", "a")}},
				{MatchExpressions: []corev1.NodeSelectorRequirement{req("disktype", "In", "ssd")}}}}}}},
		{name: "os", os: "windows", reason: "PodOSNotSupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{NodeSelector: tc.selector, Affinity: tc.affinity}}
			if tc.os != "" {
				pod.Spec.OS = &corev1.PodOS{Name: tc.os}
			}
			r := Admit(pod, node)
			switch {
			case tc.reason == "" && r != nil:
				t.Errorf("rejected: %v", r)
			case tc.reason != "" && (r == nil || r.Reason != tc.reason):
				t.Errorf("got %v, want reason %s", r, tc.reason)
			}
		})
	}
}

// A pod that does not fit is in NotAdmitted, not in Pods; a nodeName that is
// not this node's gives a notice, and the pod runs.
func TestReadAdmitsOnTheNode(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "ssd.yaml", strings.Replace(webPod, "name: web\nspec:\n", "name: ssd\nspec:\n  nodeSelector: {disktype: ssd}\n", 1))
	writeFile(t, dir, "pinned.yaml", strings.Replace(webPod, "name: web\nspec:\n", "name: pinned\nspec:\n  nodeName: worker-7\n  schedulerName: mine\n", 1))
	set, err := Reader{Node: NewNode("node1", nil)}.Read(Source{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.NotAdmitted) != 1 || set.NotAdmitted[0].Name() != "ssd" || set.NotAdmitted[0].Rejected.Reason != "NodeAffinity" {
		t.Fatalf("not admitted: %v", set.NotAdmitted)
	}
	if len(set.Pods) != 1 || set.Pods[0].Name() != "pinned" {
		t.Fatalf("pods: %v", set.Pods)
	}
	// Each notice once: the nodeName's, added on admission, and the one
	// found on decoding.
	if len(set.Notices) != 2 || !strings.Contains(set.Notices[0].String(), `pinned.yaml:6: notice: spec.nodeName: "worker-7" is not this node ("node1")`) ||
		!strings.Contains(set.Notices[1].String(), `pinned.yaml:7: notice: spec.schedulerName`) {
		t.Errorf("notices: %v", set.Notices)
	}
	if !strings.Contains(set.Pods[0].Spec.Annotations[AnnotationNotices], "spec.nodeName") {
		t.Errorf("annotation: %v", set.Pods[0].Spec.Annotations)
	}
	set, _ = Reader{Node: NewNode("node1", map[string]string{"disktype": "ssd"})}.Read(Source{Dir: dir})
	if len(set.Pods) != 2 || len(set.NotAdmitted) != 0 {
		t.Errorf("with the label: pods %v, not admitted %v", set.Pods, set.NotAdmitted)
	}
}

// Check validates files beside the sources: a pod finds the Secret another
// source file defines, and the sources' own pods and errors are not its.
func TestCheckResolvesAcrossSources(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: x}\n")
	writeFile(t, dir, "broken.yaml", "apiVersion: v1\nkind: Pod\n")
	pod := strings.Replace(webPod, "    image: nginx:1\n", "    image: nginx:1\n    envFrom: [{secretRef: {name: db}}]\n", 1)
	alone, _ := Reader{}.Check([]File{{Path: "new.yaml", Data: []byte(pod)}})
	if len(alone.Errors) != 1 || !strings.Contains(alone.Errors[0].Error(), `Secret "db" not found`) {
		t.Errorf("alone: %v", alone.Errors)
	}
	set, err := Reader{}.Check([]File{{Path: "new.yaml", Data: []byte(pod)}}, Source{Dir: dir})
	if err != nil || len(set.Errors) != 0 || len(set.Pods) != 1 {
		t.Fatalf("beside the sources: %v %v %v", err, set.Errors, set.Pods)
	}
}

// ExplainPath names a field for `podunit explain`, without list indices or
// map keys; Explain gives each field its class.
func TestExplain(t *testing.T) {
	if got := ExplainPath("Deployment", "spec.template.spec.containers[0].volumeMounts[1].mountPropagation"); got != "deployment.spec.template.spec.containers.volumeMounts.mountPropagation" {
		t.Errorf("ExplainPath %q", got)
	}
	for query, class := range map[string]string{
		"pod.spec.containers.ports":                      "mixed: see its fields",
		"pod.spec.containers.ports.hostPort":             "honoured",
		"pod.spec.tolerations":                           "notice",
		"pod.spec.tolerations.key":                       "notice",
		"pod.spec.nodeSelector":                          "admission",
		"pod.metadata.creationTimestamp":                 "dropped",
		"pod.spec.runtimeClassName":                      Rejected,
		"deployment.spec.template.spec.priority":         "notice",
		"deployment.spec.strategy.type":                  "honoured",
		"statefulset.spec.volumeClaimTemplates.metadata": "mixed: see its fields",
		"service.spec.ports":                             "mixed: see its fields",
		"service.spec.ports.nodePort":                    "honoured",
		"service.spec.clusterIP":                         "honoured",
		"service.spec.loadBalancerClass":                 "notice",
		"service.spec.loadBalancerSourceRanges":          Rejected,
		"service.status.loadBalancer":                    "dropped",
		"service.metadata.managedFields":                 "dropped",
	} {
		e, err := Explain(query)
		if err != nil || e.Class != class {
			t.Errorf("explain %s: class %v (%v), want %q", query, e, err, class)
		}
	}
	if _, err := Explain("pod.spec.containers.imagePullPolcy"); err == nil || !strings.Contains(err.Error(), `did you mean "imagePullPolicy"`) {
		t.Errorf("a misspelt field: %v", err)
	}
	if e, err := Explain("service"); err != nil || e.Kind != "Service" || e.APIVersion != "v1" {
		t.Errorf("explain service: %+v %v", e, err)
	}
	if _, err := Explain("serviceaccount"); err == nil || !strings.Contains(err.Error(), "skipped with a notice") {
		t.Errorf("a skipped kind: %v", err)
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// hostUsers: false needs a runtime with user namespaces: on one without, the
// pod is not started, and the reason names the runtime's version.
func TestAdmitHostUsers(t *testing.T) {
	no := false
	pod := &corev1.Pod{Spec: corev1.PodSpec{HostUsers: &no}}
	for _, tc := range []struct {
		name, version string
		admit         bool
	}{{"containerd", "1.6.20", false}, {"containerd", "v1.7.24", false}, {"containerd", "2.1.9", true}, {"cri-o", "1.30.0", true}} {
		node := NewNode("node1", nil)
		node.Runtime = tc.name + " " + tc.version
		node.UserNamespaces = RuntimeSupportsUserNamespaces(tc.name, tc.version)
		r := Admit(pod, node)
		if (r == nil) != tc.admit {
			t.Errorf("%s: %v", node.Runtime, r)
		}
		if r != nil && (r.Reason != "UserNamespacesNotSupported" || !strings.Contains(r.Message, node.Runtime)) {
			t.Errorf("%s: %v", node.Runtime, r)
		}
	}
	if r := Admit(pod, NewNode("node1", nil)); r != nil {
		t.Errorf("a runtime not known (validate) rejects: %v", r)
	}
}

// An image volume needs a runtime that mounts images: on one without, the
// pod is not started, and the reason names the volume and the runtime.
func TestAdmitImageVolumes(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "tools",
		VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "localhost/tools:1"}}}}}}
	for _, tc := range []struct {
		name, version string
		admit         bool
	}{{"containerd", "1.7.24~ds1", false}, {"containerd", "2.0.5", false}, {"containerd", "2.1.9+unknown", true},
		{"containerd", "v3.0.0", true}, {"cri-o", "1.30.4", false}, {"cri-o", "1.31.0", true}} {
		node := NewNode("node1", nil)
		node.Runtime = tc.name + " " + tc.version
		node.ImageVolumes = RuntimeSupportsImageVolumes(tc.name, tc.version)
		r := Admit(pod, node)
		if (r == nil) != tc.admit {
			t.Errorf("%s: %v", node.Runtime, r)
		}
		if r != nil && (r.Reason != "ImageVolumesNotSupported" || !strings.Contains(r.Message, node.Runtime) || !strings.Contains(r.Message, `"tools"`)) {
			t.Errorf("%s: %v", node.Runtime, r)
		}
	}
}

// restrictHostAccess: "all" refuses every pod that reaches the host, "url"
// only those from manifestURL, absent none; a pod that does not reach the
// host runs either way.
func TestRestrictHostAccess(t *testing.T) {
	dir, fetched := t.TempDir(), t.TempDir()
	host := "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  hostNetwork: true\n  volumes: [{name: v, hostPath: {path: /etc}}]\n  containers: [{name: c, image: i, securityContext: {privileged: true, capabilities: {add: [NET_ADMIN]}}}]\n"
	plain := "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec: {containers: [{name: c, image: i}]}\n"
	for _, f := range []struct{ dir, name, content string }{
		{dir, "host-local.yaml", fmt.Sprintf(host, "host-local")}, {dir, "plain-local.yaml", fmt.Sprintf(plain, "plain-local")},
		{fetched, "manifest.yaml", fmt.Sprintf(host, "host-url") + "---\n" + fmt.Sprintf(plain, "plain-url")},
	} {
		if err := os.WriteFile(filepath.Join(f.dir, f.name), []byte(f.content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for policy, refused := range map[string][]string{
		HostAccessAllowed: nil,
		HostAccessNoneURL: {"host-url"},
		HostAccessNoneAll: {"host-local", "host-url"},
	} {
		set, err := Reader{RestrictHostAccess: policy}.Read(Source{Dir: dir}, Source{Dir: fetched, Origin: "http://config.example/pods"})
		if err != nil || len(set.Errors) > 0 {
			t.Fatalf("%v %v", err, set.Errors)
		}
		var got []string
		for _, p := range set.NotAdmitted {
			got = append(got, p.Name())
			if p.Rejected.Reason != "HostAccessForbidden" || !strings.Contains(p.Rejected.Message,
				"spec.hostNetwork, spec.volumes[0].hostPath (/etc), spec.containers[0].securityContext.privileged, spec.containers[0].securityContext.capabilities.add") {
				t.Errorf("%s: %v", p.Name(), p.Rejected)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, refused) || len(set.Pods)+len(set.NotAdmitted) != 4 {
			t.Errorf("restrictHostAccess %q: refused %v, want %v (admitted %d)", policy, got, refused, len(set.Pods))
		}
	}
}

// enableServiceLinks reaches podshim: false is a pod of its own (a new
// hash), true restates the default and changes nothing; neither is a
// notice.
func TestEnableServiceLinksIsHonoured(t *testing.T) {
	hash := func(links string) (string, *bool) {
		t.Helper()
		doc := "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n" + links + "  containers: [{name: web, image: nginx:1}]\n"
		m, err := DecodeManifest("web.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Notices) != 0 {
			t.Errorf("notices for %q: %v", links, m.Notices)
		}
		return m.Pods[0].Hash, m.Pods[0].Spec.Spec.EnableServiceLinks
	}
	plain, _ := hash("")
	if h, _ := hash("  enableServiceLinks: true\n"); h != plain {
		t.Errorf("enableServiceLinks: true changed the hash")
	}
	h, links := hash("  enableServiceLinks: false\n")
	if h == plain || links == nil || *links {
		t.Errorf("enableServiceLinks: false did not reach the pod (%v, hash %s = %s)", links, h, plain)
	}
}
