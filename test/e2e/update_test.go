//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

// unitGeneration is the config hash of the generation the pod's unit runs.
func unitGeneration(t *testing.T, unit string) string {
	t.Helper()
	p, err := systemd.GetUnitPropertyContext(context.Background(), unit, "Description")
	if err != nil {
		return ""
	}
	_, _, hash, _ := units.ParseDescription(strings.Trim(p.Value.String(), `"`))
	return hash
}

// statusWord is the pod's STATUS in podunit get pods.
func statusWord(t *testing.T, pod string) string {
	t.Helper()
	out, _ := exec.Command(podunitBin, "get", "pods").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == pod {
			return f[2]
		}
	}
	return ""
}

// regcred is the image pull Secret e2e-regcred for r, and a document
// separator: a manifest's first document.
func regcred(r *registry) string {
	return `apiVersion: v1
kind: Secret
metadata: {name: e2e-regcred}
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: ` + dockerConfigJSON(r.addr, registryUser, registryPassword) + "\n---\n"
}

func registryPod(name, image, command string, annotations ...string) string {
	meta := "{name: " + name + "}"
	if len(annotations) > 0 {
		meta = fmt.Sprintf("{name: %s, annotations: {%s}}", name, strings.Join(annotations, ", "))
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: %s
spec:
  terminationGracePeriodSeconds: 1
  imagePullSecrets: [{name: e2e-regcred}]
  containers:
  - name: app
    image: %s
    command: ["sh", "-c", %q]
`, meta, image, command)
}

const serveForever = "trap 'exit 0' TERM; sleep 3600 & wait"

// User story: "I edit a pod to a new image tag that my registry does not
// have (a typo, a push that failed). The pod I had keeps running; podunit
// says why the new one did not start, and starts it by itself once the
// image is there." The kubelet stops the old pod first and leaves the box
// with nothing running.
func TestEditToUnpullableImageKeepsTheOldPod(t *testing.T) {
	r := startRegistry(t)
	secret := regcred(r)
	writeManifest(t, "e2e-upd.yaml", secret+registryPod("e2e-upd", r.addr+"/private/busybox:1", serveForever))
	unit := waitActive(t, "default", "e2e-upd")
	before, old := runningContainer(t, "default", "e2e-upd", "app"), unitGeneration(t, unit)

	begin := time.Now()
	writeFile(t, "e2e-upd.yaml", secret+registryPod("e2e-upd", r.addr+"/private/busybox:2", serveForever))
	waitStatusWord(t, "e2e-upd", "ImagePullBackOff")
	if c, _ := runningContainerID("default", "e2e-upd", "app"); c != before || activeState(unit) != "active" || unitGeneration(t, unit) != old {
		t.Fatalf("the running pod was touched while the new image could not be pulled: container %s (was %s), unit %s, generation %s (was %s)",
			c, before, activeState(unit), unitGeneration(t, unit), old)
	}
	out, _ := exec.Command(podunitBin, "describe", "pod", "e2e-upd").CombinedOutput()
	if !strings.Contains(string(out), "ImagePullBackOff") || !strings.Contains(string(out), "busybox:2") {
		t.Errorf("describe does not say why the new generation waits:\n%s", out)
	}
	if _, metrics := unixGet(t, "/metrics"); metricValue(metrics, "podunit_image_pulls_failed_total") < 1 {
		t.Errorf("/metrics has no failed-pull counter")
	}

	// The image is pushed: the next try replaces the pod, with no edit.
	certs := filepath.Join(r.dir, "certs")
	if out, err := exec.Command("skopeo", "copy", "--dest-cert-dir", certs, "--dest-creds", registryUser+":"+registryPassword,
		"oci-archive:"+filepath.Join(os.Getenv("PODUNIT_TESTBED_DIR"), "images", "busybox.tar"), "docker://"+r.addr+"/private/busybox:2").CombinedOutput(); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	waitFor(t, "the new generation running", func() (bool, error) {
		return unitGeneration(t, unit) != old && activeState(unit) == "active", nil
	})
	waitFor(t, "the pod shown Running", func() (bool, error) { return statusWord(t, "e2e-upd") == "Running", nil })
	handoff := journal(t, units.HandoffName(unit), begin)
	t.Logf("the hand-off:\n%s", handoff)
	if !strings.Contains(handoff, "busybox:2") {
		t.Errorf("the hand-off's journal does not name the image it could not pull")
	}
}

// gatedPod is a pod of one busybox container running command, replaced
// through the readiness gate within deadline.
func gatedPod(name, deadline, container, command string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  annotations: {podunit.io/rollout-deadline: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: %s
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", %q]
`, name, deadline, container, command)
}

// User story (#23): "I edit a pod to a version that crashes at start, and
// the hand-off replacing it dies (the OOM killer, a kill -9). podunit still
// puts back the version that worked, as if nothing had happened to the
// hand-off." Before, the next sync found the hand-off gone, deleted its
// record and left the crash-looping generation running, ungated.
func TestKilledHandoffStillRollsBack(t *testing.T) {
	pod := func(command string) string { return gatedPod("e2e-gate", "15s", "app", command) }
	writeManifest(t, "e2e-gate.yaml", pod("echo v1; "+serveForever))
	unit := waitActive(t, "default", "e2e-gate")
	good := unitGeneration(t, unit)
	begin := time.Now()
	writeFile(t, "e2e-gate.yaml", pod("echo v2 is broken; sleep 1; exit 1"))
	waitFor(t, "the broken generation started", func() (bool, error) {
		g := unitGeneration(t, unit)
		return g != good && g != "", nil
	})
	handoff := units.HandoffName(unit)
	if out, err := exec.Command("systemctl", "kill", "-s", "KILL", handoff).CombinedOutput(); err != nil {
		t.Fatalf("kill the hand-off: %v\n%s", err, out)
	}
	t.Logf("%s killed %.1f s after the edit", handoff, time.Since(begin).Seconds())
	waitStatusWord(t, "e2e-gate", "RolledBack")
	waitFor(t, "the good generation ready again", func() (bool, error) {
		return unitGeneration(t, unit) == good && activeState(unit) == "active", nil
	})
	t.Logf("rolled back %.1f s after the edit (deadline 15 s)", time.Since(begin).Seconds())
	waitFor(t, "the sync's journal saying it carried the replacement on, and the pod rolled back", func() (bool, error) {
		j := journal(t, "podunit-sync.service", begin)
		return strings.Contains(j, "carrying on the replacement of "+unit) && strings.Contains(j, "was rolled back"), nil
	})
	if j := journal(t, handoff, begin); !strings.Contains(j, "cut short") {
		t.Errorf("the second hand-off's journal does not say it carried on a replacement cut short:\n%s", j)
	}
}

// User story: "I edit a pod to a version that crashes at start. Within the
// deadline I gave, podunit puts back the version that worked, tells me so,
// and leaves my manifest as I wrote it; it does not try the broken one
// again until I change the file."
func TestEditToCrashLoopRollsBack(t *testing.T) {
	pod := func(command string) string { return gatedPod("e2e-rollback", "10s", "app", command) }
	writeManifest(t, "e2e-rollback.yaml", pod("echo v1; "+serveForever))
	unit := waitActive(t, "default", "e2e-rollback")
	good := unitGeneration(t, unit)
	_, metrics := unixGet(t, "/metrics")
	rolledBackBefore := metricValue(metrics, `podunit_rollouts_total{result="rolled_back"}`)

	begin := time.Now()
	writeFile(t, "e2e-rollback.yaml", pod("echo v2 is broken; exit 1"))
	waitStatusWord(t, "e2e-rollback", "RolledBack")
	took := time.Since(begin)
	waitFor(t, "the good generation ready again", func() (bool, error) {
		return unitGeneration(t, unit) == good && activeState(unit) == "active", nil
	})
	t.Logf("rolled back %.1f s after the edit (deadline 10 s)", took.Seconds())
	out, _ := exec.Command(podunitBin, "describe", "pod", "e2e-rollback").CombinedOutput()
	if !strings.Contains(string(out), "RolledBack") || !strings.Contains(string(out), "CrashLoopBackOff") {
		t.Errorf("describe does not say why the pod was rolled back:\n%s", out)
	}
	_, metrics = unixGet(t, "/metrics")
	if v := metricValue(metrics, `podunit_rollouts_total{result="rolled_back"}`); v != rolledBackBefore+1 {
		t.Errorf("rolled-back rollouts: %v, want %v", v, rolledBackBefore+1)
	}
	waitFor(t, "the sync's journal saying the pod was rolled back", func() (bool, error) {
		return strings.Contains(journal(t, "podunit-sync.service", begin), "was rolled back"), nil
	})

	// No flapping: syncs leave it on the good generation.
	for range 2 {
		exec.Command("systemctl", "start", "podunit-sync.service").Run()
	}
	time.Sleep(2 * time.Second)
	if g := unitGeneration(t, unit); g != good || statusWord(t, "e2e-rollback") != "RolledBack" {
		t.Fatalf("after more syncs the pod runs generation %s (good %s), shown %s", g, good, statusWord(t, "e2e-rollback"))
	}

	// A new edit is tried, and replaces it.
	writeFile(t, "e2e-rollback.yaml", pod("echo v3; "+serveForever))
	waitFor(t, "the fixed generation running", func() (bool, error) {
		g := unitGeneration(t, unit)
		return g != good && g != "" && activeState(unit) == "active" && statusWord(t, "e2e-rollback") == "Running", nil
	})
}

// metricValue is a sample's value in a Prometheus text exposition; 0 when
// absent.
func metricValue(exposition, sample string) float64 {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// push copies the test bed's busybox image to the registry as ref, with
// env set in its configuration: a new image (a new digest) for each env.
func (r *registry) push(t *testing.T, ref string, env ...string) {
	t.Helper()
	layout := filepath.Join(r.dir, "layout")
	tag := "base"
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	if _, err := os.Stat(layout); err != nil {
		run("skopeo", "copy", "oci-archive:"+filepath.Join(os.Getenv("PODUNIT_TESTBED_DIR"), "images", "busybox.tar"), "oci:"+layout+":base")
	}
	if len(env) > 0 {
		tag = fmt.Sprintf("v%d", time.Now().UnixNano())
		args := []string{"config", "--image", layout + ":base", "--tag", tag}
		for _, e := range env {
			args = append(args, "--config.env", e)
		}
		run("umoci", args...)
	}
	run("skopeo", "copy", "--dest-cert-dir", filepath.Join(r.dir, "certs"), "--dest-creds", registryUser+":"+registryPassword,
		"oci:"+layout+":"+tag, "docker://"+r.addr+"/"+ref)
}

// runningImage is the image ID the pod's container runs, as podshim
// records it.
func runningImage(t *testing.T, pod, container string) string {
	t.Helper()
	st := podState(t, "default", pod)
	for _, cs := range st.Status.ContainerStatuses {
		if cs.Name == container {
			return cs.ImageID
		}
	}
	return ""
}

// autoUpdate runs podunit auto-update and returns the UPDATED column of
// pod's row.
func autoUpdate(t *testing.T, pod string, args ...string) string {
	t.Helper()
	out, err := exec.Command(podunitBin, append([]string{"auto-update"}, args...)...).CombinedOutput()
	t.Logf("podunit auto-update %s:\n%s", strings.Join(args, " "), out)
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 5 && f[0] == "default/"+pod {
			return strings.Join(f[4:], " ")
		}
	}
	t.Fatalf("podunit auto-update %v: no row for %s (%v)", args, pod, err)
	return ""
}

// User story: "my pod says podunit.io/auto-update: registry. When I push a
// good new version under the same tag, the daily run replaces the pod with
// it; when I push a broken one, the pod goes back to the version that
// worked, even though the tag now names the broken one, and later runs do
// not try that broken one again."
func TestAutoUpdateFromRegistry(t *testing.T) {
	r := startRegistry(t)
	r.push(t, "private/app:stable")
	secret := regcred(r)
	command := `if [ "$APP_MODE" = crash ]; then echo crashing; exit 1; fi; echo "app version ${APP_VERSION:-1}"; ` + serveForever
	writeManifest(t, "e2e-auto.yaml", secret+registryPod("e2e-auto", r.addr+"/private/app:stable", command,
		"podunit.io/auto-update: registry", "podunit.io/rollout-deadline: 20s", "podunit.io/min-ready-seconds: '3'"))
	unit := waitActive(t, "default", "e2e-auto")
	v1 := runningImage(t, "e2e-auto", "app")
	generation := unitGeneration(t, unit)

	if got := autoUpdate(t, "e2e-auto", "--dry-run"); got != "false" {
		t.Fatalf("dry run with nothing pushed: %q, want false", got)
	}
	r.push(t, "private/app:stable", "APP_VERSION=2")
	if got := autoUpdate(t, "e2e-auto", "--dry-run"); got != "pending" {
		t.Fatalf("dry run after a push: %q, want pending", got)
	}
	if runningImage(t, "e2e-auto", "app") != v1 {
		t.Fatal("a dry run changed the pod")
	}
	if got := autoUpdate(t, "e2e-auto"); got != "true" {
		t.Fatalf("auto-update to a good new digest: %q, want true", got)
	}
	v2 := runningImage(t, "e2e-auto", "app")
	if v2 == v1 || unitGeneration(t, unit) != generation || activeState(unit) != "active" {
		t.Fatalf("after the update the pod runs %s (was %s), generation %s, %s", v2, v1, unitGeneration(t, unit), activeState(unit))
	}

	r.push(t, "private/app:stable", "APP_VERSION=3", "APP_MODE=crash")
	begin := time.Now()
	if got := autoUpdate(t, "e2e-auto"); !strings.HasPrefix(got, "rolled back") {
		t.Fatalf("auto-update to a crashing digest: %q, want rolled back", got)
	}
	t.Logf("rolled back within %.1f s", time.Since(begin).Seconds())
	waitFor(t, "the pod on its good image again", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", "e2e-auto")
		if err != nil || len(st.Status.ContainerStatuses) == 0 {
			return false, err
		}
		cs := st.Status.ContainerStatuses[0]
		return activeState(unit) == "active" && cs.ImageID == v2 && cs.Ready, nil
	})
	waitStatusWord(t, "e2e-auto", "RolledBack")
	if onCRIO() {
		// CRI-O pins images by name, in its configuration (pinned_images),
		// not one image at a time, and the good image has lost its tag to
		// the broken one: it is kept because the rolled-back container uses
		// it (crictl rmi --prune, the only collector on a node without a
		// kubelet, removes unused images only).
		if st, err := cri.ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: v2}, false); err != nil || st.GetImage() == nil {
			t.Errorf("the image the rollback runs (%s) is gone: %v", v2, err)
		}
		if id, _ := runningContainerID("default", "e2e-auto", "app"); id == "" {
			t.Errorf("no running container uses the image the rollback runs")
		}
	} else {
		// The good image is pinned in containerd: no image garbage collection
		// (the kubelet's, crictl rmi --prune) takes it while the pod needs it.
		pinned, _ := exec.Command("ctr", "-n", "k8s.io", "images", "ls", "-q", `labels."io.cri-containerd.pinned"==pinned`).CombinedOutput()
		if !strings.Contains(string(pinned), v2) {
			t.Errorf("the image the rollback runs (%s) is not pinned; pinned: %s", v2, pinned)
		}
	}
	// The tag still names the broken digest: later runs and syncs leave
	// the pod on the good one.
	if got := autoUpdate(t, "e2e-auto"); !strings.HasPrefix(got, "skipped") {
		t.Errorf("the next auto-update: %q, want skipped", got)
	}
	for range 2 {
		exec.Command("systemctl", "start", "podunit-sync.service").Run()
	}
	systemctl(t, "restart", unit) // podshim again, as after a crash or a reboot
	waitActive(t, "default", "e2e-auto")
	if got := runningImage(t, "e2e-auto", "app"); got != v2 {
		t.Errorf("after syncs and a restart the pod runs %s, want the pinned %s", got, v2)
	}
	if !strings.Contains(journal(t, units.HandoffName(unit), begin), "rolled back") {
		t.Error("the hand-off's journal does not say it rolled back")
	}
}

// User stories: "I provision boxes without a registry: I drop image
// archives into /var/lib/podunit/images, and the pods that use them run";
// "my box reboots while its registry cannot be reached; a pod whose image
// says :latest (pull policy Always) runs the copy it has, instead of never
// starting as with the kubelet" (unless imagePullOffline: fail).
func TestOfflineImages(t *testing.T) {
	// An archive dropped into the images directory is imported.
	const dir = "/var/lib/podunit/images"
	os.MkdirAll(dir, 0o755)
	dropArchive(t, filepath.Join(dir, "e2e-offline.tar"), "localhost/e2e/offline:1")
	writeManifest(t, "e2e-offline.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: e2e-offline}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: localhost/e2e/offline:1
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", %q]
`, serveForever))
	waitActive(t, "default", "e2e-offline")

	// :latest with the registry gone: the local copy runs.
	r := startRegistry(t)
	r.push(t, "private/app:latest")
	secret := regcred(r)
	writeManifest(t, "e2e-latest.yaml", secret+registryPod("e2e-latest", r.addr+"/private/app:latest", serveForever))
	unit := waitActive(t, "default", "e2e-latest")
	r.stop()
	begin := time.Now()
	systemctl(t, "restart", unit) // as at a boot without the network
	waitActive(t, "default", "e2e-latest")
	if j := journal(t, unit, begin); !strings.Contains(j, "registry cannot be reached") {
		t.Errorf("the pod's journal does not say it runs the local copy:\n%s", j)
	}
	waitFor(t, "describe saying the pod runs a local copy", func() (bool, error) {
		out, _ := exec.Command(podunitBin, "describe", "pod", "e2e-latest").CombinedOutput()
		return strings.Contains(string(out), "RegistryUnreachable"), nil
	})
	// imagePullOffline: fail is the kubelet's behaviour: no start.
	withConfig(t, "imagePullOffline: fail")
	writeManifest(t, "e2e-latest-strict.yaml", secret+registryPod("e2e-latest-strict", r.addr+"/private/app:latest", serveForever))
	waitFor(t, "the strict pod waiting for its image", func() (bool, error) {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", "e2e-latest-strict")
		if err != nil || len(st.Status.ContainerStatuses) == 0 || st.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, err
		}
		w := st.Status.ContainerStatuses[0].State.Waiting.Reason
		return w == "ErrImagePull" || w == "ImagePullBackOff", nil
	})
}

// User story: "my provisioning drops image archives on a data partition,
// and config.yaml's imagesDir names it": podunit-images.path watches it
// (the sync writes its drop-in), so an archive there is imported at once.
func TestImagesDirElsewhere(t *testing.T) {
	const dir = "/srv/e2e-images"
	freshDir(t, dir)
	os.MkdirAll(dir, 0o755)
	withConfig(t, "imagesDir: "+dir)
	waitFor(t, "podunit-images.path to watch "+dir, func() (bool, error) {
		out, err := exec.Command("systemctl", "show", "-p", "Paths", "podunit-images.path").Output()
		return strings.Contains(string(out), dir), err
	})
	dropArchive(t, filepath.Join(dir, "e2e-elsewhere.tar"), "localhost/e2e/elsewhere:1")
}

// dropArchive writes the test bed's busybox image as an OCI archive named
// image to archive (whole, by a rename, as a careful provisioning tool
// does) and waits for podunit-images.service to import it.
func dropArchive(t *testing.T, archive, image string) {
	t.Helper()
	t.Cleanup(func() { os.Remove(archive) })
	tmp := filepath.Join(filepath.Dir(archive), "."+filepath.Base(archive)+".tmp")
	if out, err := exec.Command("skopeo", "copy", "oci-archive:"+filepath.Join(os.Getenv("PODUNIT_TESTBED_DIR"), "images", "busybox.tar"),
		"oci-archive:"+tmp+":"+image).CombinedOutput(); err != nil {
		t.Fatalf("skopeo: %v\n%s", err, out)
	}
	begin := time.Now()
	if err := os.Rename(tmp, archive); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the archive's image in the runtime", func() (bool, error) {
		st, err := cri.ImageStatus(context.Background(), &runtimeapi.ImageSpec{Image: image}, false)
		return err == nil && st.GetImage() != nil, err
	})
	// The runtime may list the image a moment before the import is done
	// and says so (CRI-O's store shows it as soon as skopeo has copied it).
	waitFor(t, "podunit-images.service's journal to say "+image+" was imported", func() (bool, error) {
		return strings.Contains(journal(t, "podunit-images.service", begin), "imported "+image), nil
	})
}

// User story: "my pods' manifests carry no pull secrets: the box has its
// registry credentials (podman login's auth.json, or the kubelet's
// credential provider plugin I already use), and those never show up in a
// log, the status API or a process's arguments."
func TestPullCredentialsOfTheNode(t *testing.T) {
	r := startRegistry(t)
	pod := func(name string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %s/private/busybox:1
    imagePullPolicy: Always
    command: ["sh", "-c", %q]
`, name, r.addr, serveForever)
	}
	begin := time.Now()
	auth := `{"auths":{"` + r.addr + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(registryUser+":"+registryPassword)) + `"}}}`
	if err := os.WriteFile("/etc/podunit/auth.json", []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove("/etc/podunit/auth.json") })
	writeManifest(t, "e2e-authfile.yaml", pod("e2e-authfile"))
	unit1 := waitActive(t, "default", "e2e-authfile")
	os.Remove("/etc/podunit/auth.json")

	// The kubelet's credential provider plugin protocol, with a plugin of
	// the test's.
	dir := "/var/lib/e2e-providers"
	freshDir(t, dir)
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	plugin := `#!/bin/sh
cat >/dev/null
printf '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Registry","auth":{"%s":{"username":"%s","password":"%s"}}}\n' "$REGISTRY" "$REG_USER" "$REG_PASSWORD"
`
	os.WriteFile(filepath.Join(dir, "bin", "e2e-provider"), []byte(plugin), 0o700)
	os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
- name: e2e-provider
  apiVersion: credentialprovider.kubelet.k8s.io/v1
  matchImages: [%q]
  defaultCacheDuration: 1m
  env:
  - {name: REGISTRY, value: %q}
  - {name: REG_USER, value: %q}
  - {name: REG_PASSWORD, value: %q}
`, r.addr, r.addr, registryUser, registryPassword)), 0o600)
	withConfig(t, "imageCredentialProviderConfigPath: "+dir+"/config.yaml\nimageCredentialProviderBinDir: "+dir+"/bin")
	writeManifest(t, "e2e-provider.yaml", pod("e2e-provider"))
	unit2 := waitActive(t, "default", "e2e-provider")

	// Neither source's password is anywhere a user or process could read
	// it but the files root wrote.
	places := map[string]string{
		"the pods' journal":  journal(t, unit1, begin) + journal(t, unit2, begin),
		"the sync's journal": journal(t, "podunit-sync.service", begin),
	}
	if out, err := exec.Command(podunitBin, "get", "pods", "-A", "-o", "yaml").Output(); err == nil {
		places["get pods -o yaml"] = string(out)
	}
	for _, p := range []string{"e2e-authfile", "e2e-provider"} {
		if out, err := exec.Command(podunitBin, "describe", "pod", p).Output(); err == nil {
			places["describe "+p] = string(out)
		}
	}
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range cmdlines {
		b, _ := os.ReadFile(c)
		places[c] += string(b)
	}
	places["the units' properties"] = fmt.Sprint(unitProps(t, unit1), unitProps(t, unit2))
	for where, text := range places {
		if strings.Contains(text, registryPassword) {
			t.Errorf("the registry password is in %s", where)
		}
	}
	if fi, err := os.Stat("/run/podunit/credential-providers.json"); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("the plugins' configuration as sync wrote it: %v, %v (want root's alone)", fi.Mode(), err)
	}
}
