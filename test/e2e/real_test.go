//go:build e2e

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

// Manifests from test/testdata/real, as their tools write them, with only
// the image swapped for a local stand-in (no registry is reachable).

// realManifest reads test/testdata/real/name as `make test-e2e` copies it
// into the test bed's directory ($PODUNIT_TESTBED_DIR/real), where the test
// bed sees it wherever the source tree is. images are pairs of strings to
// replace, as for strings.NewReplacer.
func realManifest(t *testing.T, name string, images ...string) string {
	t.Helper()
	path := filepath.Join(os.Getenv("PODUNIT_TESTBED_DIR"), "real", name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (make test-e2e copies test/testdata/real there)", err)
	}
	return strings.NewReplacer(images...).Replace(string(b))
}

// hostDir removes path when the test ends if the test made it: hostPath
// volumes of type DirectoryOrCreate make directories on the test bed's root
// file system, which is the host's.
func hostDir(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		t.Cleanup(func() { os.RemoveAll(path) })
	}
}

// getPod is a pod as `podunit get pods NAME -o json` shows it.
func getPod(t *testing.T, namespace, name string) *corev1.Pod {
	t.Helper()
	out, err := exec.Command(podunitBin, "get", "pods", "-n", namespace, name, "-o", "json").Output()
	if err != nil {
		t.Fatalf("podunit get pods %s/%s: %v", namespace, name, err)
	}
	var list corev1.PodList
	if err := json.Unmarshal(out, &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("get -o json: %v\n%s", err, out)
	}
	return &list.Items[0]
}

// kubeadm's etcd static pod, exactly as kubeadm v1.33 writes it
// (creationTimestamp: null, status: {}, priority, priorityClassName
// system-node-critical), runs with hostNetwork and its hostPath volumes:
// its startup and readiness probes on 127.0.0.1:2381 pass, its data
// directory is on the host, and the notice about `priority` is shown by
// validate, in the journal and on the pod, never fatal.
func TestKubeadmEtcdStaticPod(t *testing.T) {
	hostDir(t, "/var/lib/etcd")
	hostDir(t, "/etc/kubernetes")
	manifest := realManifest(t, "kubeadm-1.33-etcd.yaml", "registry.example/etcd:3.5.21-0", "localhost/podunit/busybox:1.35")
	validate := exec.Command(podunitBin, "validate", "-")
	validate.Stdin = strings.NewReader(manifest)
	if out, err := validate.CombinedOutput(); err != nil || !strings.Contains(string(out), "-:77: notice: spec.priority: ") ||
		!strings.Contains(string(out), "pod kube-system/etcd is valid") {
		t.Errorf("podunit validate: %v\n%s", err, out)
	}
	start := time.Now()
	writeManifest(t, "etcd.yaml", manifest)
	waitActive(t, "kube-system", "etcd") // READY=1: the startup and readiness probes passed
	id, err := os.ReadFile("/var/lib/etcd/member/id")
	if err != nil || len(strings.TrimSpace(string(id))) == 0 {
		t.Errorf("etcd's data directory on the host: %q %v", id, err)
	}
	if _, err := os.Stat("/etc/kubernetes/pki/etcd"); err != nil {
		t.Errorf("DirectoryOrCreate: %v", err)
	}
	pod := getPod(t, "kube-system", "etcd")
	if !pod.Spec.HostNetwork || pod.Status.Phase != corev1.PodRunning {
		t.Errorf("hostNetwork %v, phase %s", pod.Spec.HostNetwork, pod.Status.Phase)
	}
	if n := pod.Annotations["podunit.io/notices"]; !strings.Contains(n, "spec.priority: ") {
		t.Errorf("the pod's notices: %q", n)
	}
	if code, body, err := get("http://127.0.0.1:2381/readyz"); err != nil || code != 200 || !strings.Contains(body, "true") {
		t.Errorf("etcd's metrics port on the host network: %d %q %v", code, body, err)
	}
	if j := journal(t, "podunit-sync.service", start); !strings.Contains(j, "etcd.yaml:77: notice: spec.priority:") {
		t.Errorf("the sync's journal lacks the notice:\n%s", j)
	}
}

// A file with a Deployment and a Service, as `kubectl create deployment …
// --dry-run=client -o yaml` and `kubectl create service …` print them: the
// Deployment runs, and the Service serves it on its ClusterIP (it was
// skipped with a notice before Services were served).
func TestDeploymentWithServiceFile(t *testing.T) {
	writeManifest(t, "web-and-svc.yaml", realManifest(t, "kubectl-deployment-and-service.yaml", "image: nginx", "image: localhost/podunit/nginx:1"))
	waitActive(t, "default", "web-0")
	pod := getPod(t, "default", "web-0")
	if code, body, err := get("http://" + pod.Status.PodIP + "/"); err != nil || code != 200 || !strings.Contains(body, "podunit test bed") {
		t.Errorf("the Deployment's pod does not serve: %d %q %v", code, body, err)
	}
	waitFor(t, "the Deployment's page through the Service's ClusterIP", func() (bool, error) {
		ip := serviceIP(t, "web")
		if ip == "" {
			return false, fmt.Errorf("no ClusterIP in podunit get services")
		}
		code, body, err := get("http://" + ip + "/")
		return code == 200 && strings.Contains(body, "podunit test bed"), fmt.Errorf("%s: %d %v", ip, code, err)
	})
}

// `kubectl create deployment … --dry-run=client -o yaml`, as it is
// (creationTimestamp: null, strategy: {}, resources: {}, status: {}).
func TestKubectlCreateDeployment(t *testing.T) {
	writeManifest(t, "api.yaml", realManifest(t, "kubectl-create-deployment-replicas-port.yaml",
		"image: busybox:1.36", "image: localhost/podunit/nginx:1"))
	for _, name := range []string{"api-0", "api-1", "api-2"} {
		waitActive(t, "default", name)
	}
}

// nodeSelector is matched as the kubelet's admission matches it: a pod for
// nodes with disktype=ssd does not start here, and says why in Kubernetes'
// words, until config.yaml gives this node that label.
func TestNodeSelectorAdmission(t *testing.T) {
	writeManifest(t, "ssd.yaml", strings.NewReplacer("image: nginx", "image: localhost/podunit/nginx:1", "  name: nginx\n", "  name: e2e-ssd\n").
		Replace(realManifest(t, "k8sio-pod-nginx-nodeselector.yaml")))
	waitStatusWord(t, "e2e-ssd", "NodeAffinity")
	if st := activeState("pod-e2e-ssd.service"); st == "active" || st == "activating" {
		t.Fatalf("a pod whose nodeSelector does not match was started (%s)", st)
	}
	pod := getPod(t, "default", "e2e-ssd")
	if pod.Status.Phase != corev1.PodFailed || pod.Status.Reason != "NodeAffinity" || !strings.Contains(pod.Status.Message, "disktype=ssd") {
		t.Errorf("status %+v", pod.Status)
	}
	withConfig(t, "nodeLabels: {disktype: ssd}")
	waitActive(t, "default", "e2e-ssd")
}

// A StatefulSet's pods start in order, each with its own claim, whose data
// survives the pod's replacement.
func TestStatefulSetKeepsClaims(t *testing.T) {
	set := func(greeting string) string {
		return `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: e2e-db}
spec:
  serviceName: e2e-db
  replicas: 2
  selector: {matchLabels: {app: e2e-db}}
  template:
    metadata: {labels: {app: e2e-db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: localhost/podunit/busybox:1.35
        command: ["sh", "-c", "[ -s /data/first ] || hostname > /data/first; trap 'exit 0' TERM; sleep 3600 & wait"]
        env: [{name: GREETING, value: "` + greeting + `"}]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`
	}
	t.Cleanup(func() {
		for _, c := range []string{"default/data-e2e-db-0", "default/data-e2e-db-1"} {
			exec.Command(podunitBin, "volume", "rm", c).Run()
		}
	})
	writeManifest(t, "e2e-db.yaml", set("one"))
	u0, u1 := waitActive(t, "default", "e2e-db-0"), waitActive(t, "default", "e2e-db-1")
	ready0 := unitProps(t, u0)["ActiveEnterTimestamp"].(uint64)
	if start1 := unitProps(t, u1)["ExecMainStartTimestamp"].(uint64); start1 < ready0 {
		t.Errorf("e2e-db-1 started %d µs before e2e-db-0 was ready", ready0-start1)
	}
	first, ok := tryExec("default", "e2e-db-1", "db", "cat", "/data/first")
	if !ok || first != "e2e-db-1" {
		t.Fatalf("the pod's host name in its claim: %q", first)
	}
	writeManifest(t, "e2e-db.yaml", set("two"))
	waitFor(t, "e2e-db-1 replaced", func() (bool, error) {
		out, ok := tryExec("default", "e2e-db-1", "db", "sh", "-c", "echo $GREETING")
		return ok && out == "two", nil
	})
	if again, _ := tryExec("default", "e2e-db-1", "db", "cat", "/data/first"); again != first {
		t.Errorf("the claim's data after the replacement: %q, want %q", again, first)
	}
}

// mountPropagation HostToContainer: a mount made on the host after the
// container started shows inside it, as node-exporter needs.
func TestMountPropagationHostToContainer(t *testing.T) {
	dir := "/run/e2e-propagation"
	freshDir(t, dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The source must be a shared mount for the runtime to make it rslave
	// in the container, as it is on a host with systemd as PID 1.
	for _, args := range [][]string{{"--bind", dir, dir}, {"--make-rshared", dir}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Fatalf("mount %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("umount", "-R", dir).Run() })
	writeManifest(t, "e2e-prop.yaml", `apiVersion: v1
kind: Pod
metadata: {name: e2e-prop}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    volumeMounts:
    - {name: host, mountPath: /host, readOnly: true, mountPropagation: HostToContainer}
  volumes:
  - {name: host, hostPath: {path: `+dir+`}}
`)
	waitActive(t, "default", "e2e-prop")
	sub := filepath.Join(dir, "later")
	os.MkdirAll(sub, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "e2e-later", sub).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(sub, "hello"), []byte("from the host"), 0o644)
	waitFor(t, "the host's later mount in the container", func() (bool, error) {
		out, ok := tryExec("default", "e2e-prop", "c", "cat", "/host/later/hello")
		return ok && out == "from the host", nil
	})
}

// A container's termination message (what it wrote to
// terminationMessagePath, or the tail of its output under
// FallbackToLogsOnError) is its terminated state's message, as the kubelet
// reports it; stdin and tty reach the runtime (an interactive sh stays up).
func TestTerminationMessageAndTTY(t *testing.T) {
	writeManifest(t, "e2e-term.yaml", `apiVersion: v1
kind: Pod
metadata: {name: e2e-term}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: file
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "echo 'sleep expired' > /dev/termination-log; exit 3"]
  - name: logs
    image: localhost/podunit/busybox:1.35
    terminationMessagePolicy: FallbackToLogsOnError
    command: ["sh", "-c", "echo first; echo last words; exit 4"]
  - name: shell
    image: localhost/podunit/busybox:1.35
    stdin: true
    tty: true
`)
	var statuses []corev1.ContainerStatus
	waitFor(t, "two containers terminated and the shell running", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", "e2e-term")
		if err != nil {
			return false, err
		}
		statuses = st.Status.ContainerStatuses
		done, running := 0, 0
		for _, cs := range statuses {
			if cs.State.Terminated != nil {
				done++
			}
			if cs.State.Running != nil {
				running++
			}
		}
		return done == 2 && running == 1, nil
	})
	for _, cs := range statuses {
		switch cs.Name {
		case "file":
			if cs.State.Terminated.Message != "sleep expired\n" || cs.State.Terminated.ExitCode != 3 {
				t.Errorf("file: %+v", cs.State.Terminated)
			}
		case "logs":
			if cs.State.Terminated.Message != "first\nlast words" {
				t.Errorf("logs: %+v", cs.State.Terminated)
			}
		}
	}
}

// lifecycle.stopSignal stops the container with its own signal, on a
// runtime that does not know the CRI's stop_signal (containerd 1.6) as on
// one that does.
func TestStopSignal(t *testing.T) {
	dir := "/run/e2e-stopsignal"
	freshDir(t, dir)
	writeManifest(t, "e2e-sig.yaml", `apiVersion: v1
kind: Pod
metadata: {name: e2e-sig}
spec:
  os: {name: linux}
  terminationGracePeriodSeconds: 20
  containers:
  - name: c
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'echo USR1 > /out/signal; exit 0' USR1; trap 'echo TERM > /out/signal; exit 0' TERM; sleep 3600 & wait"]
    lifecycle: {stopSignal: SIGUSR1}
    volumeMounts: [{name: out, mountPath: /out}]
  volumes:
  - {name: out, hostPath: {path: `+dir+`, type: DirectoryOrCreate}}
`)
	unit := waitActive(t, "default", "e2e-sig")
	begin := time.Now()
	os.Remove(filepath.Join(manifestDir, "e2e-sig.yaml"))
	waitGone(t, unit)
	got, err := os.ReadFile(filepath.Join(dir, "signal"))
	if err != nil || strings.TrimSpace(string(got)) != "USR1" {
		t.Errorf("the container was stopped with %q (%v), want USR1", got, err)
	}
	if d := time.Since(begin); d > 15*time.Second {
		t.Logf("stop took %s: the grace period ran out instead of the signal stopping the container?", d)
	}
}

// Pod-level resources: the pod's slice gets the pod's limits (96 MiB + 32
// MiB for podshim and pause, half a CPU), and the pod's QoS class comes
// from them.
func TestPodLevelResources(t *testing.T) {
	writeManifest(t, "e2e-podres.yaml", `apiVersion: v1
kind: Pod
metadata: {name: e2e-podres}
spec:
  terminationGracePeriodSeconds: 1
  resources:
    limits: {cpu: 500m, memory: 96Mi}
  containers:
  - name: a
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
  - name: b
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`)
	waitActive(t, "default", "e2e-podres")
	slice := unitProps(t, units.SliceName("default", "e2e-podres"))
	if slice["MemoryMax"] != uint64(128<<20) && slice["MemoryLimit"] != uint64(128<<20) {
		t.Errorf("slice MemoryMax %v / MemoryLimit %v, want %d", slice["MemoryMax"], slice["MemoryLimit"], 128<<20)
	}
	if slice["CPUQuotaPerSecUSec"] != uint64(500000) {
		t.Errorf("slice CPUQuotaPerSecUSec %v, want 500000", slice["CPUQuotaPerSecUSec"])
	}
	if q := podState(t, "default", "e2e-podres").Status.QOSClass; q != corev1.PodQOSGuaranteed {
		t.Errorf("QoS class %s, want Guaranteed (pod-level limits, requests defaulted to them)", q)
	}
}

// hostUsers: false on a runtime without user namespaces (containerd 1.6,
// Debian 12's): the pod is not started, and says why, naming the runtime's
// version, as the kubelet's admission would refuse it. CRI-O has them: the
// pod runs, its root an unprivileged range of host IDs.
func TestHostUsersNeedsUserNamespaces(t *testing.T) {
	writeManifest(t, "e2e-userns.yaml", `apiVersion: v1
kind: Pod
metadata: {name: e2e-userns}
spec:
  hostUsers: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`)
	if onCRIO() {
		waitActive(t, "default", "e2e-userns")
		out, code := podunitOut("exec", "e2e-userns", "--", "cat", "/proc/self/uid_map")
		f := strings.Fields(out)
		if code != 0 || len(f) != 3 || f[0] != "0" || f[1] == "0" || f[2] != "65536" {
			t.Errorf("the container's uid_map: %q (exit %d), want its root mapped to 65536 IDs away from the host's root", out, code)
		}
		return
	}
	waitFor(t, "the pod reported as not admitted", func() (bool, error) {
		out, _ := exec.Command(podunitBin, "get", "pods").Output()
		return strings.Contains(string(out), "UserNamespacesNotSupported"), nil
	})
	pod := getPod(t, "default", "e2e-userns")
	if pod.Status.Phase != corev1.PodFailed || !strings.Contains(pod.Status.Message, "containerd 1.") {
		t.Errorf("status %+v", pod.Status)
	}
	if st := activeState("pod-e2e-userns.service"); st == "active" || st == "activating" {
		t.Errorf("the pod was started (%s)", st)
	}
}

// An image volume on a runtime that cannot mount images (containerd 1.6,
// Debian 12's): the pod is not started and says why, naming the volume and
// the runtime's version. (The VM tier mounts one on containerd 2.1.) CRI-O
// mounts images since 1.31: the pod runs with the image's files, read-only.
func TestImageVolumeNeedsARuntimeThatMountsImages(t *testing.T) {
	writeManifest(t, "e2e-imagevol.yaml", `apiVersion: v1
kind: Pod
metadata: {name: e2e-imagevol}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: tools, image: {reference: localhost/podunit/nginx:1}}]
  containers:
  - name: c
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    volumeMounts: [{name: tools, mountPath: /tools}]
`)
	t.Cleanup(func() { os.Remove(filepath.Join(manifestDir, "e2e-imagevol.yaml")) })
	if onCRIO() {
		waitActive(t, "default", "e2e-imagevol")
		if out, code := podunitOut("exec", "e2e-imagevol", "--", "cat", "/tools/www/index.html"); code != 0 || strings.TrimSpace(out) != "podunit test bed" {
			t.Errorf("the image volume's file: %q (exit %d)", out, code)
		}
		if out, code := podunitOut("exec", "e2e-imagevol", "--", "touch", "/tools/x"); code == 0 || !strings.Contains(out, "Read-only file system") {
			t.Errorf("the image volume is writable: %q (exit %d)", out, code)
		}
		return
	}
	waitStatusWord(t, "e2e-imagevol", "ImageVolumesNotSupported")
	pod := getPod(t, "default", "e2e-imagevol")
	if pod.Status.Phase != corev1.PodFailed || !strings.Contains(pod.Status.Message, "containerd 1.") || !strings.Contains(pod.Status.Message, `"tools"`) {
		t.Errorf("status %+v", pod.Status)
	}
	if st := activeState("pod-e2e-imagevol.service"); st == "active" || st == "activating" {
		t.Errorf("the pod was started (%s)", st)
	}
}
