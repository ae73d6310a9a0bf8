// Package archive imports image archives into the container runtime: the
// files `docker save`, `podman save` and `skopeo copy … oci-archive:`
// write, dropped into a directory so that a box can be provisioned, and
// boot, without any registry. The CRI has no call for it, so each runtime's
// own tool does the import (ctr for containerd; skopeo for CRI-O, copying
// each image into CRI-O's containers-storage store); the CRI then confirms
// that every image the archive names is there.
package archive

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/atomicfile"
)

// Images is the CRI image service's status call.
type Images interface {
	ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error)
}

// Importer imports archives into one runtime.
type Importer struct {
	// Runtime is the CRI runtime's name ("containerd", "cri-o").
	Runtime string
	// Address is containerd's socket (the CRI endpoint's path).
	Address string
	// Store is CRI-O's image store in skopeo's containers-storage syntax,
	// "[driver@root+runroot]" (criclient.CRIOConfig); empty: the store of
	// /etc/containers/storage.conf.
	Store string
	// Images confirms the imports.
	Images Images
	// Command runs a tool; nil: exec.CommandContext.
	Command func(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Result is what became of one archive.
type Result struct {
	File   string
	Images []string // the names the archive holds
	// Unchanged: imported already, and not changed since.
	Unchanged bool
	Err       error
}

// recordName is the file in the directory that records what was imported
// (by file name: size and modification time), so that each archive is
// imported once, and again only when it changes.
const recordName = ".imported.json"

// ImportDir imports every archive in dir (*.tar, *.tar.gz, *.tgz, *.oci)
// that is new or changed since it was last imported.
func (im Importer) ImportDir(ctx context.Context, dir string) ([]Result, error) {
	names, err := Archives(dir)
	if err != nil {
		return nil, err
	}
	record := map[string]string{}
	if b, err := os.ReadFile(filepath.Join(dir, recordName)); err == nil {
		_ = json.Unmarshal(b, &record)
	}
	if len(names) == 0 && len(record) == 0 {
		return nil, nil // no archive now or before (or no directory)
	}
	var out []Result
	seen := map[string]bool{}
	for _, name := range names {
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		seen[name] = true
		stamp := fmt.Sprintf("%d %d", info.Size(), info.ModTime().UnixNano())
		res := Result{File: path}
		res.Images, res.Err = Names(path)
		if res.Err == nil && record[name] == stamp && im.present(ctx, res.Images) {
			res.Unchanged = true
			out = append(out, res)
			continue
		}
		if res.Err == nil {
			res.Err = im.Import(ctx, path, res.Images)
		}
		if res.Err == nil {
			record[name] = stamp
		} else {
			delete(record, name)
		}
		out = append(out, res)
	}
	for name := range record {
		if !seen[name] {
			delete(record, name)
		}
	}
	b, _ := json.Marshal(record)
	if err := atomicfile.Write(filepath.Join(dir, recordName), b, 0o644); err != nil {
		return out, err
	}
	return out, nil
}

// Archives are the archive files in dir, by name; none when dir does not
// exist.
func Archives(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && isArchive(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func isArchive(name string) bool {
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".oci"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// present tells whether the runtime has every image.
func (im Importer) present(ctx context.Context, images []string) bool {
	if im.Images == nil {
		return true
	}
	for _, ref := range images {
		st, err := im.Images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: ref}, false)
		if err != nil || st.GetImage() == nil {
			return false
		}
	}
	return true
}

// Import imports one archive, whose images are named images, and checks
// that the runtime has them.
func (im Importer) Import(ctx context.Context, path string, images []string) error {
	var name string
	var calls [][]string
	switch im.Runtime {
	case "containerd":
		name = "ctr"
		calls = [][]string{{"--address", im.Address, "--namespace", "k8s.io", "images", "import", path}}
	case "cri-o":
		// An image at a time, from where the archive holds it to CRI-O's
		// store under its name: CRI-O lists it at once.
		name = "skopeo"
		archived, err := readArchive(path)
		if err != nil {
			return err
		}
		for _, h := range archived {
			if h.name != "" {
				calls = append(calls, []string{"copy", "--quiet", h.ref, "containers-storage:" + im.Store + normalize(h.name)})
			}
		}
	default:
		return fmt.Errorf("importing image archives into %q is not supported: containerd (ctr) and CRI-O (skopeo) are", im.Runtime)
	}
	if _, err := exec.LookPath(name); err != nil && im.Command == nil {
		return fmt.Errorf("%s imports archives into %s, and is not installed: %w", name, im.Runtime, err)
	}
	run := im.Command
	if run == nil {
		run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, name, args...).CombinedOutput()
		}
	}
	for _, args := range calls {
		if out, err := run(ctx, name, args...); err != nil {
			return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	if !im.present(ctx, images) {
		return fmt.Errorf("imported, but the runtime does not list %s", strings.Join(images, ", "))
	}
	return nil
}

// Names are the image names an archive holds: an OCI layout's
// org.opencontainers.image.ref.name (or containerd's io.containerd.image.name)
// annotations, a docker archive's RepoTags. An archive without a name is an
// error: the runtime would hold the image by its digest alone, and no pod
// could name it.
func Names(path string) ([]string, error) {
	held, err := readArchive(path)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, h := range held {
		if h.name != "" {
			names = append(names, normalize(h.name))
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: the archive names no image: save it with its name (podman save NAME, docker save NAME, skopeo copy … oci-archive:FILE:NAME)", path)
	}
	return names, nil
}

// held is one image of an archive: its name there ("" when it has none)
// and its reference in skopeo's syntax (oci-archive:FILE[:REF],
// docker-archive:FILE:NAME).
type held struct{ name, ref string }

func readArchive(path string) ([]held, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	var out []held
	var isArchive bool
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: not a tar archive: %w", path, err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "index.json":
			isArchive = true
			var idx struct {
				Manifests []struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"manifests"`
			}
			if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&idx); err != nil {
				return nil, fmt.Errorf("%s: index.json: %w", path, err)
			}
			for _, m := range idx.Manifests {
				ref := m.Annotations["org.opencontainers.image.ref.name"]
				one := held{ref: "oci-archive:" + path}
				if ref != "" {
					one.ref += ":" + ref
				}
				if n := m.Annotations["io.containerd.image.name"]; n != "" {
					one.name = n
				} else if strings.ContainsAny(ref, "/:") {
					one.name = ref
				}
				out = append(out, one)
			}
		case "manifest.json":
			isArchive = true
			var manifests []struct {
				RepoTags []string `json:"RepoTags"`
			}
			if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&manifests); err != nil {
				return nil, fmt.Errorf("%s: manifest.json: %w", path, err)
			}
			for _, m := range manifests {
				for _, tag := range m.RepoTags {
					out = append(out, held{name: tag, ref: "docker-archive:" + path + ":" + tag})
				}
			}
		}
	}
	if !isArchive {
		return nil, fmt.Errorf("%s: neither an OCI archive (index.json) nor a docker archive (manifest.json)", path)
	}
	return out, nil
}

// normalize names an image as the CRI lists it: "busybox:1" is
// docker.io/library/busybox:1.
func normalize(name string) string {
	first, _, ok := strings.Cut(name, "/")
	if !ok {
		return "docker.io/library/" + name
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + name
	}
	return name
}

// PinnedLabel is containerd's label for a pinned image: its CRI reports
// the image pinned, and image garbage collection (the kubelet's, crictl's
// prune) leaves it alone.
const PinnedLabel = "io.cri-containerd.pinned"

// Pin labels images (by ID or name) pinned in containerd, so that nothing
// collects the images a rolled-back generation runs. CRI-O keeps pinned
// images in its own configuration (pinned_images), not per image: there
// Pin does nothing.
func (im Importer) Pin(ctx context.Context, images []string) error {
	if im.Runtime != "containerd" || len(images) == 0 {
		return nil
	}
	run := im.Command
	if run == nil {
		run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, name, args...).CombinedOutput()
		}
	}
	var errs []error
	for _, ref := range images {
		args := []string{"--address", im.Address, "--namespace", "k8s.io", "images", "label", ref, PinnedLabel + "=pinned"}
		if out, err := run(ctx, "ctr", args...); err != nil {
			errs = append(errs, fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out))))
		}
	}
	return errors.Join(errs...)
}
