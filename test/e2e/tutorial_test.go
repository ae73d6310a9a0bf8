//go:build e2e

package e2e

import (
	_ "embed"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The files of kubernetes.io's tutorial "Running Kubelet in Standalone
// Mode", as its reader writes them (testdata/kubelet-standalone/README.md).
var (
	//go:embed testdata/kubelet-standalone/kubelet.yaml
	tutorialKubeletYAML string
	//go:embed testdata/kubelet-standalone/static-web.yaml
	tutorialStaticWebYAML string
)

// The standalone-kubelet tutorial, word for word, with podunit in the
// kubelet's place: the tutorial's kubelet.yaml as it is, named by
// config.yaml's kubeletConfig (config.yaml otherwise as the package installs
// it, whose criEndpoint is containerd's: the runtime is the one the
// kubelet.yaml names), /etc/kubernetes/manifests made, podunit's status
// service (re)started as the tutorial enables kubelet.service, then its
// checks: /healthz?verbose on localhost:10255, /pods without the pod,
// static-web.yaml copied into the manifest directory, /pods listing it with
// its pod IP, and the pod answering HTTP on that IP.
//
// What differs from the tutorial's machine: no registry is reachable here,
// so static-web.yaml's `image: nginx` is the test bed's local stand-in,
// localhost/podunit/nginx:1 (busybox httpd serving "podunit test bed" on
// port 80, as TestDeploymentWithServiceFile maps the same image); the pod
// network is the test bed's CNI bridge (10.88.0.0/16), not the 10.85.0.0/16
// CRI-O's install script writes. On CRI-O (the tutorial's runtime, `make
// test-e2e RUNTIME=crio`) kubelet.yaml is used unchanged; on containerd its
// containerRuntimeEndpoint names containerd's socket instead, the one line
// a containerd machine's kubelet.yaml has differently.
func TestStandaloneKubeletTutorial(t *testing.T) {
	const kubeletYAML, manifests = "/etc/kubernetes/kubelet.yaml", "/etc/kubernetes/manifests"
	kubelet := tutorialKubeletYAML
	if !onCRIO() {
		kubelet = strings.Replace(kubelet, "unix:///var/run/crio/crio.sock", "unix:///var/run/containerd/containerd.sock", 1)
	}
	freshDir(t, "/etc/kubernetes")
	if err := os.MkdirAll(manifests, 0o755); err != nil { // sudo mkdir -p /etc/kubernetes/manifests
		t.Fatal(err)
	}
	if err := os.WriteFile(kubeletYAML, []byte(kubelet), 0o644); err != nil { // sudo tee /etc/kubernetes/kubelet.yaml
		t.Fatal(err)
	}

	old, err := os.ReadFile(podunitConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.WriteFile(podunitConfig, old, 0o644)
		systemctl(t, "restart", "podunit-status.service")
		syncWithNewConfig(t)
	})
	packaged := regexp.MustCompile(`(?m)^criEndpoint:.*$`).ReplaceAll(old, []byte("criEndpoint: unix:///run/containerd/containerd.sock"))
	if err := os.WriteFile(podunitConfig, append(packaged, "\nkubeletConfig: "+kubeletYAML+"\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	// sudo systemctl enable --now kubelet.service: the read-only port is
	// podunit-status's, the manifest directory is watched once a sync has
	// read the new configuration.
	systemctl(t, "restart", "podunit-status.service")
	waitFor(t, "podunit.path watching "+manifests, func() (bool, error) {
		runSync(t)
		b, err := os.ReadFile("/run/systemd/system/podunit.path.d/50-manifest-dir.conf")
		return err == nil && strings.Contains(string(b), "PathChanged="+manifests), nil
	})

	// curl http://localhost:10255/healthz?verbose
	waitFor(t, "localhost:10255/healthz answering", func() (bool, error) {
		code, body, err := get("http://localhost:10255/healthz?verbose")
		return code == 200 && strings.HasPrefix(body, "[+]ping ok\n") && strings.HasSuffix(body, "healthz check passed\n"), err
	})
	// curl http://localhost:10255/pods | jq '.': a PodList, without the pod.
	if list := tutorialPods(t); list.Kind != "PodList" || list.APIVersion != "v1" || tutorialPod(list) != nil {
		t.Fatalf("/pods before static-web.yaml: %+v", list)
	}

	// sudo cp static-web.yaml /etc/kubernetes/manifests/
	staticWeb := strings.Replace(tutorialStaticWebYAML, "image: nginx\n", "image: localhost/podunit/nginx:1\n", 1)
	if staticWeb == tutorialStaticWebYAML {
		t.Fatal("static-web.yaml has no `image: nginx` line to map")
	}
	if err := os.WriteFile(filepath.Join(manifests, "static-web.yaml"), []byte(staticWeb), 0o644); err != nil {
		t.Fatal(err)
	}
	unit := waitActive(t, "default", "static-web")
	t.Cleanup(func() {
		os.Remove(filepath.Join(manifests, "static-web.yaml"))
		waitGone(t, unit)
	})

	// curl http://localhost:10255/pods | jq '.items[].status.podIP'
	var ip string
	waitFor(t, "static-web with its pod IP in localhost:10255/pods", func() (bool, error) {
		p := tutorialPod(tutorialPods(t))
		if p == nil {
			return false, nil
		}
		ip = p.Status.PodIP
		return ip != "" && p.Status.Phase == corev1.PodRunning, nil
	})
	p := tutorialPod(tutorialPods(t))
	if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].Name != "web" ||
		!strings.HasPrefix(p.Status.ContainerStatuses[0].ContainerID, containerIDPrefix()) {
		t.Errorf("static-web's container, on the kubelet.yaml's runtime (%s): %+v", runtimeName, p.Status.ContainerStatuses)
	}
	if len(p.Spec.Containers) != 1 || len(p.Spec.Containers[0].Ports) != 1 || p.Spec.Containers[0].Ports[0].Name != "web" ||
		p.Spec.Containers[0].Ports[0].ContainerPort != 80 {
		t.Errorf("static-web's spec in /pods: %+v", p.Spec.Containers)
	}
	// curl http://<IP>
	if code, body, err := get("http://" + ip + "/"); err != nil || code != 200 || !strings.Contains(body, "podunit test bed") {
		t.Errorf("curl http://%s: %d %q %v", ip, code, body, err)
	}
}

// tutorialPods is `curl http://localhost:10255/pods`, decoded.
func tutorialPods(t *testing.T) corev1.PodList {
	t.Helper()
	code, body, err := get("http://localhost:10255/pods")
	if err != nil || code != 200 {
		t.Fatalf("curl http://localhost:10255/pods: %d %v\n%s", code, err, body)
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("/pods: %v\n%s", err, body)
	}
	return list
}

// tutorialPod is the tutorial's pod in a /pods answer, or nil.
func tutorialPod(list corev1.PodList) *corev1.Pod {
	for i, p := range list.Items {
		if p.Namespace == "default" && p.Name == "static-web" {
			return &list.Items[i]
		}
	}
	return nil
}
