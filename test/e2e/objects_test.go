//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
)

const e2eObjects = `apiVersion: v1
kind: ConfigMap
metadata: {name: e2e-settings}
data:
  GREETING: %s
  app.conf: |
    port=8080
---
apiVersion: v1
kind: Secret
metadata: {name: e2e-creds}
stringData:
  password: e2e-s3cret-value
`

// ConfigMaps and Secrets from their own file reach the pods that use them
// (envFrom, secretKeyRef, configMap and secret volumes); a change to the
// ConfigMap replaces exactly the pods that use it.
func TestConfigMapAndSecret(t *testing.T) {
	start := time.Now()
	writeManifest(t, "e2e-objects.yaml", strings.Replace(e2eObjects, "%s", "hello", 1))
	writeManifest(t, "e2e-cm-other.yaml", webPod("e2e-cm-other", "other", 0))
	writeManifest(t, "e2e-cm-user.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: e2e-cm-user
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    envFrom:
    - configMapRef: {name: e2e-settings}
    env:
    - name: PASSWORD
      valueFrom:
        secretKeyRef: {name: e2e-creds, key: password}
    volumeMounts:
    - {name: conf, mountPath: /etc/app}
    - {name: creds, mountPath: /etc/creds}
  volumes:
  - name: conf
    configMap: {name: e2e-settings}
  - name: creds
    secret: {secretName: e2e-creds, defaultMode: 0400}
`)
	waitActive(t, "default", "e2e-cm-user")
	waitActive(t, "default", "e2e-cm-other")
	for cmd, want := range map[string]string{
		"echo $GREETING":          "hello",
		"echo $PASSWORD":          "e2e-s3cret-value",
		"cat /etc/app/app.conf":   "port=8080",
		"cat /etc/creds/password": "e2e-s3cret-value",
		"stat -c %a /etc/creds/password; grep ' /etc/creds ' /proc/mounts | cut -d' ' -f3": "400\ntmpfs",
	} {
		if out := mustExec(t, "e2e-cm-user", "app", "sh", "-c", cmd); out != want {
			t.Errorf("%s: %q, want %q", cmd, out, want)
		}
	}
	user := podState(t, "default", "e2e-cm-user")
	other := runningContainer(t, "default", "e2e-cm-other", "web")

	// The secret is in a root-only data file and in no log.
	data := podspec.DataPath(filepath.Join(specDir, "default_e2e-cm-user-"+string(user.UID)+".json"))
	if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("data file %s: %v %v", data, fi, err)
	}
	if strings.Contains(journal(t, "podunit-sync.service", start)+journal(t, units.ServiceName("default", "e2e-cm-user"), start), "e2e-s3cret-value") {
		t.Error("the secret's value is in the journal")
	}

	writeManifest(t, "e2e-objects.yaml", strings.Replace(e2eObjects, "%s", "changed", 1))
	waitFor(t, "the ConfigMap's user replaced", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", "e2e-cm-user")
		return err == nil && st.UID != user.UID && activeState(units.ServiceName("default", "e2e-cm-user")) == "active", nil
	})
	if out := mustExec(t, "e2e-cm-user", "app", "sh", "-c", "echo $GREETING"); out != "changed" {
		t.Errorf("after the change: GREETING=%q", out)
	}
	if id := runningContainer(t, "default", "e2e-cm-other", "web"); id != other {
		t.Errorf("a pod that does not use the ConfigMap was restarted: %s → %s", other, id)
	}
}

// A PersistentVolumeClaim's directory outlives its pods and its manifest,
// until `podunit volume rm`.
func TestPersistentVolumeClaim(t *testing.T) {
	const name = "e2e-pvc"
	claimFile := `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: e2e-data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`
	podFile := func(gen string) string {
		return `apiVersion: v1
kind: Pod
metadata:
  name: e2e-pvc
  labels: {generation: "` + gen + `"}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "echo ` + gen + ` >> /data/log; trap 'exit 0' TERM; sleep 3600 & wait"]
    volumeMounts:
    - {name: data, mountPath: /data}
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: e2e-data}
`
	}
	dir := "/var/lib/podunit/volumes/default/e2e-data"
	t.Cleanup(func() { os.RemoveAll(dir) })
	writeManifest(t, "e2e-pvc-claim.yaml", claimFile)
	writeManifest(t, "e2e-pvc.yaml", podFile("one"))
	unit := waitActive(t, "default", name)
	first := podState(t, "default", name).UID
	writeManifest(t, "e2e-pvc.yaml", podFile("two"))
	waitFor(t, "the pod replaced", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
		return err == nil && st.UID != first && activeState(unit) == "active", nil
	})
	if out := mustExec(t, name, "app", "cat", "/data/log"); out != "one\ntwo" {
		t.Errorf("the claim's data over a replacement: %q", out)
	}
	out, err := exec.Command(podunitBin, "volume", "rm", "default/e2e-data").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is used by pod default/e2e-pvc") {
		t.Errorf("volume rm of a claim in use: %v\n%s", err, out)
	}
	os.Remove(filepath.Join(manifestDir, "e2e-pvc.yaml"))
	os.Remove(filepath.Join(manifestDir, "e2e-pvc-claim.yaml"))
	waitGone(t, unit)
	if b, err := os.ReadFile(filepath.Join(dir, "log")); err != nil || string(b) != "one\ntwo\n" {
		t.Errorf("the claim's data after its pod and manifest went: %q %v", b, err)
	}
	if out, err := exec.Command(podunitBin, "volume", "rm", "default/e2e-data").CombinedOutput(); err != nil {
		t.Errorf("volume rm: %v\n%s", err, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s after volume rm: %v", dir, err)
	}
}
