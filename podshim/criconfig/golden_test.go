package criconfig_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/criconfig"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// corpus is the repository's real manifests (test/testdata/real), read as
// a sync reads them; examples the ones the packages install.
const (
	corpus   = "../../test/testdata/real"
	examples = "../../contrib/examples"
)

// goldenManifests are real manifests (and, as contrib:<name>, the
// examples) whose translation is pinned: kubeadm's
// control plane (hostNetwork, hostPath, node-critical), node-exporter
// (hostPID, mount propagation), ConfigMaps and Secrets in env and volumes,
// the downward API, security contexts, sidecars, a StatefulSet's claims,
// DNS settings, termination messages, lifecycle hooks, QoS.
var goldenManifests = []string{
	"kubeadm-1.33-etcd", "kubeadm-1.33-kube-apiserver", "kube-prometheus-node-exporter", "kube-vip-static-pod",
	"k8sio-configmap-env", "k8sio-downward-api-volume", "k8sio-projected-volume", "k8sio-security-context",
	"k8sio-security-context-selinux", "k8sio-sidecar-containers", "k8sio-statefulset-web", "k8sio-qos-guaranteed",
	"k8sio-dns-config", "k8sio-termination-message", "k8sio-lifecycle-events", "podman-kube-play-configmap-pvc",
	"podman-5-kube-generate-volume",
	"kubectl-create-deployment-replicas-port", "kubectl-secret-docker-registry-and-pod",
	"contrib:static-web",
}

// translation is what a golden file holds: the first pod of a manifest as
// podshim first starts it, its sandbox's config and each container's.
type translation struct {
	Pod        string                        `json:"pod"`
	Sandbox    *runtimeapi.PodSandboxConfig  `json:"sandbox"`
	Containers []*runtimeapi.ContainerConfig `json:"containers"`
}

// The pod → CRI translation of real manifests, as `podunit sync` decodes
// them and podshim first starts them on a fixed host, equals its golden
// file (go test ./podshim/criconfig -update rewrites them): a change of
// what the runtime is asked for shows in review, line by line.
func TestGoldenTranslations(t *testing.T) {
	host := criconfig.Host{NodeName: "node1", IPs: []string{"192.0.2.10"}, CPUs: 4, Memory: 8 << 30}
	hostDNS := criconfig.ParseResolvConf([]byte("nameserver 192.0.2.53\nsearch example.org\noptions edns0\n"))
	for _, name := range goldenManifests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(corpus, name+".yaml")
			if example, ok := strings.CutPrefix(name, "contrib:"); ok {
				path, name = filepath.Join(examples, example+".yaml"), "contrib-"+example
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			set, err := generator.Reader{}.Check([]generator.File{{Path: filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path), Data: data}}, generator.Source{Dir: corpus})
			if err != nil || len(set.Errors) > 0 || len(set.Pods) == 0 {
				t.Fatalf("%v %v (%d pods)", err, set.Errors, len(set.Pods))
			}
			p := set.Pods[0]
			in := &criconfig.Input{
				Pod: p.Spec, Objects: p.Objects, Host: host, HostDNS: hostDNS, PodIPs: []string{"10.88.0.7"},
				Paths: criconfig.Paths{
					PodDir:       "/var/lib/podunit/pods/" + string(p.Spec.UID),
					VolumeRoot:   "/var/lib/podunit/volumes",
					LogRoot:      "/var/log/pods",
					CgroupParent: "podunit-pod.slice",
				},
			}
			out := translation{Pod: p.Key(), Sandbox: criconfig.Sandbox(in, 0)}
			spec := &p.Spec.Spec
			for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
				for i := range list {
					cc, err := criconfig.Container(in, &list[i], list[i].Image, 0)
					if err != nil {
						t.Fatalf("container %s: %v", list[i].Name, err)
					}
					out.Containers = append(out.Containers, cc)
				}
			}
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./podshim/criconfig -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the translation of %s differs from %s (-update rewrites it):\n%s", path, golden, got)
			}
		})
	}
}
