package criconfig

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/podspec"
)

func ptr[T any](v T) *T { return &v }

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "uid-1", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr(int64(7)),
			Containers: []corev1.Container{{
				Name: "app", Image: "busybox:1", ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c"}, Args: []string{"echo $(GREETING) $$(GREETING) $(UNDEFINED)"},
				Env:   []corev1.EnvVar{{Name: "NAME", Value: "world"}, {Name: "GREETING", Value: "hello $(NAME)"}},
				Ports: []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: corev1.ProtocolTCP}},
			}},
		},
	}
}

func testInput(pod *corev1.Pod) *Input {
	return &Input{Pod: pod, Paths: Paths{PodDir: "/var/lib/podunit/pods/uid-1", VolumeRoot: "/var/lib/podunit/volumes",
		LogRoot: "/var/log/pods", CgroupParent: "podunit-shop_web.slice"}}
}

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

func TestSandboxAndContainerConfig(t *testing.T) {
	in := testInput(testPod())
	sb := Sandbox(in, 2)
	if sb.Metadata.Attempt != 2 || sb.Linux.CgroupParent != "podunit-shop_web.slice" ||
		sb.LogDirectory != "/var/log/pods/shop_web_uid-1" {
		t.Errorf("sandbox config %+v", sb)
	}
	if len(sb.PortMappings) != 1 || sb.PortMappings[0].HostPort != 8080 || sb.PortMappings[0].ContainerPort != 80 {
		t.Errorf("port mappings %v", sb.PortMappings)
	}
	c, err := Container(in, &in.Pod.Spec.Containers[0], "sha256:abc", 3)
	if err != nil {
		t.Fatal(err)
	}
	if c.LogPath != "app/3.log" || c.Image.Image != "sha256:abc" || c.Image.UserSpecifiedImage != "busybox:1" {
		t.Errorf("container config %+v", c)
	}
	// $(VAR) is expanded as the kubelet does: from earlier variables, $$ escapes, undefined stays.
	if got, want := c.Args[0], "echo hello world $(GREETING) $(UNDEFINED)"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if got := string(c.Envs[1].Value); got != "hello world" {
		t.Errorf("GREETING = %q", got)
	}
	if c.Annotations["io.kubernetes.container.restartCount"] != "3" || c.Annotations["io.kubernetes.pod.terminationGracePeriod"] != "7" {
		t.Errorf("annotations %v", c.Annotations)
	}
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
			in := testInput(pod)
			in.Host.Memory = 4 << 30
			if got := QOSClass(pod); got != tc.qos {
				t.Errorf("QoS %s, want %s", got, tc.qos)
			}
			r := in.linuxResources(&pod.Spec.Containers[0])
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
	if got := QOSClass(pod); got != corev1.PodQOSGuaranteed {
		t.Errorf("QoS %s, want Guaranteed", got)
	}
	pod.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}
	if got := QOSClass(pod); got != corev1.PodQOSBurstable {
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
	in := testInput(pod)
	in.Host = Host{NodeName: "edge-1", IPs: []string{"192.0.2.7"}, CPUs: 4, Memory: 8 << 30}
	in.PodIPs = []string{"10.88.0.5"}
	cfg, err := Container(in, c, "sha256:abc", 0)
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
	c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "nope", Resource: "limits.cpu"}}}}
	if _, err := Container(in, c, "sha256:abc", 0); err == nil {
		t.Error("a resourceFieldRef to no container made a config")
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
	in := testInput(pod)
	sb := Sandbox(in, 0)
	ns := sb.Linux.SecurityContext.NamespaceOptions
	if ns.Pid != runtimeapi.NamespaceMode_NODE || ns.Ipc != runtimeapi.NamespaceMode_NODE || ns.Network != runtimeapi.NamespaceMode_POD {
		t.Errorf("namespaces %v", ns)
	}
	if sb.Linux.Sysctls["net.ipv4.ip_unprivileged_port_start"] != "0" {
		t.Errorf("sysctls %v", sb.Linux.Sysctls)
	}
	sc := in.containerSecurityContext(&pod.Spec.Containers[0])
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
	if !Sandbox(in, 0).Linux.SecurityContext.Privileged || len(in.containerSecurityContext(&pod.Spec.Containers[0]).MaskedPaths) != 0 {
		t.Error("a privileged container needs a privileged sandbox and no masked paths")
	}
}

func TestDNSFromHostAndDNSConfig(t *testing.T) {
	pod := testPod()
	pod.Spec.DNSPolicy = corev1.DNSClusterFirst
	pod.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.54"}, Searches: []string{"svc.example.org"},
		Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("5")}, {Name: "single-request"}}}
	in := testInput(pod)
	in.HostDNS = ParseResolvConf([]byte("# generated\nnameserver 192.0.2.53\nsearch example.org\noptions ndots:2 edns0\n"))
	d := in.dnsConfig()
	if !slices.Equal(d.Servers, []string{"192.0.2.53", "192.0.2.54"}) || !slices.Equal(d.Searches, []string{"example.org", "svc.example.org"}) ||
		!slices.Equal(d.Options, []string{"ndots:5", "edns0", "single-request"}) {
		t.Errorf("DNS %+v", d)
	}
	if !slices.Equal(in.HostDNS.Options, []string{"ndots:2", "edns0"}) {
		t.Errorf("the host's configuration was changed: %+v", in.HostDNS)
	}
	pod.Spec.DNSPolicy = corev1.DNSNone
	if d := in.dnsConfig(); !slices.Equal(d.Servers, []string{"192.0.2.54"}) || len(d.Searches) != 1 {
		t.Errorf("dnsPolicy None: %+v", d)
	}
}

func TestConfigMapsAndSecretsInEnv(t *testing.T) {
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
	in := testInput(pod)
	in.Objects = podspec.Objects{
		ConfigMaps: []corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "shop"}, Data: map[string]string{"MODE": "fast", "bad key": "x", "app.conf": "port=80"}}},
		Secrets:    []corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "shop"}, Data: map[string][]byte{"user": []byte("admin"), "password": []byte("pw")}}},
	}
	envs, _, err := in.containerEnv(c)
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
}

// hostUsers: false puts the pod in a user namespace of its own: the same
// 65536 host IDs for the same pod (an adopting podshim maps it again so),
// never the host's first range.
func TestUserNamespace(t *testing.T) {
	pod := testPod()
	pod.Spec.HostUsers = ptr(false)
	in := testInput(pod)
	ns := in.namespaceOptions().UsernsOptions
	if ns == nil || ns.Mode != runtimeapi.NamespaceMode_POD || len(ns.Uids) != 1 || ns.Uids[0].Length != 65536 ||
		ns.Uids[0].HostId < 65536 || ns.Uids[0].HostId%65536 != 0 || ns.Gids[0].HostId != ns.Uids[0].HostId {
		t.Fatalf("user namespace %+v", ns)
	}
	if again := userNamespace(pod.UID); again.Uids[0].HostId != ns.Uids[0].HostId {
		t.Error("the range changes for the same pod")
	}
	pod.Spec.HostUsers = nil
	if in.namespaceOptions().UsernsOptions != nil {
		t.Error("a user namespace without hostUsers: false")
	}
}

// The mounts of a container in the pod's layout: volumes where the kubelet
// has them, subPaths joined (podshim resolves them), read-only where
// Kubernetes makes them so, /etc/hosts and the termination-message file.
func TestMounts(t *testing.T) {
	pod := testPod()
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/data"}}},
		{Name: "claim", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "db", ReadOnly: true}}},
		{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}},
	}
	hostToContainer := corev1.MountPropagationHostToContainer
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "cache", MountPath: "/data", SubPath: "data/app"},
		{Name: "host", MountPath: "/host", MountPropagation: &hostToContainer},
		{Name: "claim", MountPath: "/db"},
		{Name: "conf", MountPath: "/etc/app"},
	}
	cc, err := Container(testInput(pod), &pod.Spec.Containers[0], "busybox:1", 4)
	if err != nil {
		t.Fatal(err)
	}
	type m struct {
		container, host string
		ro              bool
		prop            runtimeapi.MountPropagation
	}
	var got []m
	for _, x := range cc.Mounts {
		got = append(got, m{x.ContainerPath, x.HostPath, x.Readonly, x.Propagation})
	}
	want := []m{
		{"/data", "/var/lib/podunit/pods/uid-1/volumes/kubernetes.io~empty-dir/cache/data/app", false, 0},
		{"/host", "/srv/data", false, runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{"/db", "/var/lib/podunit/volumes/shop/db", true, 0},
		{"/etc/app", "/var/lib/podunit/pods/uid-1/volumes/kubernetes.io~configmap/conf", true, 0},
		{"/etc/hosts", "/var/lib/podunit/pods/uid-1/etc-hosts", false, 0},
		{"/dev/termination-log", "/var/lib/podunit/pods/uid-1/containers/app/termination-log-4", false, 0},
	}
	if !slices.Equal(got, want) {
		t.Errorf("mounts\n%v\nwant\n%v", got, want)
	}
	// A volume mounted at the termination-message path: no file of podunit's.
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cache", MountPath: "/dev/termination-log"}}
	cc, _ = Container(testInput(pod), &pod.Spec.Containers[0], "busybox:1", 4)
	if n := len(cc.Mounts); n != 2 {
		t.Errorf("%d mounts over a volume at the termination-message path, want 2 (it and /etc/hosts)", n)
	}
}

// An image volume is the runtime's to mount: the image (its ID once
// pulled, else its reference), read-only whatever the mount says, a subPath
// as the image's directory; nothing of the host.
func TestImageVolumeMounts(t *testing.T) {
	pod := testPod()
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "tools", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "localhost/tools:1", PullPolicy: corev1.PullIfNotPresent}}},
		{Name: "models", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: "localhost/models:2", PullPolicy: corev1.PullIfNotPresent}}},
	}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "tools", MountPath: "/tools"},
		{Name: "models", MountPath: "/models", SubPath: "small", ReadOnly: false},
	}
	in := testInput(pod)
	in.ImageVolumes = map[string]string{"tools": "sha256:0123"}
	c, err := Container(in, &pod.Spec.Containers[0], "busybox:1", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []*runtimeapi.Mount{
		{ContainerPath: "/tools", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "sha256:0123", UserSpecifiedImage: "localhost/tools:1"}},
		{ContainerPath: "/models", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "localhost/models:2", UserSpecifiedImage: "localhost/models:2"}, ImageSubPath: "small"},
	}
	for i, w := range want {
		m := c.Mounts[i]
		if m.ContainerPath != w.ContainerPath || !m.Readonly || m.HostPath != "" || m.Image.GetImage() != w.Image.Image ||
			m.Image.GetUserSpecifiedImage() != w.Image.UserSpecifiedImage || m.ImageSubPath != w.ImageSubPath {
			t.Errorf("mount %d = %+v, want %+v", i, m, w)
		}
	}
}
