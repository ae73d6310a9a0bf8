//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The YAML `podman kube generate` writes for a pod with a podman volume (a
// claim no manifest defines, its names with "_"), a published port (a
// hostPort) and the ConfigMap file `podman kube play --configmap` reads
// beside it runs as it is, its image swapped for the test bed's busybox:
// `podunit validate DIR` reads the directory holding them as sync would
// (the notices said, the README skipped), `podunit apply -f DIR` puts both
// into the manifest directory, and the pod serves the ConfigMap's greeting
// on its host port from a page it wrote into the volume, the directory a
// claim of that name has, which outlives the pod.
func TestPodmanKubeGenerateRuns(t *testing.T) {
	const greeting = "hello from podman's YAML"
	volume := "/var/lib/podunit/volumes/default/podman_web_data"
	freshDir(t, volume)
	app := t.TempDir()
	for name, content := range map[string]string{
		"podman-web.yaml": realManifest(t, "podman-5-kube-generate-web.yaml",
			"image: docker.io/library/busybox:latest", "image: localhost/podunit/busybox:1.35"),
		"podman-web-config.yaml": realManifest(t, "podman-kube-play-configmap-web.yaml"),
		"README.md":              "podman kube play podman-web.yaml --configmap podman-web-config.yaml\n",
	} {
		if err := os.WriteFile(filepath.Join(app, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	out, err := exec.Command(podunitBin, "validate", app).CombinedOutput()
	for _, want := range []string{
		filepath.Join(app, "README.md") + ": skipped: not a manifest",
		filepath.Join(app, "podman-web.yaml") + `:35: notice: spec.volumes[0].persistentVolumeClaim.claimName: no PersistentVolumeClaim "podman_web_data" in namespace "default" in the manifests: used as a local volume`,
		filepath.Join(app, "podman-web.yaml") + `:33: notice: spec.volumes[0].name: "podman_web_data-pvc" is not a DNS-1123 label`,
		filepath.Join(app, "podman-web.yaml") + ": pod default/podman-web is valid",
		filepath.Join(app, "podman-web-config.yaml") + ": defines ConfigMap default/podman-web-config",
	} {
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("podunit validate DIR: %v, want a line %q:\n%s", err, want, out)
		}
	}

	for _, name := range []string{"podman-web.yaml", "podman-web-config.yaml"} {
		t.Cleanup(func() { os.Remove(filepath.Join(manifestDir, name)) })
	}
	out, err = exec.Command(podunitBin, "apply", "-f", app).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pod/podman-web created ("+filepath.Join(manifestDir, "podman-web.yaml")+")") ||
		!strings.Contains(string(out), filepath.Join(manifestDir, "podman-web-config.yaml")+" created") {
		t.Fatalf("podunit apply -f DIR: %v\n%s", err, out)
	}
	unit := waitActive(t, "default", "podman-web")
	waitFor(t, "the pod's page on its host port", func() (bool, error) {
		code, body, err := get("http://" + hostPortAddr() + ":18090/")
		return code == 200 && strings.TrimSpace(body) == greeting, err
	})
	if b, err := os.ReadFile(filepath.Join(volume, "index.html")); err != nil || strings.TrimSpace(string(b)) != greeting {
		t.Errorf("the page in the claim's directory %s: %q %v", volume, b, err)
	}
	if notices := getPod(t, "default", "podman-web").Annotations["podunit.io/notices"]; !strings.Contains(notices, "used as a local volume, as podman's named volume is") {
		t.Errorf("the pod's notices: %q", notices)
	}

	for _, name := range []string{"podman-web.yaml", "podman-web-config.yaml"} {
		os.Remove(filepath.Join(manifestDir, name))
	}
	waitGone(t, unit)
	if b, err := os.ReadFile(filepath.Join(volume, "index.html")); err != nil || strings.TrimSpace(string(b)) != greeting {
		t.Errorf("the volume's data after its pod went: %q %v", b, err)
	}
}
