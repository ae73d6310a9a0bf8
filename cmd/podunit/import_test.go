package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units/engine/enginetest"
)

// TestImportQuadlet: the command writes each unit's manifest into the
// manifest directory, reports every key, writes nothing with --dry-run, is
// idempotent, refuses a file it did not write unless --force, and writes
// the good units when one is bad (exit status 3).
func TestImportQuadlet(t *testing.T) {
	units, manifests := t.TempDir(), t.TempDir()
	enginetest.Write(t, units, "db.kube", "[Kube]\nYaml=db.yaml\nPublishPort=5432:5432\n[Install]\nWantedBy=default.target\n")
	enginetest.Write(t, units, "db.yaml", enginetest.Pod("db", "img:1"))
	enginetest.Write(t, units, "web.kube", "[Unit]\nAfter=db.kube\n[Kube]\nYaml=web.yaml\nAutoUpdate=registry\n")
	enginetest.Write(t, units, "web.yaml", enginetest.Pod("web", "img:1"))
	enginetest.Write(t, units, "none.yaml", "") // an empty configuration
	importQ := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(append([]string{"import", "quadlet", "--manifest-dir", manifests, "--config", filepath.Join(units, "none.yaml")}, args...), &out, io.Discard)
		return out.String(), err
	}
	out, err := importQ("--dry-run", units)
	if err != nil || !strings.Contains(out, "would be written") || !strings.Contains(out, "hostPort: 5432") || !strings.Contains(out, "systemctl disable --now db.service web.service") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(manifests); len(entries) != 0 {
		t.Fatalf("the dry run wrote %v", entries)
	}
	out, err = importQ(units)
	if err != nil || strings.Count(out, ": created") != 2 || !strings.Contains(out, "[Unit] After=db.kube: carried over: starts once the pods of db.kube are ready") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	web, _ := os.ReadFile(filepath.Join(manifests, "web.yaml"))
	for _, want := range []string{"# podunit import quadlet: " + filepath.Join(units, "web.kube") + "\n", "podunit.io/after: db", "io.containers.autoupdate: registry"} {
		if !strings.Contains(string(web), want) {
			t.Errorf("web.yaml lacks %q:\n%s", want, web)
		}
	}
	if out, err = importQ(filepath.Join(units, "web.kube"), filepath.Join(units, "db.kube")); err != nil || strings.Count(out, ": unchanged") != 2 {
		t.Errorf("again: %v\n%s", err, out)
	}
	// A file of the same name the import did not write is refused; the
	// other unit is imported, and the exit status says some were not.
	enginetest.Write(t, manifests, "db.yaml", enginetest.Pod("db", "img:2"))
	enginetest.Write(t, units, "web.kube", "[Unit]\nAfter=db.kube\n[Kube]\nYaml=web.yaml\nAutoUpdate=local\n")
	out, err = importQ(units)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitInvalid || !strings.Contains(out, "db.yaml exists, not written by podunit import quadlet") || !strings.Contains(out, "web.yaml: configured") {
		t.Errorf("a foreign file: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(manifests, "db.yaml")); !strings.Contains(string(b), "img:2") {
		t.Errorf("the foreign file was replaced:\n%s", b)
	}
	if out, err = importQ("--force", filepath.Join(units, "db.kube")); err != nil || !strings.Contains(out, "db.yaml: configured") {
		t.Errorf("--force: %v\n%s", err, out)
	}
	// A file that is not a .kube unit is refused.
	if _, err := importQ(filepath.Join(units, "db.yaml")); err == nil {
		t.Error("a .yaml file was imported as a unit")
	}
}

// TestImportQuadletSharedObjects: units that each define a ConfigMap of
// one name import into a manifest directory sync accepts (podunit validate
// exits 0): one defined the same (a file two units share, or an earlier
// import's) is written once; one defined otherwise refuses its unit,
// naming both files, and nothing that needs it is written.
func TestImportQuadletSharedObjects(t *testing.T) {
	units, manifests := t.TempDir(), t.TempDir()
	enginetest.Write(t, units, "none.yaml", "")
	cm := func(listen string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {LISTEN: " + listen + "}\n"
	}
	pod := func(name string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n  containers: [{name: c, image: \"img:1\", envFrom: [{configMapRef: {name: app-config}}]}]\n"
	}
	unit := "[Kube]\nConfigMap=cm.yaml\nYaml=pod.yaml\n[Install]\nWantedBy=default.target\n"
	for _, d := range []string{"web", "api", "twin"} {
		if err := os.Mkdir(filepath.Join(units, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"web", "api"} {
		enginetest.Write(t, units, name+"/"+name+".kube", unit)
		enginetest.Write(t, units, name+"/cm.yaml", cm(name))
		enginetest.Write(t, units, name+"/pod.yaml", pod(name))
	}
	run2 := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(append(args, "--config", filepath.Join(units, "none.yaml")), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	validate := func() {
		t.Helper()
		if out, err := run2("validate", manifests); err != nil {
			t.Errorf("podunit validate of the imports: %v\n%s", err, out)
		}
	}
	out, err := run2("import", "quadlet", "--manifest-dir", manifests, units)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitInvalid || !strings.Contains(out, "api.yaml: created") ||
		!strings.Contains(out, "ConfigMap default/app-config of "+filepath.Join(units, "web", "cm.yaml")+" differs from the one of "+filepath.Join(units, "api", "cm.yaml")) {
		t.Fatalf("two ConfigMaps of one name: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(manifests, "web.yaml")); err == nil {
		t.Error("web.yaml was written: its pods would run with api's ConfigMap")
	}
	validate()

	// The same ConfigMap: written once, also when imported in two runs.
	enginetest.Write(t, units, "web/cm.yaml", cm("api"))
	if out, err = run2("import", "quadlet", "--manifest-dir", manifests, units); err != nil || !strings.Contains(out, "web.yaml: created") ||
		!strings.Contains(out, "ConfigMap default/app-config: carried over: left out of this manifest") {
		t.Fatalf("the same ConfigMap: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(manifests, "web.yaml")); strings.Contains(string(b), "kind: ConfigMap") {
		t.Errorf("web.yaml defines the ConfigMap again:\n%s", b)
	}
	validate()
	os.Remove(filepath.Join(manifests, "web.yaml"))
	if out, err = run2("import", "quadlet", "--manifest-dir", manifests, filepath.Join(units, "web", "web.kube")); err != nil || !strings.Contains(out, "web.yaml: created") {
		t.Fatalf("beside an earlier import: %v\n%s", err, out)
	}
	validate()

	// A manifest that leaves out the ConfigMap another holds is not
	// written without that one.
	other := t.TempDir()
	enginetest.Write(t, other, "api.yaml", enginetest.Pod("db", "img:1")) // not an import: refused without --force
	out, err = run2("import", "quadlet", "--manifest-dir", other, units)
	if !errors.As(err, &ee) || strings.Contains(out, "web.yaml: created") || !strings.Contains(out, "holds objects its pods use") {
		t.Errorf("the keeper refused: %v\n%s", err, out)
	}

	// Two units of one pod, in a dry run too: the second is refused.
	enginetest.Write(t, units, "twin/twin.kube", unit)
	enginetest.Write(t, units, "twin/cm.yaml", cm("api"))
	enginetest.Write(t, units, "twin/pod.yaml", pod("web"))
	empty := t.TempDir()
	out, err = run2("import", "quadlet", "--dry-run", "--manifest-dir", empty, units)
	if !errors.As(err, &ee) || !strings.Contains(out, "pod default/web is already defined in "+filepath.Join(empty, "twin.yaml")) {
		t.Errorf("one pod twice: %v\n%s", err, out)
	}
}

// TestImportQuadletSecret: a manifest holding a Secret is written readable
// by root only, as apply writes it, and one an earlier import left
// readable by all is made so when imported again; others stay 0644.
func TestImportQuadletSecret(t *testing.T) {
	units, manifests := t.TempDir(), t.TempDir()
	enginetest.Write(t, units, "app.kube", "[Kube]\nYaml=app.yaml\n")
	enginetest.Write(t, units, "app.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: token}\nstringData: {TOKEN: s3cret}\n---\n"+enginetest.Pod("app", "img:1"))
	enginetest.Write(t, units, "plain.kube", "[Kube]\nYaml=plain.yaml\n")
	enginetest.Write(t, units, "plain.yaml", enginetest.Pod("plain", "img:1"))
	enginetest.Write(t, units, "none.yaml", "")
	importQ := func() string {
		t.Helper()
		var out bytes.Buffer
		if err := run([]string{"import", "quadlet", "--manifest-dir", manifests, "--config", filepath.Join(units, "none.yaml"), units}, &out, io.Discard); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		return out.String()
	}
	mode := func(name string) os.FileMode {
		t.Helper()
		st, err := os.Stat(filepath.Join(manifests, name))
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	importQ()
	if m := mode("app.yaml"); m != 0o600 {
		t.Errorf("app.yaml holds a Secret and is %v, want 0600", m)
	}
	if m := mode("plain.yaml"); m != 0o644 {
		t.Errorf("plain.yaml is %v, want 0644", m)
	}
	if err := os.Chmod(filepath.Join(manifests, "app.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := importQ(); strings.Count(out, ": unchanged") != 2 {
		t.Errorf("again:\n%s", out)
	}
	if m := mode("app.yaml"); m != 0o600 {
		t.Errorf("imported again, app.yaml is %v, want 0600", m)
	}
}

// TestVolumeImport copies a directory shaped as podman's volume store into
// a claim's directory with owners, modes, links, times and extended
// attributes, and refuses what it must.
func TestVolumeImport(t *testing.T) {
	dir := t.TempDir()
	from, root, specs := filepath.Join(dir, "podman", "volumes"), filepath.Join(dir, "volumes"), filepath.Join(dir, "specs")
	data := filepath.Join(from, "db_data", "_data")
	for _, d := range []string{filepath.Join(data, "sub", "deep"), specs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	enginetest.Write(t, data, "sub/file", "hello")
	os.Chmod(filepath.Join(data, "sub", "file"), 0o640)
	os.Chmod(filepath.Join(data, "sub", "deep"), os.ModeSetgid|0o750)
	os.Link(filepath.Join(data, "sub", "file"), filepath.Join(data, "hardlink"))
	os.Symlink("sub/file", filepath.Join(data, "symlink"))
	os.Chmod(data, 0o777)
	root0 := os.Geteuid() == 0
	if root0 {
		os.Lchown(filepath.Join(data, "sub", "file"), 999, 998)
	}
	xattr := unix.Setxattr(filepath.Join(data, "sub", "file"), "user.podunit.test", []byte("kept"), 0) == nil

	var stderr bytes.Buffer
	volume := func(args ...string) (string, error) {
		var out bytes.Buffer
		stderr.Reset()
		err := run(append([]string{"volume", "--volume-root", root, "--spec-dir", specs, "import"}, args...), &out, &stderr)
		return out.String(), err
	}
	if _, err := volume("db_data", "--claim", "../db", "--from", from); err == nil || !strings.Contains(err.Error(), "not a valid claim name") {
		t.Errorf("a claim name out of the volumes' directory: %v", err)
	}
	// The claimName podman before 5.4 writes is the volume's name: it is
	// imported so, with a note naming what 5.4 writes instead.
	if _, err := volume("db_data", "--from", from); err != nil || !strings.Contains(stderr.String(), "--claim db-data") {
		t.Errorf("a podman volume's name as the claim: %v\n%s", err, stderr.String())
	}
	if b, err := os.ReadFile(filepath.Join(root, "default", "db_data", "sub", "file")); err != nil || string(b) != "hello" {
		t.Errorf("claim db_data: %q, %v", b, err)
	}
	out, err := volume("db_data", "--claim", "db-data", "--from", from)
	if err != nil || !strings.Contains(out, "3 files, 3 directories, 5 bytes") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	dst := filepath.Join(root, "default", "db-data")
	check := func(rel string, mode os.FileMode) {
		t.Helper()
		st, err := os.Lstat(filepath.Join(dst, rel))
		if err != nil {
			t.Error(err)
			return
		}
		if st.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", rel, st.Mode(), mode)
		}
	}
	check(".", os.ModeDir|0o777)
	check("sub/file", 0o640)
	check("sub/deep", os.ModeDir|os.ModeSetgid|0o750)
	check("symlink", os.ModeSymlink|0o777)
	var a, b unix.Stat_t
	unix.Stat(filepath.Join(dst, "sub", "file"), &a)
	unix.Stat(filepath.Join(dst, "hardlink"), &b)
	if a.Ino != b.Ino {
		t.Error("the hard link was copied as a second file")
	}
	if root0 && (a.Uid != 999 || a.Gid != 998) {
		t.Errorf("owner %d:%d, want 999:998", a.Uid, a.Gid)
	}
	if xattr {
		val := make([]byte, 16)
		n, err := unix.Getxattr(filepath.Join(dst, "sub", "file"), "user.podunit.test", val)
		if err != nil || string(val[:n]) != "kept" {
			t.Errorf("xattr: %q, %v", val[:n], err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "symlink")); string(got) != "hello" {
		t.Errorf("through the symlink: %q", got)
	}
	// Not over data, unless forced; the old data is then gone.
	enginetest.Write(t, data, "new", "x")
	if _, err := volume("db_data", "--claim", "db-data", "--from", from); err == nil || !strings.Contains(err.Error(), "already holds data") {
		t.Errorf("over data: %v", err)
	}
	os.Remove(filepath.Join(data, "hardlink"))
	if _, err := volume("db_data", "--claim", "db-data", "--from", from, "--force"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "hardlink")); err == nil {
		t.Error("--force kept the old data")
	}
	if _, err := os.Stat(filepath.Join(dst, "new")); err != nil {
		t.Error(err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(root, "default", "*.import-*")); len(leftovers) != 0 {
		t.Errorf("left behind: %v", leftovers)
	}
	// Never under a pod that uses the claim.
	pods, err := generator.Decode("db.yaml", []byte(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: db-data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: db}
spec:
  containers: [{name: c, image: "i:1", volumeMounts: [{name: d, mountPath: /data}]}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: db-data}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := podspec.EncodeSpec(pods[0].Spec)
	enginetest.Write(t, specs, "default_db-x.json", string(spec))
	if _, err := volume("db_data", "--claim", "db-data", "--from", from, "--force"); err == nil || !strings.Contains(err.Error(), "default/db-data is used by pod default/db") {
		t.Errorf("in use: %v", err)
	}
	// A missing volume says how to find it.
	if _, err := volume("nope", "--from", from); err == nil || !strings.Contains(err.Error(), "podman volume inspect") {
		t.Errorf("a missing volume: %v", err)
	}
}

func TestPodmanVolumePath(t *testing.T) {
	dir := t.TempDir()
	vendorCC, cc, dropIn := filepath.Join(dir, "usr-containers.conf"), filepath.Join(dir, "containers.conf"), filepath.Join(dir, "50-x.conf")
	sc, vendorSC := filepath.Join(dir, "storage.conf"), filepath.Join(dir, "usr-storage.conf")
	ccs, scs := []string{vendorCC, cc, dropIn}, []string{sc, vendorSC}
	if got := podmanVolumePath(ccs, scs); got != "/var/lib/containers/storage/volumes" {
		t.Errorf("no files: %s", got)
	}
	enginetest.Write(t, dir, "usr-storage.conf", "[storage]\ngraphroot = \"/usr/graph\"\n")
	if got := podmanVolumePath(ccs, scs); got != "/usr/graph/volumes" {
		t.Errorf("the vendor's graphroot: %s", got)
	}
	enginetest.Write(t, dir, "storage.conf", "[storage]\ndriver = \"overlay\"\ngraphroot = \"/srv/containers\"\n")
	if got := podmanVolumePath(ccs, scs); got != "/srv/containers/volumes" {
		t.Errorf("graphroot: %s", got)
	}
	enginetest.Write(t, dir, "containers.conf", "[containers]\nvolume_path = \"/wrong\"\n[engine]\nvolume_path = '/srv/vols'\n")
	if got := podmanVolumePath(ccs, scs); got != "/srv/vols" {
		t.Errorf("volume_path: %s", got)
	}
	enginetest.Write(t, dir, "50-x.conf", "[engine]\nvolume_path = \"/srv/dropin\"\n")
	enginetest.Write(t, dir, "usr-containers.conf", "[engine]\nvolume_path = \"/usr/vols\"\n")
	if got := podmanVolumePath(ccs, scs); got != "/srv/dropin" {
		t.Errorf("a drop-in's volume_path: %s", got)
	}
}
