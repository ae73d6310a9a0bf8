package generator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
)

// MaxManifestSize is the largest manifest podunit reads, as the kubelet does.
const MaxManifestSize = 10 << 20

// Flatten splits errors.Join'ed errors (as Read and Decode return them), so
// that each problem is reported on its own line.
func Flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// FieldError is one problem with one field of one manifest.
type FieldError struct {
	File  string // the manifest's path, as given to the decoder
	Line  int    // 1-based; 0 when not known
	Field string // JSON field path, e.g. spec.containers[0].image; empty for the whole document
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		field := e.Field
		if strings.ContainsFunc(field, unicode.IsControl) {
			// A map key (an annotation's) may hold a line end: escaped,
			// the report stays one line that names its file.
			q := strconv.Quote(field)
			field = q[1 : len(q)-1]
		}
		b.WriteString(field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// checkText reports the first byte that cannot be in a manifest, with its
// line and column: a manifest is UTF-8 text, without control characters
// other than tabs and line ends (as YAML requires). Only a file the YAML
// parser refused is scanned.
func checkText(file string, data []byte) *FieldError {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return &FieldError{File: file, Line: line, Msg: fmt.Sprintf("byte 0x%02x in column %d is not UTF-8: a manifest is UTF-8 text", data[i], col)}
		case r == '\n':
			line, col = line+1, 0
		case r < 0x20 && r != '\t' && r != '\r', r == 0x7f:
			return &FieldError{File: file, Line: line, Msg: fmt.Sprintf("control character %U in column %d: a manifest is text", r, col)}
		}
		i += size
		col++
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError is the YAML parser's error with its line where it names one
// ("yaml: line 4: did not find expected key").
func yamlError(file string, err error) *FieldError {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{File: file, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &FieldError{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
}

// decodeFile parses every YAML document (or the JSON object) in data into a
// v1 Pod, strictly. It returns the pods in document order with the line of
// each field path it saw, or the errors found, each a *FieldError.
func decodeFile(file string, data []byte) ([]decoded, error) {
	if len(data) > MaxManifestSize {
		return nil, &FieldError{File: file, Msg: fmt.Sprintf("larger than %d bytes", MaxManifestSize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var (
		out     []decoded
		errs    []error
		sawList bool
	)
	for doc := 1; ; doc++ {
		var root yaml.Node
		if err := dec.Decode(&root); err == io.EOF {
			break
		} else if err != nil {
			// Bytes that cannot be in a manifest are named with their
			// line and column; the parser only says it met one.
			if bad := checkText(file, data); bad != nil {
				errs = append(errs, bad)
			} else {
				errs = append(errs, yamlError(file, err))
			}
			break
		}
		if len(root.Content) == 0 || isNull(root.Content[0]) {
			continue // an empty document, e.g. after a trailing "---"
		}
		if items, isList, err := listItems(file, doc, root.Content[0]); isList {
			sawList = true
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, item := range items {
				d, err := decodeDocument(file, doc, item)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				out = append(out, d)
			}
			continue
		}
		d, err := decodeDocument(file, doc, root.Content[0])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, d)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 && !sawList {
		// An empty file is more likely a save in progress than a wish to
		// remove pods; an empty List says so explicitly.
		return nil, &FieldError{File: file, Msg: "nothing in file (it is empty; an empty `kind: List` removes its pods)"}
	}
	return out, nil
}

// decoded is one document and where its fields were.
type decoded struct {
	kind  string
	pod   *corev1.Pod    // kind Pod
	obj   any            // kind ConfigMap or Secret: *corev1.ConfigMap, *corev1.Secret
	doc   int            // 1-based document number in the file
	line  int            // the document's first line
	lines map[string]int // field path → line
	// inFile maps a pod's field path to where the field is in the file:
	// nil for a Pod; for a pod made from a workload's template,
	// spec.containers → spec.template.spec.containers.
	inFile func(string) string
	// cron is the CronJob whose job template pod is this one.
	cron *CronJob
	// notices are the document's accepted-but-not-acted-on fields, and for
	// a skipped kind the one notice that says so (kind is then "").
	notices []Notice
	// after are annotations a workload gives its pods after their config
	// hash (e.g. the Deployment's strategy): they change no pod.
	after map[string]string
}

// field is where the pod's field path is in the file.
func (d decoded) field(path string) string {
	if d.inFile == nil {
		return path
	}
	return d.inFile(path)
}

func (d decoded) lineOf(path string) int {
	for p := d.field(path); p != ""; p = parentPath(p) {
		if l, ok := d.lines[p]; ok {
			return l
		}
	}
	return d.line
}

func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i > 0 {
		return p[:i]
	}
	return ""
}

func decodeDocument(file string, doc int, root *yaml.Node) (decoded, error) {
	root = resolve(root)
	d := decoded{doc: doc, line: root.Line, lines: map[string]int{}}
	if root.Kind != yaml.MappingNode {
		return d, &FieldError{File: file, Line: root.Line, Msg: fmt.Sprintf("document %d: a manifest must be an object (a Pod, ConfigMap or Secret)", doc)}
	}
	kind, skipped, err := checkKind(file, doc, root)
	if err != nil {
		return d, err
	}
	if skipped != nil {
		d.notices = []Notice{*skipped}
		return d, nil
	}
	d.kind = kind.Name
	w := walker{file: file, kind: kind.Name, lines: d.lines}
	value := w.walk(root, kind.Type, "", kind.supported())
	if len(w.errs) > 0 {
		return d, errors.Join(w.errs...)
	}
	d.notices = w.notices
	raw, err := json.Marshal(value)
	if err != nil {
		return d, &FieldError{File: file, Line: root.Line, Msg: err.Error()}
	}
	jd := json.NewDecoder(bytes.NewReader(raw))
	jd.DisallowUnknownFields()
	obj := reflect.New(kind.Type).Interface()
	if err := jd.Decode(obj); err != nil {
		// Only values of types with their own decoders (quantities,
		// int-or-string, base64) get here; the walk checked everything else.
		return d, &FieldError{File: file, Line: root.Line, Msg: err.Error()}
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		d.pod = pod
	} else {
		d.obj = obj
	}
	return d, nil
}

// listItems returns the items of a v1 List or PodList document (what
// `kubectl get -o yaml` and the kubelet's staticPodURL give); isList is
// false for any other document.
func listItems(file string, doc int, root *yaml.Node) (items []*yaml.Node, isList bool, err error) {
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		return nil, false, nil
	}
	kind, apiVersion, list := topField(root, "kind"), topField(root, "apiVersion"), topField(root, "items")
	if kind == nil || (kind.Value != "List" && kind.Value != "PodList") {
		return nil, false, nil
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch k := root.Content[i]; k.Value {
		case "kind", "apiVersion", "items", "metadata":
		default:
			return nil, true, &FieldError{File: file, Line: k.Line, Field: k.Value, Msg: fmt.Sprintf("document %d: unknown field of a %s", doc, kind.Value)}
		}
	}
	switch {
	case apiVersion == nil || apiVersion.Value != "v1":
		return nil, true, &FieldError{File: file, Line: root.Line, Field: "apiVersion", Msg: fmt.Sprintf("document %d: a %s must be apiVersion: v1", doc, kind.Value)}
	case list == nil || isNull(list):
		return nil, true, nil // an empty list
	case list.Kind != yaml.SequenceNode:
		return nil, true, &FieldError{File: file, Line: list.Line, Field: "items", Msg: fmt.Sprintf("document %d: must be a list, not %s", doc, describe(list))}
	}
	if kind.Value == "PodList" {
		for _, item := range list.Content {
			if k := topField(resolve(item), "kind"); k != nil && k.Value != "Pod" {
				return nil, true, &FieldError{File: file, Line: item.Line, Field: "items", Msg: fmt.Sprintf("document %d: a PodList holds only Pods, not a %s", doc, k.Value)}
			}
		}
	}
	return list.Content, true, nil
}

// topField is the value of a mapping's field, or nil.
func topField(m *yaml.Node, name string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return resolve(m.Content[i+1])
		}
	}
	return nil
}

// checkKind finds the document's kind before looking at its fields, so an
// unsupported kind's error names the kind rather than a list of unknown
// fields. A kind podunit skips (a Service, RBAC, a custom resource) gives a
// notice instead of a kind.
func checkKind(file string, doc int, root *yaml.Node) (*Kind, *Notice, error) {
	kind, apiVersion := topField(root, "kind"), topField(root, "apiVersion")
	if kind == nil {
		return nil, nil, &FieldError{File: file, Line: root.Line, Field: "kind", Msg: fmt.Sprintf("document %d: required (%s)", doc, kindNames())}
	}
	if apiVersion == nil {
		if k := findKind(kind.Value); k != nil {
			return nil, nil, &FieldError{File: file, Line: root.Line, Field: "apiVersion", Msg: fmt.Sprintf("document %d: required (apiVersion: %s)", doc, k.apiVersion())}
		}
		return nil, nil, &FieldError{File: file, Line: root.Line, Field: "apiVersion", Msg: fmt.Sprintf("document %d: required", doc)}
	}
	group := groupOf(apiVersion.Value)
	k := findKind(kind.Value)
	wrongVersion := func() error {
		return &FieldError{File: file, Line: apiVersion.Line, Field: "apiVersion", Msg: fmt.Sprintf("document %d: %q is not supported for %s (apiVersion: %s)", doc, apiVersion.Value, k.Name, k.apiVersion())}
	}
	switch {
	case k != nil && apiVersion.Value == k.apiVersion():
		return k, nil, nil
	case k != nil && group == groupOf(k.apiVersion()):
		return nil, nil, wrongVersion()
	}
	name := topField(root, "metadata")
	if name != nil {
		name = topField(name, "name")
	}
	what := kind.Value
	if name != nil && name.ShortTag() == "!!str" {
		what += " " + strconv.Quote(name.Value)
	}
	if sk := findSkippedKind(group, kind.Value); sk != nil {
		return nil, &Notice{File: file, Line: kind.Line, Field: "kind", Msg: fmt.Sprintf("document %d: %s skipped: %s; the rest of the file runs", doc, what, sk.Why)}, nil
	}
	if !builtinGroup(group) {
		return nil, &Notice{File: file, Line: kind.Line, Field: "kind", Msg: fmt.Sprintf("document %d: %s (%s) skipped: a custom resource, and there is no API server or controller to act on it; the rest of the file runs", doc, what, apiVersion.Value)}, nil
	}
	if k != nil {
		return nil, nil, wrongVersion()
	}
	return nil, nil, &FieldError{File: file, Line: kind.Line, Field: "kind", Msg: fmt.Sprintf("document %d: %q is not supported%s (%s)", doc, kind.Value, suggestKind(kind.Value), kindNames())}
}

// suggestKind names a known kind that differs from a misspelled one only in
// case or by one or two edits.
func suggestKind(name string) string {
	known := map[string]reflect.Type{}
	for _, k := range Kinds {
		known[k.Name] = nil
	}
	for _, k := range SkippedKinds {
		known[k.Name] = nil
	}
	return suggest(name, known)
}

// walker checks a YAML tree against a Go type and the supported-field tree
// and converts it to a JSON-ready value, so that one parser decides what every
// scalar is and every error can carry its line.
type walker struct {
	file    string
	kind    string // for `podunit explain` in messages
	errs    []error
	notices []Notice
	lines   map[string]int
}

func (w *walker) fail(n *yaml.Node, path, format string, args ...any) {
	w.errs = append(w.errs, &FieldError{File: w.file, Line: n.Line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

var jsonUnmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

// walk returns n as a JSON value for type t. allowed is the field list's
// subtree at path; nil means everything below is honoured.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string, allowed *fieldNode) any {
	n = resolve(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isNull(n) {
		return nil
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		// Quantities, int-or-string, times: the type's decoder checks the value.
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "must be a single value, not %s", describe(n))
			return nil
		}
		return scalar(n)
	}
	switch t.Kind() {
	case reflect.Struct:
		return w.object(n, t, path, allowed)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			// []byte is base64 text in JSON and YAML (Secret data).
			if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
				w.fail(n, path, "must be base64 text, not %s", describe(n))
				return nil
			}
			if _, err := base64.StdEncoding.DecodeString(n.Value); err != nil {
				w.fail(n, path, "not valid base64 (use stringData for plain text): %v", err)
				return nil
			}
			return n.Value
		}
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "must be a list, not %s", describe(n))
			return nil
		}
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = item.Line
			out = append(out, w.walk(item, t.Elem(), p, allowed))
		}
		return out
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "must be a map, not %s", describe(n))
			return nil
		}
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolve(n.Content[i]), n.Content[i+1]
			p := fmt.Sprintf("%s[%s]", path, k.Value)
			w.lines[p] = k.Line
			if _, dup := out[k.Value]; dup {
				w.fail(k, p, "duplicate key")
				continue
			}
			out[k.Value] = w.walk(v, t.Elem(), p, allowed)
		}
		return out
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "must be a string, not %s", describe(n))
			return nil
		}
		if n.ShortTag() != "!!str" {
			w.fail(n, path, "must be a string, not %s (quote it: %q)", describe(n), n.Value)
			return nil
		}
		return n.Value
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			w.fail(n, path, "must be true or false, not %s", describe(n))
			return nil
		}
		return scalar(n)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var v int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
			w.fail(n, path, "must be a whole number, not %s", describe(n))
			return nil
		}
		if reflect.Zero(t).OverflowInt(v) {
			w.fail(n, path, "%d is out of range", v)
			return nil
		}
		return v
	}
	w.fail(n, path, "podunit cannot decode a field of Go type %s", t)
	return nil
}

func (w *walker) object(n *yaml.Node, t reflect.Type, path string, allowed *fieldNode) any {
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "must be an object, not %s", describe(n))
		return nil
	}
	fields := jsonFields(t)
	content, bad := mergedContent(n)
	if bad != nil {
		w.fail(bad, path, "<<: a merge key takes a mapping, an alias of one, or a list of them")
	}
	out := make(map[string]any, len(content)/2)
	for i := 0; i+1 < len(content); i += 2 {
		k, v := resolve(content[i]), content[i+1]
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		w.lines[p] = k.Line
		if _, dup := out[k.Value]; dup {
			w.fail(k, p, "duplicate field")
			continue
		}
		ft, known := fields[k.Value]
		if !known {
			w.fail(k, p, "unknown field%s", suggest(k.Value, fields))
			continue
		}
		var sub *fieldNode
		if allowed != nil {
			node, listed := allowed.children[k.Value]
			switch {
			case !listed && isEmpty(v):
				continue // `resources: {}`, `strategy: {}`: an empty value says nothing
			case !listed:
				w.fail(k, p, "not supported by podunit (podunit explain %s)", ExplainPath(w.kind, p))
				continue
			case node.class == Dropped:
				continue
			case node.class == Noticed:
				// Checked for typos and types, then left out of the pod:
				// it has no effect here and never changes the config hash.
				if w.walk(v, ft, p, nil); !isZero(v) {
					w.notices = append(w.notices, Notice{File: w.file, Line: k.Line, Field: p, Msg: node.doc})
				}
				continue
			}
			if len(node.children) > 0 {
				sub = node
			}
		}
		out[k.Value] = w.walk(v, ft, p, sub)
	}
	return out
}

// jsonFields maps a struct's JSON field names to their types. An embedded
// struct without a JSON name (TypeMeta) is inlined, as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	fieldCache.Store(t, m)
	return m
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// suggest names a known field that differs from a misspelled one only in case
// or by one or two edits, the usual typos.
func suggest(name string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	for f := range fields {
		if d := editDistance(strings.ToLower(name), strings.ToLower(f)); d < bestDist || (d == bestDist && f < best) {
			best, bestDist = f, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// mergedContent is a mapping's key/value pairs with YAML merge keys
// ("<<: *base", "<<: [*a, *b]") expanded, as the YAML library behind
// kubectl and the kubelet expands them: the mapping's own keys win, then
// those of the merged mappings, the first first. bad is a merge key whose
// value is not a mapping (nil when there is none).
func mergedContent(n *yaml.Node) (content []*yaml.Node, bad *yaml.Node) {
	if !slices.ContainsFunc(n.Content, isMergeKey) {
		return n.Content, nil // nearly every mapping: nothing to copy
	}
	own := map[string]bool{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if isMergeKey(k) {
			merges = append(merges, n.Content[i+1])
			continue
		}
		own[k.Value] = true
		content = append(content, n.Content[i], n.Content[i+1])
	}
	if len(merges) == 0 {
		return content, nil
	}
	var sources []*yaml.Node
	for _, m := range merges {
		switch m = resolve(m); m.Kind {
		case yaml.MappingNode:
			sources = append(sources, m)
		case yaml.SequenceNode:
			for _, item := range m.Content {
				if item = resolve(item); item.Kind != yaml.MappingNode {
					return content, m
				}
				sources = append(sources, item)
			}
		default:
			return content, m
		}
	}
	for _, src := range sources {
		more, bad := mergedContent(src)
		if bad != nil {
			return content, bad
		}
		for i := 0; i+1 < len(more); i += 2 {
			if k := resolve(more[i]).Value; !own[k] {
				own[k] = true
				content = append(content, more[i], more[i+1])
			}
		}
	}
	return content, nil
}

func isMergeKey(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && n.ShortTag() == "!!merge"
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// isEmpty tells whether a value is null, {} or [].
func isEmpty(n *yaml.Node) bool {
	n = resolve(n)
	return isNull(n) || (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && len(n.Content) == 0
}

// isZero tells whether a value is empty or a scalar's zero value (false, 0,
// ""): a field set to it asks for nothing.
func isZero(n *yaml.Node) bool {
	n = resolve(n)
	if isEmpty(n) {
		return true
	}
	if n.Kind != yaml.ScalarNode {
		return false
	}
	switch n.ShortTag() {
	case "!!bool":
		return n.Value == "false"
	case "!!int", "!!float":
		return n.Value == "0"
	case "!!str":
		return n.Value == ""
	}
	return false
}

// ExplainPath is the `podunit explain` argument for a field of a kind:
// "pod.spec.containers.ports" for spec.containers[0].ports.
func ExplainPath(kind, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(kind))
	depth := 0
	for _, r := range path {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth > 0:
		default:
			if b.Len() == len(kind) {
				b.WriteByte('.')
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// scalar converts a YAML scalar to the JSON value YAML 1.2 says it is.
func scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!int":
		var v int64
		if n.Decode(&v) == nil {
			return v
		}
	case "!!float":
		var v float64
		if n.Decode(&v) == nil {
			return v
		}
	case "!!bool":
		var v bool
		if n.Decode(&v) == nil {
			return v
		}
	case "!!null":
		return nil
	}
	return n.Value
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	case "!!str":
		return "the string " + strconv.Quote(n.Value)
	}
	return n.Value
}
