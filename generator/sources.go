package generator

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// Skipped is a directory entry that is not read as a manifest, and why.
type Skipped struct {
	Path   string
	Reason string
}

// Set is what a manifest directory holds: the pods to run, the files that
// could not be used and the entries that were skipped.
type Set struct {
	Pods []*Pod // sorted by manifest path, then document order
	// CronJobs are the CronJobs' pod templates (Pod.Cron set), in the same
	// order: each is run on its schedule, not as it is.
	CronJobs []*Pod
	// Services are the Services to serve, in the same order. One that
	// asks for what an earlier definition holds (its name, its clusterIP,
	// a port on the node's addresses) is not here: Errors says why.
	Services []*Service
	Errors   []error // one per unusable file or conflicting object; *FieldError values
	Skipped  []Skipped
	// Notices are every usable file's notices, by file and line.
	Notices []Notice
	// NotAdmitted are the pods that do not fit this node (nodeSelector,
	// node affinity, OS), each with its Rejection: they are not run.
	NotAdmitted []*Pod
	// Defined are the ConfigMaps, Secrets and claims of the usable files.
	Defined []Definition
	// Conflicts maps a pod's key to the other files that define it too: the
	// first definition runs, these do not.
	Conflicts map[string][]string
}

// manifestExts are the file name endings read as manifests.
var manifestExts = []string{".yaml", ".yml", ".json"}

// Source is a directory of manifests. Origin is the URL its files were
// fetched from (`podunit fetch`), or "" for a directory people write.
type Source struct {
	Dir    string
	Origin string
}

// ReadDir reads every manifest in dir. A missing directory is an empty set,
// not an error: the path unit creates it, and a machine may have no pods.
// Files are read in name order (os.ReadDir sorts); when two define the same namespace/name,
// the first keeps it and the second is reported as an error.
func ReadDir(dir string) (*Set, error) { return Reader{}.Read(Source{Dir: dir}) }

// ReadSources reads sources as a Reader with no options does.
func ReadSources(sources ...Source) (*Set, error) { return Reader{}.Read(sources...) }

// Reader reads manifests for one node.
type Reader struct {
	// Strict makes every notice an error: the file is invalid, as a file
	// with a typo is (config.yaml strict: true).
	Strict bool
	// Node is this node, for admission. Without a name, every pod is
	// admitted and nodeName is not compared.
	Node Node
	// RestrictHostAccess is config.yaml's restrictHostAccess: which pods
	// may not reach the host (HostAccessAllowed, HostAccessNoneURL,
	// HostAccessNoneAll); such a pod is not admitted.
	RestrictHostAccess string
	// ServiceClusterIPRange is where Services' ClusterIPs are
	// (config.yaml serviceClusterIPRange), an IPv4 prefix; zero:
	// DefaultServiceClusterIPRange. An explicit clusterIP outside it is
	// an error.
	ServiceClusterIPRange netip.Prefix
	// NodePortRange is where node ports are; zero: DefaultNodePortRange.
	// An explicit nodePort outside it is an error.
	NodePortRange PortRange
	// ClusterDNS is the address of the node's resolver, which no Service
	// may ask for; zero: DefaultClusterDNS of the ClusterIP range.
	ClusterDNS netip.Addr
	// Held is what each Service (by namespace/name) held after the last
	// sync, from the sync's record: a Service whose manifest asks again
	// for an address or a port it holds keeps it against any other
	// object of the manifests, whatever the read order, as in Kubernetes
	// the first to have it does. nil: the read order alone decides.
	Held map[string]ServiceHolding
	// HeldHostPorts are the hostPorts of the pods the last sync ran, by
	// namespace/name: a pod asking again for one keeps it against a
	// Service read before it (the Services' table says them; nil: the
	// read order decides).
	HeldHostPorts map[string][]HeldPort
}

// Read reads the manifests of every source, in order, as ReadDir
// reads one: the first definition of a name wins across all of them, and
// pods use the ConfigMaps, Secrets and claims of any source. Pods from a
// fetched source are annotated as the kubelet annotates staticPodURL pods
// (kubernetes.io/config.source: http). Pods that do not fit the node are
// in NotAdmitted instead of Pods.
func (r Reader) Read(sources ...Source) (*Set, error) {
	set := &Set{}
	paths, origin, err := list(set, sources)
	if err != nil {
		return nil, err
	}
	r.assemble(set, paths, decodeAll(paths), origin, NewObjects(), nil)
	return set, nil
}

// Definition is an object a file defines for pods to use.
type Definition struct {
	File, Kind, Namespace, Name string
}

// File is a manifest's name and content, for Check.
type File struct {
	Path string
	Data []byte
}

// Check reads files exactly as Read would read them beside the sources, for
// `podunit validate`: the set holds the files' pods, notices and errors
// only, with references resolved against the files and, after them, the
// ConfigMaps, Secrets and claims of the sources. A source file that is one
// of the files is read once, as the file; the sources' own errors and
// conflicts with the files are not reported (the files may be edits of
// them).
func (r Reader) Check(files []File, sources ...Source) (*Set, error) {
	set := &Set{}
	given := map[string]bool{}
	paths := make([]string, len(files))
	decoded := make([]decodeResult, len(files))
	for i, f := range files {
		paths[i] = f.Path
		if abs, err := filepath.Abs(f.Path); err == nil {
			given[abs] = true
		}
		decoded[i].m, decoded[i].err = DecodeManifest(f.Path, f.Data)
	}
	more, _, err := list(&Set{}, sources)
	if err != nil {
		return nil, err
	}
	var others []string
	for _, p := range more {
		if abs, err := filepath.Abs(p); err == nil && !given[abs] {
			others = append(others, p)
		}
	}
	fallback := NewObjects()
	var otherPods []*Pod // for the Services' selectors
	for i, d := range decodeAll(others) {
		if d.err == nil {
			_ = fallback.Add(others[i], d.m) // their own conflicts are sync's to report
			otherPods = append(otherPods, d.m.Pods...)
		}
	}
	objects := NewObjects()
	objects.fallback = fallback
	r.assemble(set, paths, decoded, nil, objects, otherPods)
	return set, nil
}

// ManifestFiles names the manifest files of directory dir in name order,
// as a sync reads a manifest directory (not recursively), and the entries
// it skips, each with why: what `podunit validate DIR` and `podunit apply
// -f DIR` read.
func ManifestFiles(dir string) ([]string, []Skipped, error) {
	set := &Set{}
	paths, _, err := list(set, []Source{{Dir: dir}})
	return paths, set.Skipped, err
}

// list names the manifest files of the sources, noting skipped entries in
// set, with the URL each fetched file came from.
func list(set *Set, sources []Source) (paths []string, origin map[string]string, err error) {
	origin = map[string]string{} // path → URL
	for _, src := range sources {
		if fi, err := os.Stat(src.Dir); err == nil && fi.Mode().IsRegular() {
			// One file, as the kubelet's staticPodPath may be.
			paths = append(paths, src.Dir)
			if src.Origin != "" {
				origin[src.Dir] = src.Origin
			}
			continue
		}
		entries, err := os.ReadDir(src.Dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read manifest directory: %w", err)
		}
		for _, e := range entries {
			path := filepath.Join(src.Dir, e.Name())
			if reason := skipReason(path, e); reason != "" {
				set.Skipped = append(set.Skipped, Skipped{Path: path, Reason: reason})
				continue
			}
			paths = append(paths, path)
			if src.Origin != "" {
				origin[path] = src.Origin
			}
		}
	}
	return paths, origin, nil
}

// assemble adds decoded files to set in order: their notices and errors,
// their objects to objects, their pods and Services, the first definition
// of a name (and of a Service's address or node port) winning, the pods
// resolved against objects and admitted on the node. otherPods are pods of
// other files, which Services' selectors may match too.
func (r Reader) assemble(set *Set, paths []string, decoded []decodeResult, origin map[string]string, objects *Objects, otherPods []*Pod) {
	owner := map[string]string{} // pod key, "CronJob " or "Service " + key → file
	var (
		pods     []*Pod
		services []*Service
	)
	notices := make([][]Notice, len(paths)) // by file, in order
	order := map[string]int{}
	for i, path := range paths {
		order[path] = i
		m, err := decoded[i].m, decoded[i].err
		if err == nil {
			err = r.admit(m)
		}
		if err != nil {
			set.Errors = append(set.Errors, err)
			continue
		}
		notices[i] = m.Notices
		set.Defined = append(set.Defined, m.definitions(path)...)
		if err := objects.Add(path, m); err != nil {
			set.Errors = append(set.Errors, err)
		}
		for _, p := range m.Pods {
			key := p.Key()
			if p.Cron != nil {
				key = "CronJob " + key // its runs are named <name>-<minutes>
			}
			if first, dup := owner[key]; dup {
				what := "pod"
				if p.Cron != nil {
					what = "CronJob"
				}
				set.Errors = append(set.Errors, &FieldError{File: path, Field: "metadata.name",
					Msg: fmt.Sprintf("%s %s is already defined in %s, which keeps it; this definition is not run", what, p.Key(), first)})
				if set.Conflicts == nil {
					set.Conflicts = map[string][]string{}
				}
				set.Conflicts[p.Key()] = append(set.Conflicts[p.Key()], path)
				continue
			}
			owner[key] = path
			if url := origin[path]; url != "" {
				p.Spec.Annotations[AnnotationConfigSource] = "http"
				p.Spec.Annotations[AnnotationManifest] = url
			}
			restrictHostAccess(p, r.RestrictHostAccess, origin[path] != "")
			pods = append(pods, p)
		}
		for _, s := range m.Services {
			key := "Service " + s.Key()
			if first, dup := owner[key]; dup {
				set.Errors = append(set.Errors, &FieldError{File: path, Line: s.lines.lineOf("metadata.name"), Field: "metadata.name",
					Msg: fmt.Sprintf("%s is already defined in %s, which keeps it; this definition is not served", key, first)})
				continue
			}
			owner[key] = path
			services = append(services, s)
		}
	}
	// Pods use the ConfigMaps and Secrets of every file.
	pods, claimNotices, err := resolvePods(pods, objects, r.Strict)
	if err != nil {
		set.Errors = append(set.Errors, err)
	}
	for _, n := range claimNotices {
		i := order[n.File]
		notices[i] = sortNotices(append(slices.Clone(notices[i]), n))
	}
	pods, services, claimErrs := settleClaims(pods, services, order, r.Held, r.HeldHostPorts)
	set.Errors = append(set.Errors, claimErrs...)
	set.Services = services
	for _, n := range selectorNotices(set.Services, append(slices.Clone(pods), otherPods...)) {
		i := order[n.File]
		notices[i] = sortNotices(append(slices.Clone(notices[i]), n))
	}
	for _, ns := range notices {
		set.Notices = append(set.Notices, ns...)
	}
	for _, p := range pods {
		switch {
		case p.Rejected != nil:
			set.NotAdmitted = append(set.NotAdmitted, p)
		case p.Cron != nil:
			set.CronJobs = append(set.CronJobs, p)
		default:
			set.Pods = append(set.Pods, p)
		}
	}
}

// admit evaluates the pods of a decoded file against the node, adding the
// notices that depend on it (nodeName), checks its Services against the
// node's ranges, and in strict mode turns the file's notices into its
// errors.
func (r Reader) admit(m *Manifest) error {
	errs := r.checkServiceRanges(m)
	for _, p := range m.Pods {
		if r.Node.Name == "" {
			continue
		}
		if n := p.Spec.Spec.NodeName; n != "" && n != r.Node.Name {
			notice := Notice{File: p.Source, Line: p.lines.lineOf("spec.nodeName"), Field: p.lines.field("spec.nodeName"),
				Msg: fmt.Sprintf("%q is not this node (%q): the pod runs here all the same, as a static pod does", n, r.Node.Name)}
			p.addNotice(notice)
			m.Notices = sortNotices(append(m.Notices, notice))
		}
		p.Rejected = Admit(p.Spec, r.Node)
	}
	if r.Strict {
		for _, n := range m.Notices {
			errs = append(errs, n.AsError())
		}
	}
	return errors.Join(errs...)
}

type decodeResult struct {
	m   *Manifest
	err error
}

// decodeAll reads and decodes the files on every CPU; the results are in
// the files' order, so what follows is as deterministic as a sequential read.
func decodeAll(paths []string) []decodeResult {
	out := make([]decodeResult, len(paths))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data, err := ReadManifest(paths[i])
				var fe *FieldError
				switch {
				case errors.As(err, &fe):
					out[i].err = fe
					continue
				case err != nil:
					out[i].err = &FieldError{File: paths[i], Msg: err.Error()}
					continue
				}
				out[i].m, out[i].err = DecodeManifest(paths[i], data)
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// editorFiles are the endings of editor swap and backup files and of package
// managers' leftovers, which the kubelet would run as pods.
var editorFiles = []string{"~", ".swp", ".swo", ".swx", ".bak", ".orig", ".rej", ".tmp", ".save",
	".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".ucf-old", ".ucf-new", ".ucf-dist",
	".rpmnew", ".rpmsave", ".rpmorig"}

// Transient tells whether a directory entry's name is one that editors,
// tools and package managers give their swap, backup and temporary files,
// which come and go while a file is saved: hidden, #auto-save#, backup and
// leftover endings, vim's 4913. The sync waits for the directory to hold
// still while one is there.
func Transient(name string) bool {
	if strings.HasPrefix(name, ".") || (strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#")) || isDigits(name) {
		return true
	}
	for _, suffix := range editorFiles {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// skipReason says why a directory entry is not a manifest, or "" when it is.
func skipReason(path string, e fs.DirEntry) string {
	name := e.Name()
	if strings.HasPrefix(name, ".") {
		return "hidden file (editors keep swap and temporary files so)"
	}
	if strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#") {
		return "editor auto-save file"
	}
	for _, suffix := range editorFiles {
		if strings.HasSuffix(name, suffix) {
			return "editor or package-manager backup file (" + suffix + ")"
		}
	}
	if isDigits(name) {
		return "editor temporary file (vim writes 4913 to test a directory)"
	}
	ext := filepath.Ext(name)
	known := false
	for _, m := range manifestExts {
		known = known || ext == m
	}
	if !known {
		return fmt.Sprintf("not a manifest: only %s files are read", strings.Join(manifestExts, ", "))
	}
	if info, err := os.Stat(path); err == nil && info.IsDir() { // follows symlinks
		return "a directory: manifest directories are not read recursively, as the kubelet's are not"
	}
	// Anything else named as a manifest is read, and what is not a regular
	// file (a named pipe, a socket, a dangling symlink) is an error the
	// sync reports: ReadManifest.
	return ""
}

// ReadManifest reads a manifest file, at most MaxManifestSize bytes and one
// more (which the decoder refuses). What is not a regular file is refused
// before it is opened: opening a named pipe would wait for a writer.
func ReadManifest(path string) ([]byte, error) {
	info, err := os.Stat(path) // follows symlinks
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if target, lerr := os.Readlink(path); lerr == nil {
			return nil, &FieldError{File: path, Msg: fmt.Sprintf("a symlink to %s, which does not exist: not read", target)}
		}
		return nil, err
	case err != nil:
		return nil, &FieldError{File: path, Msg: fmt.Sprintf("%v: not read", errors.Unwrap(err))}
	case !info.Mode().IsRegular():
		return nil, &FieldError{File: path, Msg: fmt.Sprintf("not a regular file (%s): not read", fileType(info.Mode()))}
	}
	return readManifest(path)
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func readManifest(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	return data, nil
}
