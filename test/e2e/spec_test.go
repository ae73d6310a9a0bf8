//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

// execIn runs cmd in the pod's running container and returns its output;
// ok is false when it exited non-zero.
func execIn(t *testing.T, namespace, pod, container string, cmd ...string) (string, bool) {
	t.Helper()
	id := runningContainer(t, namespace, pod, container)
	stdout, stderr, err := cri.ExecSync(context.Background(), id, cmd, 10*time.Second)
	if err != nil && !strings.Contains(err.Error(), "exit") {
		t.Fatalf("exec %v in %s/%s: %v", cmd, pod, container, err)
	}
	return strings.TrimSpace(string(stdout) + string(stderr)), err == nil
}

// tryExec is execIn for a container that may be coming or going: any
// failure is just "not yet".
func tryExec(namespace, pod, container string, cmd ...string) (string, bool) {
	id, err := runningContainerID(namespace, pod, container)
	if err != nil || id == "" {
		return "", false
	}
	stdout, _, err := cri.ExecSync(context.Background(), id, cmd, 10*time.Second)
	return strings.TrimSpace(string(stdout)), err == nil
}

// runningContainerID is the ID of the pod's running container name; "" if
// it has none.
func runningContainerID(namespace, pod, name string) (string, error) {
	list, err := cri.ListContainers(context.Background(), &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{
			podshim.LabelPodNamespace: namespace, podshim.LabelPodName: pod, podshim.LabelContainerName: name,
		},
	})
	if err != nil || len(list) == 0 {
		return "", err
	}
	return list[0].Id, nil
}

func runningContainer(t *testing.T, namespace, pod, name string) string {
	t.Helper()
	id, err := runningContainerID(namespace, pod, name)
	if err != nil || id == "" {
		t.Fatalf("no running container %s in pod %s/%s (%v)\n%s", name, namespace, pod, err, diagnostics())
	}
	return id
}

// mustExec is execIn for a command that must succeed.
func mustExec(t *testing.T, pod, container string, cmd ...string) string {
	t.Helper()
	out, ok := execIn(t, "default", pod, container, cmd...)
	if !ok {
		t.Fatalf("%v in %s failed: %s", cmd, container, out)
	}
	return out
}

// One pod with the pod-level features podunit maps to the CRI, checked from
// inside its containers.
func TestPodSpecInContainers(t *testing.T) {
	const name = "e2e-spec"
	hostDir := "/var/lib/e2e-spec"
	freshDir(t, hostDir)
	writeManifest(t, "e2e-spec.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-spec
  labels: {app: spec, tier: edge}
  annotations: {team: platform}
spec:
  terminationGracePeriodSeconds: 2
  hostname: spec-1
  subdomain: web
  shareProcessNamespace: true
  hostAliases:
  - ip: 192.0.2.10
    hostnames: [db, db.local]
  dnsConfig:
    nameservers: [192.0.2.53]
    searches: [example.org]
    options:
    - {name: ndots, value: "3"}
  securityContext:
    fsGroup: 2000
    sysctls:
    - {name: net.ipv4.ip_unprivileged_port_start, value: "80"}
    - {name: kernel.shm_rmid_forced, value: "1"}
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    workingDir: /cache
    command: ["sh", "-c", "trap 'exit 0' TERM; while [ ! -f /cache/crash ]; do sleep 0.2; done; rm /cache/crash; exit 3"]
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: TIER
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['tier']"}}
    - name: MEM_MI
      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}
    - name: CPU_M
      valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}
    resources:
      limits: {cpu: 500m, memory: 64Mi}
    securityContext:
      runAsUser: 1000
      runAsGroup: 3000
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
    volumeMounts:
    - {name: cache, mountPath: /cache}
    - {name: mem, mountPath: /mem}
    - {name: info, mountPath: /etc/podinfo}
    - {name: host, mountPath: /host, subPath: sub}
    - {name: host, mountPath: /host-ro, readOnly: true}
  - name: peer
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "echo peer > /cache/peer; trap 'exit 0' TERM; sleep 3600 & wait"]
    resources:
      limits: {cpu: 500m, memory: 64Mi}
    volumeMounts:
    - {name: cache, mountPath: /cache}
  volumes:
  - name: cache
    emptyDir: {}
  - name: mem
    emptyDir: {medium: Memory, sizeLimit: 8Mi}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: team, fieldRef: {fieldPath: "metadata.annotations['team']"}}
  - name: host
    hostPath: {path: /var/lib/e2e-spec, type: DirectoryOrCreate}
`)
	unit := waitActive(t, "default", name)
	st := podState(t, "default", name)
	ip := st.Status.PodIP
	if ip == "" || st.Status.QOSClass != corev1.PodQOSGuaranteed {
		t.Errorf("status: pod IP %q, QoS %s (want Guaranteed)", ip, st.Status.QOSClass)
	}

	checks := []struct {
		what, container string
		cmd             []string
		want            []string
	}{
		{"hostname", "app", []string{"hostname"}, []string{"spec-1"}},
		{"workingDir", "app", []string{"pwd"}, []string{"/cache"}},
		{"/etc/hosts", "app", []string{"cat", "/etc/hosts"}, []string{ip + "\tspec-1.web.default.svc.cluster.local\tspec-1", "192.0.2.10\tdb\tdb.local", "127.0.0.1\tlocalhost"}},
		{"resolv.conf", "app", []string{"cat", "/etc/resolv.conf"}, []string{"nameserver 192.0.2.53", "example.org", "ndots:3"}},
		{"net sysctl", "app", []string{"cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"}, []string{"80"}},
		{"ipc sysctl", "app", []string{"cat", "/proc/sys/kernel/shm_rmid_forced"}, []string{"1"}},
		{"env", "app", []string{"env"}, []string{"POD_NAME=e2e-spec", "POD_IP=" + ip, "TIER=edge", "MEM_MI=64", "CPU_M=500"}},
		{"user", "app", []string{"id"}, []string{"uid=1000", "gid=3000", "groups=", "2000"}},
		{"fsGroup owns the pod's volumes", "app", []string{"stat", "-c", "%g %A", "/cache", "/etc/podinfo/labels"}, []string{"2000 drwxrwsrwx\n2000 -rw-r--r--"}},
		{"capabilities and no_new_privs", "app", []string{"grep", "-E", "^(CapEff|NoNewPrivs)", "/proc/self/status"}, []string{"CapEff:\t0000000000000000", "NoNewPrivs:\t1"}},
		{"downwardAPI labels", "app", []string{"cat", "/etc/podinfo/labels"}, []string{`app="spec"` + "\n" + `tier="edge"`}},
		{"downwardAPI annotation", "app", []string{"cat", "/etc/podinfo/team"}, []string{"platform"}},
		{"shared emptyDir", "app", []string{"cat", "/cache/peer"}, []string{"peer"}},
		{"shared PID namespace", "app", []string{"ps"}, []string{"sleep 3600"}},
		{"mounts", "app", []string{"cat", "/proc/mounts"}, []string{"tmpfs /mem tmpfs rw", "size=8192k", " /host-ro ", " /proc/timer_list "}},
		{"memory limit", "app", []string{"cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}, []string{"67108864"}},
		{"CPU quota", "app", []string{"cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"}, []string{"50000"}},
	}
	for _, c := range checks {
		out := mustExec(t, name, c.container, c.cmd...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: %v printed %q, want it to contain %q", c.what, c.cmd, out, w)
			}
		}
	}
	if out, ok := execIn(t, "default", name, "app", "touch", "/written"); ok {
		t.Errorf("wrote to a read-only root file system: %s", out)
	}
	if out := mustExec(t, name, "app", "grep", " /host-ro ", "/proc/mounts"); !strings.Contains(out, " ro,") && !strings.Contains(out, " ro ") {
		t.Errorf("readOnly mount is writable: %s", out)
	}
	// hostPath: the subPath was made, and what the host writes is seen.
	if err := os.WriteFile(filepath.Join(hostDir, "sub", "hello"), []byte("from the host"), 0o644); err != nil {
		t.Fatalf("subPath directory not made on the host: %v", err)
	}
	if out := mustExec(t, name, "app", "cat", "/host/hello"); out != "from the host" {
		t.Errorf("hostPath subPath: %q", out)
	}

	// The pod's slice carries the sum of the limits (128 MiB + 32 MiB for
	// podshim and pause) and 100 % CPU.
	slice := unitProps(t, units.SliceName("default", name))
	if slice["MemoryMax"] != uint64(160<<20) && slice["MemoryLimit"] != uint64(160<<20) {
		t.Errorf("slice MemoryMax %v / MemoryLimit %v, want %d", slice["MemoryMax"], slice["MemoryLimit"], 160<<20)
	}
	if slice["CPUQuotaPerSecUSec"] != uint64(1000000) {
		t.Errorf("slice CPUQuotaPerSecUSec %v, want 1000000", slice["CPUQuotaPerSecUSec"])
	}

	// A container restart keeps the sandbox, its IP and the emptyDir
	// contents, disk and memory.
	mustExec(t, name, "app", "sh", "-c", "echo kept > /mem/keep")
	mustExec(t, name, "peer", "touch", "/cache/crash")
	waitFor(t, "app restarted once", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
		if err != nil {
			return false, err
		}
		cs := st.Status.ContainerStatuses[0]
		return cs.RestartCount == 1 && cs.State.Running != nil, nil
	})
	if out := mustExec(t, name, "app", "cat", "/mem/keep", "/cache/peer"); out != "kept\npeer" {
		t.Errorf("emptyDir contents after a container restart: %q", out)
	}
	if st := podState(t, "default", name); st.Status.PodIP != ip {
		t.Errorf("pod IP changed over a container restart: %s → %s", ip, st.Status.PodIP)
	}

	// Deleting the pod removes its directory with the volumes (tmpfs
	// unmounted), and keeps the hostPath.
	podDir := filepath.Join(podshim.DefaultPodRoot, string(st.UID))
	if _, err := os.Stat(podDir); err != nil {
		t.Fatalf("pod directory: %v", err)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-spec.yaml"))
	waitGone(t, unit)
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod directory %s left after the pod was deleted (%v)", podDir, err)
	}
	if mounts, _ := os.ReadFile("/proc/mounts"); strings.Contains(string(mounts), podDir) {
		t.Errorf("a mount of the deleted pod is left:\n%s", mounts)
	}
	if _, err := os.Stat(filepath.Join(hostDir, "sub", "hello")); err != nil {
		t.Errorf("hostPath contents removed with the pod: %v", err)
	}
}

// hostNetwork, hostPID and hostIPC put the containers in the host's
// namespaces.
func TestHostNamespaces(t *testing.T) {
	const name = "e2e-hostns"
	writeManifest(t, "e2e-hostns.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-hostns
spec:
  terminationGracePeriodSeconds: 1
  hostNetwork: true
  hostPID: true
  hostIPC: true
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`)
	unit := waitActive(t, "default", name)
	for _, ns := range []string{"net", "pid", "ipc"} {
		host, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		if out := mustExec(t, name, "app", "readlink", "/proc/self/ns/"+ns); out != host {
			t.Errorf("%s namespace %s, the host's is %s", ns, out, host)
		}
	}
	if out := mustExec(t, name, "app", "cat", "/proc/1/comm"); out != "systemd" {
		t.Errorf("PID 1 seen from a hostPID container: %q, want systemd", out)
	}
	host, _ := os.Hostname()
	if out := mustExec(t, name, "app", "hostname"); out != host {
		t.Errorf("host name in a hostNetwork pod: %q, want the host's %q", out, host)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-hostns.yaml"))
	waitGone(t, unit)
}

// A container whose config cannot be met waits with
// CreateContainerConfigError, with back-off, while the rest of the pod runs;
// it starts once the problem is fixed.
func TestContainerConfigErrorWaits(t *testing.T) {
	const name = "e2e-config-error"
	dir := "/var/lib/e2e-config-error"
	freshDir(t, dir)
	writeManifest(t, "e2e-config-error.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-config-error
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: ok
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
  - name: needs-dir
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    volumeMounts:
    - {name: data, mountPath: /data}
  - name: nonroot
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "sleep 3600"]
    securityContext: {runAsNonRoot: true}
  volumes:
  - name: data
    hostPath: {path: /var/lib/e2e-config-error, type: Directory}
`)
	unit := units.ServiceName("default", name)
	waitFor(t, "both containers waiting with CreateContainerConfigError", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
		if err != nil {
			return false, err
		}
		cs := st.Status.ContainerStatuses
		w1, w2 := cs[1].State.Waiting, cs[2].State.Waiting
		return cs[0].State.Running != nil && w1 != nil && w2 != nil &&
			w1.Reason == "CreateContainerConfigError" && strings.Contains(w1.Message, "/var/lib/e2e-config-error does not exist") &&
			w2.Reason == "CreateContainerConfigError" && strings.Contains(w2.Message, "runAsNonRoot"), nil
	})
	p := unitProps(t, unit)
	if p["ActiveState"] != "activating" || !strings.Contains(p["StatusText"].(string), "CreateContainerConfigError") {
		t.Errorf("unit %s: %v", p["ActiveState"], p["StatusText"])
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "needs-dir running once its directory exists", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
		if err != nil {
			return false, err
		}
		return st.Status.ContainerStatuses[1].State.Running != nil, nil
	})
	os.Remove(filepath.Join(manifestDir, "e2e-config-error.yaml"))
	waitGone(t, unit)
}

// A UDP hostPort is published as a TCP one is, by the CNI portmap plugin
// (containerd) or CRI-O's own nftables table (busybox has no UDP server to
// answer, so the DNAT rule is checked).
func TestUDPHostPort(t *testing.T) {
	const name = "e2e-udp"
	writeManifest(t, "e2e-udp.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-udp
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    ports:
    - {containerPort: 5353, hostPort: 18053, protocol: UDP}
`)
	unit := waitActive(t, "default", name)
	ip := podState(t, "default", name).Status.PodIP
	cmd := exec.Command("iptables", "-t", "nat", "-S")
	want := regexp.MustCompile(`-p udp .*--dport 18053 .*-j DNAT --to-destination ` + regexp.QuoteMeta(ip) + `:5353`)
	if onCRIO() {
		// An element of its map: protocol . hostPort : podIP . podPort.
		cmd = exec.Command("nft", "list", "table", "ip", "crio-hostports")
		want = regexp.MustCompile(`udp \. 18053 [^:]*: ` + regexp.QuoteMeta(ip) + ` \. 5353`)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	if !want.Match(out) {
		t.Errorf("no UDP DNAT rule from 18053 to %s:5353:\n%s", ip, out)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-udp.yaml"))
	waitGone(t, unit)
}
