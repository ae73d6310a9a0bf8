package generator

import (
	"strings"
	"testing"
)

// podmanVolumePod is a pod as `podman kube generate` writes one whose
// container mounts the podman volume named claim: the volume is named
// <claim>-pvc and no PersistentVolumeClaim document comes with it.
func podmanVolumePod(claim string) string {
	return `apiVersion: v1
kind: Pod
metadata:
  name: web-pod
spec:
  containers:
  - name: web
    image: nginx:1
    volumeMounts:
    - mountPath: /data
      name: ` + claim + `-pvc
  volumes:
  - name: ` + claim + `-pvc
    persistentVolumeClaim:
      claimName: ` + claim + `
`
}

const dataClaim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {accessModes: [ReadWriteOnce]}\n"

// A claim that no manifest defines is podman's named volume: the pod runs
// with it (the same directory a defined claim of that name has), with a
// notice at the claimName; strict: true refuses the pod. Names podman
// writes and Kubernetes refuses are accepted with a notice that gives the
// rename; names podman would not write stay errors.
func TestPodmanNamedVolumes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  map[string]string
		strict bool
		// notices and errors, each "line: field: text it contains"
		notices, errs []string
	}{
		{name: "defined claim: no notice",
			files: map[string]string{"a.yaml": podmanVolumePod("data"), "b.yaml": dataClaim}},
		{name: "claim-less: a local volume",
			files:   map[string]string{"a.yaml": podmanVolumePod("data")},
			notices: []string{`15: spec.volumes[0].persistentVolumeClaim.claimName: no PersistentVolumeClaim "data" in namespace "default" in the manifests: used as a local volume, as podman's named volume is: the claim's directory /var/lib/podunit/volumes/default/data, made on first use and kept`}},
		{name: "a claim a typo away from a defined one: an error, not a new volume",
			files: map[string]string{"a.yaml": podmanVolumePod("dta"), "b.yaml": dataClaim},
			errs:  []string{`15: spec.volumes[0].persistentVolumeClaim.claimName: PersistentVolumeClaim "dta" not found in namespace "default"; did you mean "data"? Define it, or correct the name`}},
		{name: "a claim not found in a file that defines claims: an error",
			files: map[string]string{"a.yaml": podmanVolumePod("other") + "---\n" + dataClaim},
			errs:  []string{`15: spec.volumes[0].persistentVolumeClaim.claimName: PersistentVolumeClaim "other" not found in namespace "default"; did you mean "data"?`}},
		{name: "another file's claims far from the name: podman's claim-less volume",
			files:   map[string]string{"a.yaml": podmanVolumePod("web-data"), "b.yaml": dataClaim},
			notices: []string{`15: spec.volumes[0].persistentVolumeClaim.claimName: no PersistentVolumeClaim "web-data" in namespace "default" in the manifests: used as a local volume`}},
		{name: "claim-less, strict",
			files: map[string]string{"a.yaml": podmanVolumePod("data")}, strict: true,
			errs: []string{`15: spec.volumes[0].persistentVolumeClaim.claimName: no PersistentVolumeClaim "data" in namespace "default" in the manifests: used as a local volume, as podman's named volume is`}},
		{name: "podman's names with underscores",
			files: map[string]string{"a.yaml": podmanVolumePod("my_Data.1")},
			notices: []string{
				`13: spec.volumes[0].name: "my_Data.1-pvc" is not a DNS-1123 label, which Kubernetes requires; podman writes such names and accepts them, and so does podunit (to run the file on a cluster too, rename it my-data-1-pvc, in volumeMounts too)`,
				`15: spec.volumes[0].persistentVolumeClaim.claimName: "my_Data.1" is not a DNS-1123 subdomain, which Kubernetes requires; podman writes its volumes' names so and accepts them, and so does podunit (to run the file on a cluster too, rename it my-data-1;`,
				`15: spec.volumes[0].persistentVolumeClaim.claimName: no PersistentVolumeClaim "my_Data.1" in namespace "default"`,
			}},
		{name: "podman's names, strict",
			files: map[string]string{"a.yaml": podmanVolumePod("my_data")}, strict: true,
			errs: []string{
				`13: spec.volumes[0].name: "my_data-pvc" is not a DNS-1123 label`,
				`15: spec.volumes[0].persistentVolumeClaim.claimName: "my_data" is not a DNS-1123 subdomain`,
			}},
		{name: "a name podman would not write either",
			files: map[string]string{"a.yaml": strings.ReplaceAll(podmanVolumePod("x"), "x-pvc", "_x")},
			errs:  []string{`13: spec.volumes[0].name: "_x": a lowercase RFC 1123 label`}},
		{name: "a claim name with a slash",
			files: map[string]string{"a.yaml": strings.Replace(podmanVolumePod("x"), "claimName: x", "claimName: a/b", 1)},
			errs:  []string{`15: spec.volumes[0].persistentVolumeClaim.claimName: "a/b": a lowercase RFC 1123 subdomain`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, dir, name, content)
			}
			set, err := Reader{Strict: tc.strict}.Read(Source{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			var notices, errs []string
			for _, n := range set.Notices {
				notices = append(notices, n.String())
			}
			for _, e := range set.Errors {
				errs = append(errs, strings.Split(e.Error(), "\n")...)
			}
			match(t, "notices", notices, tc.notices)
			match(t, "errors", errs, tc.errs)
			if want := len(tc.errs) == 0; (len(set.Pods) == 1) != want {
				t.Errorf("%d pods run, want the pod run: %v", len(set.Pods), want)
			}
			if len(set.Pods) == 1 {
				ann := set.Pods[0].Spec.Annotations[AnnotationNotices]
				for _, n := range set.Pods[0].Notices {
					if !strings.Contains(ann, n.Msg) {
						t.Errorf("the pod's %s annotation lacks %q", AnnotationNotices, n.Msg)
					}
				}
				if len(set.Pods[0].Notices) != len(tc.notices) {
					t.Errorf("the pod carries %d notices, want %d", len(set.Pods[0].Notices), len(tc.notices))
				}
			}
		})
	}
}

// match checks that got has one line per want, in order, each containing
// its want after "file:".
func match(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s:\n%s\nwant %d:\n%s", what, strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
		return
	}
	for i := range want {
		_, rest, _ := strings.Cut(got[i], "a.yaml:")
		w := want[i]
		if strings.HasPrefix(rest, strings.SplitN(w, ":", 2)[0]+": notice: ") {
			rest = strings.Replace(rest, "notice: ", "", 1)
		}
		if !strings.HasPrefix(rest, w) {
			t.Errorf("%s[%d]: %q\nwant it to start with a.yaml:%q", what, i, got[i], w)
		}
	}
}

// A workload template's metadata.name, which kubectl sends and the API
// server drops (podman kube generate --type deployment writes one), is
// accepted with a notice, on every workload kind.
func TestTemplateNameIsNoticed(t *testing.T) {
	for _, k := range Kinds {
		if !k.Workload {
			continue
		}
		t.Run(k.Name, func(t *testing.T) {
			var found bool
			for _, f := range k.Fields {
				if f.Path == k.Template()+"metadata.name" {
					found = f.Class == Noticed && strings.Contains(f.Doc, "Ignored by Kubernetes too")
				}
			}
			if !found {
				t.Errorf("%s has no noticed %smetadata.name", k.Name, k.Template())
			}
		})
	}
	dep := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      name: web-pod
      labels: {app: web}
    spec:
      containers: [{name: web, image: "nginx:1"}]
`
	m, err := DecodeManifest("a.yaml", []byte(dep))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range m.Notices {
		got = append(got, n.String())
	}
	match(t, "notices", got, []string{"8: spec.template.metadata.name: Ignored by Kubernetes too (the API server drops it): the pods are named after the Deployment. Accepted, no effect."})
	if len(m.Pods) != 1 || m.Pods[0].Name() != "web-0" {
		t.Errorf("pods %v, want web-0", m.Pods)
	}
}

// podman's annotations: each value that asks for what podunit does anyway
// gives no notice, any other a notice at its key saying what happens
// instead; podman 4's bind-mount-options:<path> key, which is not a
// Kubernetes name, is accepted; other annotations are left alone.
func TestPodmanAnnotations(t *testing.T) {
	pod := func(annotations string) string {
		return `apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
` + annotations + `spec:
  containers:
  - name: web
    image: nginx:1
  - name: root
    image: nginx:1
    securityContext: {privileged: true}
`
	}
	for _, tc := range []struct {
		name, annotations string
		notices           []string // "line: field: text it starts with"
		err               string
	}{
		{name: "podman 4's defaults: quiet",
			annotations: "    io.podman.annotations.autoremove/web: \"FALSE\"\n    io.podman.annotations.init/web: \"FALSE\"\n    io.podman.annotations.privileged/web: \"FALSE\"\n    io.podman.annotations.publish-all/web: \"FALSE\"\n    io.kubernetes.cri-o.TTY/web: \"false\"\n    io.kubernetes.cri-o.ContainerType/web: container\n    io.podman.annotations.kube.health.check/web: \"true\"\n    io.podman.annotations.userns: host\n    io.podman.annotations.init.container.type: always\n    io.containers.autoupdate/web: registry\n    example.com/other: anything\n"},
		{name: "privileged with its securityContext: quiet",
			annotations: "    io.podman.annotations.privileged/root: \"TRUE\"\n"},
		{name: "privileged without it",
			annotations: "    io.podman.annotations.privileged/web: \"TRUE\"\n",
			notices:     []string{`6: metadata.annotations[io.podman.annotations.privileged/web]: "TRUE": podman's record of a privileged container: the container's ` + "`securityContext.privileged`" + ` decides`}},
		{name: "what podunit does not do",
			annotations: "    io.podman.annotations.init/web: \"TRUE\"\n    io.podman.annotations.userns: auto\n    io.podman.annotations.ulimit: nofile=1024:2048\n    io.podman.annotations.volumes-from/web: root\n    io.podman.annotations.infra.name: p-infra\n",
			notices: []string{
				`6: metadata.annotations[io.podman.annotations.init/web]: "TRUE": With ` + "`TRUE`" + ` podman runs an init process (catatonit) as the container's PID 1; podunit does not`,
				`7: metadata.annotations[io.podman.annotations.userns]: "auto": podman's user namespace mode`,
				`8: metadata.annotations[io.podman.annotations.ulimit]: "nofile=1024:2048": Resource limits`,
				`9: metadata.annotations[io.podman.annotations.volumes-from/web]: "root": podman mounts the volumes of the containers named here: podunit does not.`,
				`10: metadata.annotations[io.podman.annotations.infra.name]: "p-infra": The name of podman's infra container`,
			}},
		{name: "Kubernetes' old seccomp annotations, which podman reads",
			annotations: "    seccomp.security.alpha.kubernetes.io/pod: runtime/default\n    container.seccomp.security.alpha.kubernetes.io/web: unconfined\n",
			notices: []string{
				`6: metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: "runtime/default": Kubernetes' old seccomp annotation`,
				`7: metadata.annotations[container.seccomp.security.alpha.kubernetes.io/web]: "unconfined": The same for one container`,
			}},
		{name: "a container the pod does not have",
			annotations: "    io.podman.annotations.init/gone: \"TRUE\"\n",
			notices:     []string{`6: metadata.annotations[io.podman.annotations.init/gone]: "TRUE": for a container "gone" that the pod does not have: no effect`}},
		{name: "podman 4's and 5's bind-mount-options",
			annotations: "    bind-mount-options:/srv/data: z\n    bind-mount-options: /srv/conf:Z\n",
			notices: []string{
				`6: metadata.annotations[bind-mount-options:/srv/data]: "z": ` + "`<host path>:z`",
				`7: metadata.annotations[bind-mount-options]: "/srv/conf:Z": ` + "`<host path>:z`",
			}},
		{name: "other keys that are not names stay errors",
			annotations: "    bind-mount-options-x:/srv: z\n",
			err:         "a.yaml:6: metadata.annotations[bind-mount-options-x:/srv]: prefix part a lowercase RFC 1123 subdomain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeManifest("a.yaml", []byte(pod(tc.annotations)))
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range m.Notices {
				got = append(got, n.String())
			}
			match(t, "notices", got, tc.notices)
		})
	}
}

// Every annotation key in the table is found by its pattern, per container
// or not; the table's keys are podman's own names.
func TestPodAnnotationsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range PodAnnotations {
		key := strings.ReplaceAll(a.Pattern(), "<container>", "web")
		got, ctr, ok := annotationKeyOf(key)
		if !ok || got.Pattern() != a.Pattern() || (ctr == "web") != a.PerContainer {
			t.Errorf("%s: found %v %q %v", a.Pattern(), got, ctr, ok)
		}
		if seen[a.Pattern()] {
			t.Errorf("%s twice", a.Pattern())
		}
		seen[a.Pattern()] = true
		if a.Doc == "" || (a.quiet != nil) != (a.Quiet != "") {
			t.Errorf("%s: its doc, or what is quiet, is not said", a.Pattern())
		}
	}
	if _, _, ok := annotationKeyOf("io.podman.annotations.init"); ok {
		t.Error("a per-container key without its container is found")
	}
}
