package podshim

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/podspec"
)

func ptr[T any](v T) *T { return &v }

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

	cc, release, err := s.containerConfig(context.Background(), c, "busybox:1", 0)
	defer release()
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]*runtimeapi.Mount{}
	for _, m := range cc.Mounts {
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
		pin, pinned, err := checkHostPath(&corev1.HostPathVolumeSource{Path: tc.path, Type: ptr(tc.typ)})
		if (err == nil) != tc.ok {
			t.Errorf("%s as %q: err %v, want ok=%v", tc.path, tc.typ, err, tc.ok)
		}
		if pinned {
			pin.release()
		}
	}
	os.Symlink("/etc", filepath.Join(dir, "escape"))
	if _, err := subPath(dir, "escape"); err == nil || !strings.Contains(err.Error(), "leaves the volume") {
		t.Errorf("subPath through a symlink out of the volume: %v", err)
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

// ConfigMaps and Secrets become the files of their volumes, read-only, a
// Secret's on a tmpfs (their use in env is criconfig's).
func TestConfigMapsAndSecretsInVolumes(t *testing.T) {
	pod := testPod()
	c := &pod.Spec.Containers[0]
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
	cc, release, err := s.containerConfig(context.Background(), c, "busybox:1", 0)
	defer release()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cc.Mounts[:2] {
		if !m.Readonly {
			t.Errorf("mount %s must be read-only", m.ContainerPath)
		}
	}
}

// A subPath below a symlink a container planted is refused before anything
// is made: no directory appears outside the volume. Inside the volume,
// missing directories are made and symlinks that stay inside are followed.
func TestSubPathMakesNothingOutsideTheVolume(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	os.Symlink(outside, filepath.Join(root, "escape"))
	os.Mkdir(filepath.Join(root, "real"), 0o755)
	os.Symlink("real", filepath.Join(root, "alias"))
	if _, err := subPath(root, "escape/made-by-podunit"); err == nil || !strings.Contains(err.Error(), "leaves the volume") {
		t.Errorf("subPath through an escaping symlink: %v", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("made outside the volume: %v", entries)
	}
	got, err := subPath(root, "alias/a/b")
	realRoot, _ := filepath.EvalSymlinks(root)
	if err != nil || got != filepath.Join(realRoot, "real", "a", "b") {
		t.Errorf("subPath through a symlink inside the volume: %q %v", got, err)
	}
	if fi, err := os.Stat(got); err != nil || !fi.IsDir() {
		t.Errorf("not made: %v", err)
	}
}

// A hostPath swapped for a symlink between its type check and the
// container's creation (by a pod that can write the parent directory)
// still mounts the directory that was checked: the runtime, which resolves
// every mount's source as containerd does (filepath.EvalSymlinks), is
// given the checked file's descriptor. The swap's target is never named.
func TestHostPathSwappedAfterCheck(t *testing.T) {
	dir := t.TempDir()
	data, secret := filepath.Join(dir, "data"), filepath.Join(dir, "secret")
	os.Mkdir(data, 0o755)
	os.Mkdir(secret, 0o700)
	pod := testPod()
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: data, Type: ptr(corev1.HostPathDirectory)}}}}
	c := &pod.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	s := newShim(t, pod, newFakeCRI("busybox:1"), &notes{})
	if err := s.setupPodDir(); err != nil {
		t.Fatal(err)
	}
	cc, release, err := s.containerConfig(context.Background(), c, "busybox:1", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The swap, after the check.
	if err := os.Rename(data, data+"-checked"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, data); err != nil {
		t.Fatal(err)
	}
	var source string
	for _, m := range cc.Mounts {
		if m.ContainerPath == "/data" {
			source = m.HostPath
		}
	}
	resolved, err := filepath.EvalSymlinks(source)
	if err != nil {
		t.Fatal(err)
	}
	if resolved != data+"-checked" {
		t.Errorf("the runtime would mount %s (config %s), not the checked directory %s-checked", resolved, source, data)
	}
	release()
	if _, err := os.Stat(source); err == nil {
		t.Errorf("%s still open after release", source)
	}

	// The type is checked on what is pinned: a symlink to a file where a
	// directory is wanted is refused.
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	os.Remove(data)
	os.Symlink(filepath.Join(dir, "file"), data)
	if _, _, err := s.containerConfig(context.Background(), c, "busybox:1", 1); err == nil || !strings.Contains(err.Error(), "is not a Directory") {
		t.Errorf("a symlink to a file as a Directory hostPath: %v", err)
	}
}
