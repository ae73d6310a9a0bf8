package podshim

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/podspec"
)

func ptr[T any](v T) *T { return &v }

func resources(cpuReq, memReq, cpuLim, memLim string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for _, x := range []struct {
		list corev1.ResourceList
		name corev1.ResourceName
		v    string
	}{{r.Requests, "cpu", cpuReq}, {r.Requests, "memory", memReq}, {r.Limits, "cpu", cpuLim}, {r.Limits, "memory", memLim}} {
		if x.v != "" {
			x.list[x.name] = resource.MustParse(x.v)
		}
	}
	return r
}

func TestQoSAndCgroupSettingsAsTheKubelet(t *testing.T) {
	for _, tc := range []struct {
		name     string
		res      corev1.ResourceRequirements
		qos      corev1.PodQOSClass
		shares   int64
		quota    int64
		memory   int64
		oomScore int64
	}{
		{"none", resources("", "", "", ""), corev1.PodQOSBestEffort, 2, 0, 0, 1000},
		{"limits=requests", resources("500m", "64Mi", "500m", "64Mi"), corev1.PodQOSGuaranteed, 512, 50000, 64 << 20, -997},
		// 1 GiB requested of a 4 GiB host: 1000 - 250.
		{"burstable", resources("250m", "1Gi", "", ""), corev1.PodQOSBurstable, 256, 0, 0, 750},
		{"tiny cpu limit", resources("1m", "", "1m", ""), corev1.PodQOSBurstable, 2, 1000, 0, 999},
		// kubeadm's control plane: node-critical, killed last whatever its QoS.
		{"node-critical", resources("100m", "100Mi", "", ""), corev1.PodQOSBurstable, 102, 0, 0, -997},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod()
			pod.Spec.Containers[0].Resources = tc.res
			if tc.name == "node-critical" {
				pod.Spec.PriorityClassName = "system-node-critical"
			}
			s := newShim(t, pod, newFakeCRI(), &notes{})
			s.cfg.Host.Memory = 4 << 30
			if got := qosClass(pod); got != tc.qos {
				t.Errorf("QoS %s, want %s", got, tc.qos)
			}
			r := s.linuxResources(&pod.Spec.Containers[0])
			if r.CpuShares != tc.shares || r.CpuQuota != tc.quota || r.MemoryLimitInBytes != tc.memory || r.OomScoreAdj != tc.oomScore {
				t.Errorf("resources: shares %d quota %d memory %d oom %d; want %d %d %d %d",
					r.CpuShares, r.CpuQuota, r.MemoryLimitInBytes, r.OomScoreAdj, tc.shares, tc.quota, tc.memory, tc.oomScore)
			}
			if tc.quota != 0 && r.CpuPeriod != 100000 {
				t.Errorf("CFS period %d, want 100000", r.CpuPeriod)
			}
		})
	}
}

// With pod-level resources the pod's QoS class comes from them, as in
// Kubernetes: limits equal to requests for cpu and memory make it
// Guaranteed whatever its containers say.
func TestQoSFromPodLevelResources(t *testing.T) {
	pod := testPod()
	pod.Spec.Containers[0].Resources = resources("", "", "", "")
	pod.Spec.Resources = &corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
	}
	if got := qosClass(pod); got != corev1.PodQOSGuaranteed {
		t.Errorf("QoS %s, want Guaranteed", got)
	}
	pod.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}
	if got := qosClass(pod); got != corev1.PodQOSBurstable {
		t.Errorf("QoS %s, want Burstable", got)
	}
}

func TestDownwardAPIEnvAndResourceValues(t *testing.T) {
	pod := testPod()
	pod.Annotations = map[string]string{"team": "shop"}
	c := &pod.Spec.Containers[0]
	c.Resources = resources("250m", "", "", "128Mi")
	c.Env = []corev1.EnvVar{
		{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
		{Name: "TEAM", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['team']"}}},
		{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "HOST_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
		{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "MEM_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
		{Name: "CPU_M", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
		// No cpu limit: the host's CPUs, rounded up in whole cores.
		{Name: "CPUS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
		{Name: "GREETING", Value: "$(POD) in $(NS)"},
	}
	s := newShim(t, pod, newFakeCRI("busybox:1"), &notes{})
	s.cfg.Host = Host{NodeName: "edge-1", IPs: []string{"192.0.2.7"}, CPUs: 4, Memory: 8 << 30}
	s.podIPs = []string{"10.88.0.5"}
	cfg, err := s.containerConfig(context.Background(), c, "sha256:abc", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range cfg.Envs {
		got[kv.Key] = string(kv.Value)
	}
	want := map[string]string{"POD": "web", "NS": "shop", "APP": "web", "TEAM": "shop", "IP": "10.88.0.5", "HOST_IP": "192.0.2.7",
		"NODE": "edge-1", "MEM_MI": "128", "CPU_M": "250", "CPUS": "4", "GREETING": "web in shop"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("env %s=%q, want %q", k, got[k], v)
		}
	}
}

func TestPodDirectoryHostsVolumesAndMounts(t *testing.T) {
	pod := testPod()
	pod.Spec.Hostname, pod.Spec.Subdomain = "web-1", "frontend"
	pod.Spec.HostAliases = []corev1.HostAlias{{IP: "192.0.2.10", Hostnames: []string{"db", "db.local"}}}
	hostDir := t.TempDir()
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(hostDir, "made"), Type: ptr(corev1.HostPathDirectoryOrCreate)}}},
		{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{DefaultMode: ptr(int32(0o644)), Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "sub/name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}, Mode: ptr(int32(0o600))},
		}}}},
	}
	c := &pod.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "cache", MountPath: "/cache"},
		{Name: "cache", MountPath: "/data", SubPath: "data/app"},
		{Name: "host", MountPath: "/host", ReadOnly: true},
		{Name: "info", MountPath: "/etc/podinfo"},
	}
	s := newShim(t, pod, newFakeCRI("busybox:1"), &notes{})
	s.podIPs = []string{"10.88.0.5"}
	if err := s.setupPodDir(); err != nil {
		t.Fatal(err)
	}
	hosts, _ := os.ReadFile(s.etcHostsPath())
	for _, line := range []string{"127.0.0.1\tlocalhost\n", "10.88.0.5\tweb-1.frontend.shop.svc.cluster.local\tweb-1\n", "192.0.2.10\tdb\tdb.local\n"} {
		if !strings.Contains(string(hosts), line) {
			t.Errorf("/etc/hosts lacks %q:\n%s", line, hosts)
		}
	}
	labels, _ := os.ReadFile(filepath.Join(s.volumeDir("downward-api", "info"), "labels"))
	if string(labels) != `app="web"` {
		t.Errorf("downwardAPI labels file %q", labels)
	}
	if fi, err := os.Stat(filepath.Join(s.volumeDir("downward-api", "info"), "sub/name")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("downwardAPI item mode: %v %v", fi, err)
	}
	if fi, err := os.Stat(s.volumeDir("empty-dir", "cache")); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("emptyDir: %v %v", fi, err)
	}

	mounts, err := s.containerMounts(c)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]*runtimeapi.Mount{}
	for _, m := range mounts {
		byPath[m.ContainerPath] = m
	}
	if m := byPath["/data"]; m == nil || m.HostPath != filepath.Join(s.volumeDir("empty-dir", "cache"), "data/app") {
		t.Errorf("subPath mount %+v", m)
	} else if fi, err := os.Stat(m.HostPath); err != nil || !fi.IsDir() {
		t.Errorf("subPath not made as a directory: %v", err)
	}
	if m := byPath["/host"]; m == nil || !m.Readonly {
		t.Errorf("read-only hostPath mount %+v", m)
	} else if fi, err := os.Stat(m.HostPath); err != nil || !fi.IsDir() {
		t.Errorf("DirectoryOrCreate did not make %s: %v", m.HostPath, err)
	}
	if m := byPath["/etc/podinfo"]; m == nil || !m.Readonly {
		t.Errorf("downwardAPI mount must be read-only: %+v", m)
	}
	if m := byPath["/etc/hosts"]; m == nil || m.HostPath != s.etcHostsPath() {
		t.Errorf("/etc/hosts mount %+v", m)
	}

	if err := s.removePodDir(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.podDir()); !os.IsNotExist(err) {
		t.Errorf("pod directory left after removal: %v", err)
	}
}

func TestHostPathTypeChecksAndSubPathEscape(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		path string
		typ  corev1.HostPathType
		ok   bool
	}{
		{dir, corev1.HostPathDirectory, true},
		{file, corev1.HostPathDirectory, false},
		{file, corev1.HostPathFile, true},
		{filepath.Join(dir, "missing"), corev1.HostPathFile, false},
		{filepath.Join(dir, "new-file"), corev1.HostPathFileOrCreate, true},
		{dir, corev1.HostPathSocket, false},
		{"/dev/null", corev1.HostPathCharDev, true},
		{filepath.Join(dir, "anything"), corev1.HostPathUnset, true},
	} {
		err := checkHostPath(&corev1.HostPathVolumeSource{Path: tc.path, Type: ptr(tc.typ)})
		if (err == nil) != tc.ok {
			t.Errorf("%s as %q: err %v, want ok=%v", tc.path, tc.typ, err, tc.ok)
		}
	}
	os.Symlink("/etc", filepath.Join(dir, "escape"))
	if _, err := subPath(dir, "escape"); err == nil || !strings.Contains(err.Error(), "leaves the volume") {
		t.Errorf("subPath through a symlink out of the volume: %v", err)
	}
}

func TestSecurityContextAndNamespaces(t *testing.T) {
	pod := testPod()
	pod.Spec.HostPID, pod.Spec.HostIPC = true, true
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(1000)), SupplementalGroups: []int64{5},
		Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}}
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
		RunAsUser: ptr(int64(2000)), ReadOnlyRootFilesystem: ptr(true), AllowPrivilegeEscalation: ptr(false),
		Capabilities:   &corev1.Capabilities{Add: []corev1.Capability{"CAP_NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	s := newShim(t, pod, newFakeCRI(), &notes{})
	sb := s.newSandboxConfig(0)
	ns := sb.Linux.SecurityContext.NamespaceOptions
	if ns.Pid != runtimeapi.NamespaceMode_NODE || ns.Ipc != runtimeapi.NamespaceMode_NODE || ns.Network != runtimeapi.NamespaceMode_POD {
		t.Errorf("namespaces %v", ns)
	}
	if sb.Linux.Sysctls["net.ipv4.ip_unprivileged_port_start"] != "0" {
		t.Errorf("sysctls %v", sb.Linux.Sysctls)
	}
	sc := s.containerSecurityContext(&pod.Spec.Containers[0])
	if sc.RunAsUser.GetValue() != 2000 || !slices.Equal(sc.SupplementalGroups, []int64{5}) || !sc.ReadonlyRootfs || !sc.NoNewPrivs {
		t.Errorf("security context %+v", sc)
	}
	if !slices.Equal(sc.Capabilities.AddCapabilities, []string{"NET_ADMIN"}) || !slices.Equal(sc.Capabilities.DropCapabilities, []string{"ALL"}) {
		t.Errorf("capabilities %+v", sc.Capabilities)
	}
	if sc.Seccomp.ProfileType != runtimeapi.SecurityProfile_RuntimeDefault || !slices.Contains(sc.MaskedPaths, "/proc/kcore") {
		t.Errorf("seccomp %v, masked %v", sc.Seccomp, sc.MaskedPaths)
	}
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
	if !s.newSandboxConfig(0).Linux.SecurityContext.Privileged || len(s.containerSecurityContext(&pod.Spec.Containers[0]).MaskedPaths) != 0 {
		t.Error("a privileged container needs a privileged sandbox and no masked paths")
	}
}

func TestRunAsNonRootWaitsWithCreateContainerConfigError(t *testing.T) {
	pod := testPod()
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr(true)}
	rt := newFakeCRI("busybox:1") // the fake image has no user: root
	n := &notes{}
	s := newShim(t, pod, rt, n)
	ctx := context.Background()
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
	c := s.containers[0]
	if c.waiting == nil || c.waiting.Reason != "CreateContainerConfigError" || !strings.Contains(c.waiting.Message, "runAsNonRoot") {
		t.Fatalf("waiting %+v", c.waiting)
	}
	if c.id != "" {
		t.Error("a container was created for a root image under runAsNonRoot")
	}
	if !strings.Contains(n.all(), "CreateContainerConfigError") {
		t.Errorf("STATUS does not say why: %s", n.all())
	}
}

func TestDNSFromHostAndDNSConfig(t *testing.T) {
	dir := t.TempDir()
	resolv := filepath.Join(dir, "resolv.conf")
	os.WriteFile(resolv, []byte("# generated\nnameserver 192.0.2.53\nsearch example.org\noptions ndots:2 edns0\n"), 0o644)
	pod := testPod()
	pod.Spec.DNSPolicy = corev1.DNSClusterFirst
	pod.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.54"}, Searches: []string{"svc.example.org"},
		Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("5")}, {Name: "single-request"}}}
	s := newShim(t, pod, newFakeCRI(), &notes{})
	s.cfg.ResolvConf = resolv
	d := s.dnsConfig()
	if !slices.Equal(d.Servers, []string{"192.0.2.53", "192.0.2.54"}) || !slices.Equal(d.Searches, []string{"example.org", "svc.example.org"}) ||
		!slices.Equal(d.Options, []string{"ndots:5", "edns0", "single-request"}) {
		t.Errorf("DNS %+v", d)
	}
	pod.Spec.DNSPolicy = corev1.DNSNone
	if d := s.dnsConfig(); !slices.Equal(d.Servers, []string{"192.0.2.54"}) || len(d.Searches) != 1 {
		t.Errorf("dnsPolicy None: %+v", d)
	}
}

func TestConfigMapsAndSecretsInEnvAndVolumes(t *testing.T) {
	pod := testPod()
	c := &pod.Spec.Containers[0]
	c.EnvFrom = []corev1.EnvFromSource{
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
		{Prefix: "DB_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr(true)}},
	}
	c.Env = []corev1.EnvVar{
		{Name: "MODE", Value: "override"},
		{Name: "URL", Value: "db://$(DB_user)@host"},
		{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
		{Name: "MISSING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "nope", Optional: ptr(true)}}},
	}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, DefaultMode: ptr(int32(0o644))}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr(int32(0o400)),
			Items: []corev1.KeyToPath{{Key: "password", Path: "db/password"}}}}},
	}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "conf", MountPath: "/etc/app"}, {Name: "creds", MountPath: "/run/creds"}}
	s := newShim(t, pod, newFakeCRI("busybox:1"), &notes{})
	s.cfg.Objects = podspec.Objects{
		ConfigMaps: []corev1.ConfigMap{{ObjectMeta: metav1ObjectMeta("settings", "shop", "", nil), Data: map[string]string{"MODE": "fast", "bad key": "x", "app.conf": "port=80"}}},
		Secrets:    []corev1.Secret{{ObjectMeta: metav1ObjectMeta("creds", "shop", "", nil), Data: map[string][]byte{"user": []byte("admin"), "password": []byte("pw")}}},
	}
	envs, _, err := s.containerEnv(c)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range envs {
		got = append(got, kv.Key+"="+string(kv.Value))
	}
	want := []string{"MODE=override", "app.conf=port=80", "DB_password=pw", "DB_user=admin", "URL=db://admin@host", "PASSWORD=pw"}
	if !slices.Equal(got, want) {
		t.Errorf("env %q, want %q", got, want)
	}

	if err := s.setupPodDir(); err != nil {
		t.Skipf("volumes need root for their tmpfs: %v", err)
	}
	defer s.removePodDir()
	if b, _ := os.ReadFile(filepath.Join(s.volumeDir("configmap", "conf"), "app.conf")); string(b) != "port=80" {
		t.Errorf("configMap file %q", b)
	}
	secretFile := filepath.Join(s.volumeDir("secret", "creds"), "db/password")
	if fi, err := os.Stat(secretFile); err != nil || fi.Mode().Perm() != 0o400 {
		t.Errorf("secret file %v %v", fi, err)
	}
	if !isMountPoint(s.volumeDir("secret", "creds")) {
		t.Error("a secret volume must be on a tmpfs")
	}
	if _, err := os.Stat(filepath.Join(s.volumeDir("secret", "creds"), "user")); err == nil {
		t.Error("a key not in items was written")
	}
	mounts, err := s.containerMounts(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts[:2] {
		if !m.Readonly {
			t.Errorf("mount %s must be read-only", m.ContainerPath)
		}
	}
}

// hostUsers: false puts the pod in a user namespace of its own: the same
// 65536 host IDs for the same pod (an adopting podshim maps it again so),
// never the host's first range.
func TestUserNamespace(t *testing.T) {
	pod := testPod()
	no := false
	pod.Spec.HostUsers = &no
	s := newShim(t, pod, newFakeCRI(), &notes{})
	ns := s.namespaceOptions().UsernsOptions
	if ns == nil || ns.Mode != runtimeapi.NamespaceMode_POD || len(ns.Uids) != 1 || ns.Uids[0].Length != 65536 ||
		ns.Uids[0].HostId < 65536 || ns.Uids[0].HostId%65536 != 0 || ns.Gids[0].HostId != ns.Uids[0].HostId {
		t.Fatalf("user namespace %+v", ns)
	}
	if again := userNamespace(pod.UID); again.Uids[0].HostId != ns.Uids[0].HostId {
		t.Error("the range changes for the same pod")
	}
	pod.Spec.HostUsers = nil
	if s.namespaceOptions().UsernsOptions != nil {
		t.Error("a user namespace without hostUsers: false")
	}
}
