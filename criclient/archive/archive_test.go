package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func writeTar(t *testing.T, path string, gz bool, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.Close()
	b := buf.Bytes()
	if gz {
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		w.Write(b)
		w.Close()
		b = z.Bytes()
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The names an archive holds, as the tools that write them put them.
func TestNames(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		file  string
		gz    bool
		files map[string]string
		want  []string
		err   string
	}{
		{"skopeo.tar", false, map[string]string{"oci-layout": "{}", "index.json": `{"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"localhost/app:1"}}]}`}, []string{"localhost/app:1"}, ""},
		{"podman.tar.gz", true, map[string]string{"manifest.json": `[{"RepoTags":["busybox:1.36","registry.example:5000/team/tool:2"]}]`}, []string{"docker.io/library/busybox:1.36", "registry.example:5000/team/tool:2"}, ""},
		{"ctr.tar", false, map[string]string{"index.json": `{"manifests":[{"annotations":{"io.containerd.image.name":"docker.io/library/nginx:1","org.opencontainers.image.ref.name":"1"}}]}`}, []string{"docker.io/library/nginx:1"}, ""},
		{"nameless.tar", false, map[string]string{"index.json": `{"manifests":[{}]}`}, nil, "names no image"},
		{"other.tar", false, map[string]string{"etc/passwd": "root"}, nil, "neither an OCI archive"},
	} {
		path := filepath.Join(dir, tc.file)
		writeTar(t, path, tc.gz, tc.files)
		got, err := Names(path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
				t.Errorf("%s: %v, want an error naming the file and saying %q", tc.file, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.file, got, err, tc.want)
		}
	}
}

type fakeImages struct{ present map[string]bool }

func (f *fakeImages) ImageStatus(_ context.Context, image *runtimeapi.ImageSpec, _ bool) (*runtimeapi.ImageStatusResponse, error) {
	if f.present[image.Image] {
		return &runtimeapi.ImageStatusResponse{Image: &runtimeapi.Image{Id: "sha256:" + image.Image}}, nil
	}
	return &runtimeapi.ImageStatusResponse{}, nil
}

// Each archive is imported once, and again when it changes; the runtime
// must list its images afterwards.
func TestImportDir(t *testing.T) {
	dir := t.TempDir()
	writeTar(t, filepath.Join(dir, "app.tar"), false, map[string]string{"index.json": `{"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"localhost/app:1"}}]}`})
	images := &fakeImages{present: map[string]bool{}}
	var runs [][]string
	im := Importer{Runtime: "containerd", Address: "/run/containerd/containerd.sock", Images: images,
		Command: func(_ context.Context, name string, args ...string) ([]byte, error) {
			runs = append(runs, append([]string{name}, args...))
			images.present["localhost/app:1"] = true
			return nil, nil
		}}
	res, err := im.ImportDir(context.Background(), dir)
	if err != nil || len(res) != 1 || res[0].Err != nil || res[0].Unchanged {
		t.Fatalf("first import: %+v, %v", res, err)
	}
	if want := []string{"ctr", "--address", "/run/containerd/containerd.sock", "--namespace", "k8s.io", "images", "import", filepath.Join(dir, "app.tar")}; !slices.Equal(runs[0], want) {
		t.Errorf("ran %q, want %q", runs[0], want)
	}
	if res, _ = im.ImportDir(context.Background(), dir); len(runs) != 1 || !res[0].Unchanged {
		t.Errorf("an unchanged archive was imported again: %q", runs)
	}
	// The image removed from the runtime: imported again.
	delete(images.present, "localhost/app:1")
	if im.ImportDir(context.Background(), dir); len(runs) != 2 {
		t.Errorf("an archive whose image the runtime lost was not imported again: %d runs", len(runs))
	}
	// A tool that does not put the image in the runtime is an error.
	im.Command = func(context.Context, string, ...string) ([]byte, error) { return nil, nil }
	delete(images.present, "localhost/app:1")
	if res, _ = im.ImportDir(context.Background(), dir); res[0].Err == nil {
		t.Error("an import after which the runtime lacks the image succeeded")
	}
	if names, _ := Archives(dir); !slices.Equal(names, []string{"app.tar"}) {
		t.Errorf("Archives = %v (the record file is not an archive)", names)
	}
}

// Into CRI-O: skopeo copies each image the archive names from where the
// archive holds it into CRI-O's store, under its name as the CRI lists it.
func TestImportIntoCRIO(t *testing.T) {
	dir := t.TempDir()
	oci, docker := filepath.Join(dir, "two.tar"), filepath.Join(dir, "podman.tar.gz")
	writeTar(t, oci, false, map[string]string{"index.json": `{"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"localhost/app:1"}},` +
		`{"annotations":{"io.containerd.image.name":"docker.io/library/nginx:1","org.opencontainers.image.ref.name":"1"}},{}]}`})
	writeTar(t, docker, true, map[string]string{"manifest.json": `[{"RepoTags":["busybox:1.36"]}]`})
	var runs [][]string
	im := Importer{Runtime: "cri-o", Store: "[overlay@/var/lib/containers/storage+/run/containers/storage]",
		Command: func(_ context.Context, name string, args ...string) ([]byte, error) {
			runs = append(runs, append([]string{name}, args...))
			return nil, nil
		}}
	for _, path := range []string{oci, docker} {
		names, err := Names(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := im.Import(context.Background(), path, names); err != nil {
			t.Fatal(err)
		}
	}
	store := "containers-storage:[overlay@/var/lib/containers/storage+/run/containers/storage]"
	want := [][]string{
		{"skopeo", "copy", "--quiet", "oci-archive:" + oci + ":localhost/app:1", store + "localhost/app:1"},
		{"skopeo", "copy", "--quiet", "oci-archive:" + oci + ":1", store + "docker.io/library/nginx:1"},
		{"skopeo", "copy", "--quiet", "docker-archive:" + docker + ":busybox:1.36", store + "docker.io/library/busybox:1.36"},
	}
	if !slices.EqualFunc(runs, want, slices.Equal) {
		t.Errorf("ran\n%q\nwant\n%q", runs, want)
	}
}
