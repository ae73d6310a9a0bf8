//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Moving from podman (docs/podman.md), as the guide says: three Quadlet
// .kube units (ConfigMap=, PublishPort=, AutoUpdate=registry, ordering
// between them) imported into a staging directory, checked with validate,
// a named volume's data (a directory shaped as podman's volume store)
// moved into the claim, then the units imported into the manifest
// directory: the pods start in the units' order and serve on the published
// ports, the database pod from the volume's data.
//
// The database's YAML has no PersistentVolumeClaim document, as podman's
// never has: its claim is a local volume of that name.
func TestQuadletImport(t *testing.T) {
	units, stage, podman := t.TempDir(), t.TempDir(), t.TempDir()
	write := func(dir, name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A pod serving /www on port 80, ready once its index exists (after a
	// few seconds, so that an order between the pods is visible).
	pod := func(name, prepare, extra string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c"]
    args:
    - |
      sleep 2; %s
      httpd -f -p 80 -h /www & trap 'kill $!; exit 0' TERM; wait
    ports:
    - containerPort: 80
    readinessProbe:
      exec: {command: ["test", "-f", "/www/index.html"]}
      periodSeconds: 1
%s`, name, prepare, extra)
	}
	write(units, "e2e-qdb.kube", "[Unit]\nDescription=the database\n\n[Kube]\nYaml=yaml/db.yaml\nPublishPort=18091:80\n\n[Install]\nWantedBy=default.target\n")
	write(units, "e2e-qweb.kube", "[Unit]\nAfter=e2e-qdb.kube\nRequires=e2e-qdb.kube\n\n[Kube]\nYaml=yaml/web.yaml\nConfigMap=yaml/web-config.yaml\nPublishPort=18092:80\nAutoUpdate=registry\n")
	write(units, "e2e-qfront.kube", "[Unit]\n# Quadlet's service name of the web unit; Wants= alone does not order\nWants=e2e-qweb.service\nAfter=e2e-qweb.service\n\n[Kube]\nYaml=yaml/front.yaml\nPublishPort=18093:80\nNetwork=e2e.network\n")
	if err := os.Mkdir(filepath.Join(units, "yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	yamls := filepath.Join(units, "yaml")
	write(yamls, "db.yaml", pod("e2e-qdb", "mkdir -p /www && cp /data/index.html /www/", `    volumeMounts:
    - {name: data, mountPath: /data}
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: e2e-qdata}
`))
	write(yamls, "web.yaml", pod("e2e-qweb", `mkdir -p /www && echo "$GREETING" > /www/index.html`, `    envFrom:
    - configMapRef: {name: e2e-qweb-config}
`))
	write(yamls, "web-config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: e2e-qweb-config}\ndata: {GREETING: hello from the config map}\n")
	write(yamls, "front.yaml", pod("e2e-qfront", "mkdir -p /www && echo front > /www/index.html", ""))

	// podman's named volume e2e_qdata, as podman keeps it.
	data := filepath.Join(podman, "volumes", "e2e_qdata", "_data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	write(data, "index.html", "from podman's volume\n")
	os.Chown(filepath.Join(data, "index.html"), 1234, 1235)
	os.Chmod(filepath.Join(data, "index.html"), 0o640)
	claimDir := "/var/lib/podunit/volumes/default/e2e-qdata"
	freshDir(t, claimDir)
	t.Cleanup(func() {
		for _, f := range []string{"e2e-qdb.yaml", "e2e-qweb.yaml", "e2e-qfront.yaml"} {
			os.Remove(filepath.Join(manifestDir, f))
		}
		for _, p := range []string{"e2e-qfront", "e2e-qweb", "e2e-qdb"} {
			waitGone(t, "pod-"+p+".service")
		}
	})

	// 1. Import into a staging directory, and read the report.
	out, code := podunitOut("import", "quadlet", "--manifest-dir", stage, units)
	if code != 0 {
		t.Fatalf("import into %s: exit %d\n%s", stage, code, out)
	}
	for _, want := range []string{
		"PublishPort=18092:80: carried over: hostPort 18092 -> 80/TCP",
		"AutoUpdate=registry: carried over: annotation io.containers.autoupdate: registry",
		"After=e2e-qdb.kube: carried over",
		"Network=e2e.network: not carried over",
		"WantedBy=default.target: carried over: starts at boot",
		"systemctl disable --now e2e-qdb.service e2e-qfront.service e2e-qweb.service",
		"podunit volume import e2e-qdata --namespace default",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the import's report lacks %q:\n%s", want, out)
		}
	}
	// 2. Check it as sync will.
	staged, _ := filepath.Glob(filepath.Join(stage, "*.yaml"))
	if len(staged) != 3 {
		t.Fatalf("staged %v, want three manifests", staged)
	}
	if out, code := podunitOut(append([]string{"validate"}, staged...)...); code != 0 {
		t.Fatalf("validate: exit %d\n%s", code, out)
	}
	// 3. (podman's units would be disabled here.) 4. The named volume.
	out, code = podunitOut("volume", "import", "e2e_qdata", "--claim", "e2e-qdata", "--from", filepath.Join(podman, "volumes"))
	if code != 0 {
		t.Fatalf("volume import: exit %d\n%s", code, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(claimDir, "index.html"), &st); err != nil || st.Uid != 1234 || st.Gid != 1235 || st.Mode&0o7777 != 0o640 {
		t.Errorf("the volume's file in the claim: %+v, %v", st, err)
	}
	// 5. Start: the same import, into the manifest directory.
	if out, code := podunitOut("import", "quadlet", units); code != 0 {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	db, web, front := waitActive(t, "default", "e2e-qdb"), waitActive(t, "default", "e2e-qweb"), waitActive(t, "default", "e2e-qfront")
	ready := func(unit string) uint64 { return unitProps(t, unit)["ActiveEnterTimestamp"].(uint64) }
	started := func(unit string) uint64 { return unitProps(t, unit)["ExecMainStartTimestamp"].(uint64) }
	if started(web) < ready(db) {
		t.Errorf("e2e-qweb started before e2e-qdb was ready")
	}
	if started(front) < ready(web) {
		t.Errorf("e2e-qfront started before e2e-qweb was ready")
	}
	for port, want := range map[int]string{18091: "from podman's volume", 18092: "hello from the config map", 18093: "front"} {
		url := fmt.Sprintf("http://%s:%d/", hostPortAddr(), port)
		waitFor(t, url+" answers", func() (bool, error) {
			_, body, err := get(url)
			return err == nil && strings.TrimSpace(body) == want, nil
		})
	}
	// Importing again changes nothing.
	if out, code := podunitOut("import", "quadlet", units); code != 0 || strings.Count(out, ": unchanged") != 3 {
		t.Errorf("a second import: exit %d\n%s", code, out)
	}
	// The data is the pod's now: not replaced under it.
	if out, code := podunitOut("volume", "import", "e2e_qdata", "--claim", "e2e-qdata", "--from", filepath.Join(podman, "volumes"), "--force"); code == 0 || !strings.Contains(out, "is used by pod default/e2e-qdb") {
		t.Errorf("volume import under a running pod: exit %d\n%s", code, out)
	}
}
