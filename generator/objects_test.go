package generator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const usesConfig = `apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  containers:
  - name: app
    image: app:1
    envFrom:
    - configMapRef: {name: settings}
    env:
    - name: TOKEN
      valueFrom:
        secretKeyRef: {name: creds, key: token}
  volumes:
  - name: conf
    configMap:
      name: settings
      items:
      - {key: mode, path: mode.conf}
`

const plainPod = "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  containers: [{name: c, image: \"i:1\"}]\n"

func configMap(value string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata:\n  mode: " + value + "\n"
}

const secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData:\n  token: s3cret\n"

func readDir(t *testing.T, files map[string]string) *Set {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func hashes(set *Set) map[string]string {
	out := map[string]string{}
	for _, p := range set.Pods {
		out[p.Name()] = p.Hash
	}
	return out
}

// A pod uses ConfigMaps and Secrets from any file; a change to one changes
// the hash (and so replaces) exactly the pods that use it.
func TestConfigMapChangeReplacesOnlyItsUsers(t *testing.T) {
	files := map[string]string{
		"a-user.yaml":  strings.ReplaceAll(usesConfig, "%s", "user"),
		"b-other.yaml": strings.ReplaceAll(plainPod, "%s", "other"),
		"config.yaml":  configMap("fast") + "---\n" + secret,
	}
	before := readDir(t, files)
	if len(before.Errors) > 0 {
		t.Fatal(before.Errors)
	}
	user := before.Pods[0]
	if user.Name() != "user" || len(user.Objects.ConfigMaps) != 1 || string(user.Objects.Secrets[0].Data["token"]) != "s3cret" {
		t.Fatalf("objects of the user pod: %+v", user.Objects)
	}
	if string(user.Spec.UID) != user.Hash || user.Spec.Annotations[AnnotationConfigHash] != user.Hash {
		t.Errorf("UID %s and hash annotation %s must follow the hash %s", user.Spec.UID, user.Spec.Annotations[AnnotationConfigHash], user.Hash)
	}
	files["config.yaml"] = configMap("slow") + "---\n" + secret
	after := readDir(t, files)
	h0, h1 := hashes(before), hashes(after)
	if h0["user"] == h1["user"] {
		t.Error("the ConfigMap's user kept its hash after the ConfigMap changed")
	}
	if h0["other"] != h1["other"] {
		t.Error("a pod that does not use the ConfigMap changed hash")
	}
	// A pod without references hashes as it always did.
	alone, err := Decode("x.yaml", []byte(strings.ReplaceAll(plainPod, "%s", "other")))
	if err != nil || alone[0].Hash != h0["other"] {
		t.Errorf("plain pod hash %v (err %v), want %s", alone, err, h0["other"])
	}
}

func TestMissingReferencesAreErrorsUnlessOptional(t *testing.T) {
	set := readDir(t, map[string]string{
		"user.yaml": strings.ReplaceAll(usesConfig, "%s", "user"),
		"cm.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {other: x}\n",
	})
	if len(set.Pods) != 0 {
		t.Fatalf("a pod with missing references was kept: %v", set.Pods)
	}
	var msgs []string
	for _, e := range set.Errors {
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		`user.yaml:13: spec.containers[0].env[0].valueFrom.secretKeyRef: Secret "creds" not found in namespace "default": define it in a manifest, or set optional: true`,
		`user.yaml:19: spec.volumes[0].configMap.items[0].key: ConfigMap "settings" has no key "mode" (it has: [other])`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("errors lack %q:\n%s", want, all)
		}
	}

	optional := strings.Replace(strings.ReplaceAll(usesConfig, "%s", "user"), "key: token}", "key: token, optional: true}", 1)
	optional = strings.Replace(optional, "name: settings\n      items", "name: settings\n      optional: true\n      items", 1)
	set = readDir(t, map[string]string{"user.yaml": optional, "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"})
	if len(set.Errors) > 0 || len(set.Pods) != 1 {
		t.Errorf("optional references: pods %v, errors %v", set.Pods, set.Errors)
	}
}

func TestObjectsConflictAndValidation(t *testing.T) {
	set := readDir(t, map[string]string{
		"a.yaml": configMap("one"),
		"b.yaml": configMap("two"),
		"c.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\ndata: {\"bad key\": x}\n",
		"d.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: \"not base64!\"}\n",
	})
	var msgs []string
	for _, e := range set.Errors {
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		"b.yaml: metadata.name: ConfigMap default/settings is already defined in",
		`c.yaml:3: metadata.name: "Bad_Name"`,
		`c.yaml:4: data[bad key]: "bad key": a valid config key must consist of alphanumeric characters`,
		`d.yaml:4: data[k]: not valid base64 (use stringData for plain text)`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("errors lack %q:\n%s", want, all)
		}
	}
}

// A pod's image pull Secrets are resolved as its other Secrets are: a
// missing one or one without registry credentials is an error naming the
// field; a good one is part of the pod's data and hash.
func TestImagePullSecrets(t *testing.T) {
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  imagePullSecrets: [{name: regcred}]\n  containers: [{name: app, image: registry.example:5000/app:1}]\n"
	if _, err := Decode("pod.yaml", []byte(pod)); err == nil || !strings.Contains(err.Error(), `pod.yaml:5: spec.imagePullSecrets[0].name: Secret "regcred" not found`) {
		t.Errorf("missing: %v", err)
	}
	opaque := "---\napiVersion: v1\nkind: Secret\nmetadata: {name: regcred}\nstringData: {password: x}\n"
	if _, err := Decode("pod.yaml", []byte(pod+opaque)); err == nil || !strings.Contains(err.Error(), `Secret "regcred": no .dockerconfigjson`) {
		t.Errorf("not a registry secret: %v", err)
	}
	good := "---\napiVersion: v1\nkind: Secret\nmetadata: {name: regcred}\ntype: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: '{\"auths\":{\"registry.example:5000\":{\"username\":\"bot\",\"password\":\"x\"}}}'}\n"
	pods, err := Decode("pod.yaml", []byte(pod+good))
	if err != nil || len(pods[0].Objects.Secrets) != 1 {
		t.Fatalf("good: %v %+v", err, pods)
	}
	other, _ := Decode("pod.yaml", []byte(pod+strings.Replace(good, `"x"`, `"y"`, 1)))
	// As for any Secret a pod uses (its data file holds them).
	if other[0].Hash == pods[0].Hash {
		t.Error("new credentials do not replace the pod")
	}
}
