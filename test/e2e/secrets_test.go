//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/podshim"
)

// A Secret's value reaches its container and nothing else a person or
// another user can read: not the journal (the sync's, the pod's), the
// status API, `get -o yaml`, `describe`, any podunit process's command
// line, the pod unit's properties, nor any file under podunit's
// directories that is readable by others than root. Its container is
// where it belongs: it prints the value's length, never the value.
func TestSecretValueStaysSecret(t *testing.T) {
	const canary = "canary-8d1f0b6e2c-do-not-leak"
	start := time.Now()
	writeManifest(t, "e2e-canary.yaml", `apiVersion: v1
kind: Secret
metadata: {name: e2e-canary}
stringData: {token: `+canary+`}
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-canary}
spec:
  volumes: [{name: s, secret: {secretName: e2e-canary}}]
  containers:
  - name: c
    image: localhost/podunit/busybox:1.35
    env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: e2e-canary, key: token}}}]
    volumeMounts: [{name: s, mountPath: /s}]
    command: ["sh", "-c", "echo token length ${#TOKEN} $(wc -c < /s/token); sleep 3600"]
`)
	// Readable by root only, as `podunit apply` writes a manifest with a
	// Secret: what the user wrote is theirs to protect.
	if err := os.Chmod(filepath.Join(manifestDir, "e2e-canary.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	unit := waitActive(t, "default", "e2e-canary")
	waitFor(t, "the container to see the Secret", func() (bool, error) {
		return strings.Contains(journal(t, unit, start), "token length 29 29"), nil
	})

	places := map[string][]byte{}
	for _, u := range []string{"podunit-sync.service", unit, "podunit-status.service"} {
		places["journal of "+u] = []byte(journal(t, u, start))
	}
	for _, args := range [][]string{{"get", "pods", "e2e-canary", "-o", "yaml"}, {"describe", "pod", "e2e-canary"}} {
		out, _ := podunitOut(args...)
		places["podunit "+strings.Join(args, " ")] = []byte(out)
	}
	for _, path := range []string{"/pods", "/pods/default/e2e-canary", "/metrics", "/cronjobs"} {
		code, body := statusAPI(t, path)
		if code != 200 {
			t.Fatalf("status API %s: %d %s", path, code, body)
		}
		places["the status API's "+path] = []byte(body)
	}
	places["the unit's properties"] = []byte(strings.Join(fmtProps(unitProps(t, unit)), "\n"))
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && (bytes.Contains(b, []byte("podunit")) || bytes.Contains(b, []byte("podshim"))) {
			places[p] = b
		}
	}
	for _, root := range []string{"/run/podunit", "/var/lib/podunit", "/var/log/pods", "/etc/podunit"} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil || !info.Mode().IsRegular() || !othersCanRead(path, info) {
				return nil // root's only
			}
			if b, err := os.ReadFile(path); err == nil {
				places["world-readable "+path] = b
			}
			return nil
		})
	}
	if len(places) < 8 {
		t.Fatalf("only %d places looked at", len(places))
	}
	for where, b := range places {
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("the Secret's value is in %s", where)
		}
	}
}

// othersCanRead tells whether a user other than root and the file's group
// can read a file: it is readable by others, and every directory above it
// lets others through.
func othersCanRead(path string, info fs.FileInfo) bool {
	if info.Mode().Perm()&0o004 == 0 {
		return false
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if dir == "/" {
			return true
		}
	}
}

func fmtProps(props map[string]any) []string {
	var out []string
	for k, v := range props {
		out = append(out, k+"="+strings.TrimSpace(strings.ReplaceAll(fmt.Sprint(v), "\n", " ")))
	}
	return out
}

// A container cannot reach the host through a symlink it plants in a
// volume (the class of CVE-2017-1002101 in the kubelet's subPath): an init
// container makes escape → /etc in an emptyDir, and the container that
// mounts subPath: escape is refused with CreateContainerConfigError, the
// host's /etc never mounted, and one that mounts escape/new is refused
// before anything is made (no new directory in the host's /etc); one that
// mounts an ordinary subPath runs.
func TestSubPathSymlinkEscapeRefused(t *testing.T) {
	const name = "e2e-escape"
	writeManifest(t, name+".yaml", `apiVersion: v1
kind: Pod
metadata: {name: e2e-escape}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: data, emptyDir: {}}]
  initContainers:
  - name: plant
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "ln -s /etc /data/escape && mkdir -p /data/fine && echo planted"]
    volumeMounts: [{name: data, mountPath: /data}]
  containers:
  - name: fine
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    volumeMounts: [{name: data, mountPath: /mnt, subPath: fine}]
  - name: escapes
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "cat /mnt/shadow; sleep 3600"]
    volumeMounts: [{name: data, mountPath: /mnt, subPath: escape}]
  - name: makes
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "sleep 3600"]
    volumeMounts: [{name: data, mountPath: /mnt, subPath: escape/podunit-e2e-made}]
`)
	const made = "/etc/podunit-e2e-made" // where the planted symlink points on the host
	t.Cleanup(func() { os.Remove(made) })
	waitFor(t, "the escaping container refused, the other running", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
		if err != nil || len(st.Status.ContainerStatuses) != 3 {
			return false, err
		}
		fine := st.Status.ContainerStatuses[0]
		refused := 0
		for _, c := range st.Status.ContainerStatuses[1:] {
			if w := c.State.Waiting; w != nil && w.Reason == "CreateContainerConfigError" && strings.Contains(w.Message, "leaves the volume") {
				refused++
			}
		}
		return fine.State.Running != nil && refused == 2, nil
	})
	if _, err := os.Stat(made); err == nil {
		t.Errorf("%s was made on the host through the planted symlink", made)
	}
	for _, s := range sandboxes(t, "default", name) {
		for _, c := range containers(t, s.Id) {
			if c.Metadata.Name == "escapes" || c.Metadata.Name == "makes" {
				t.Errorf("a container was created for the escaping mount: %s", c.Id)
			}
		}
	}
}
