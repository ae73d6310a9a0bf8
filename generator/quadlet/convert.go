package quadlet

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/podunit/podunit/generator"
)

// Section names of a .kube unit.
const (
	sectionKube    = "Kube"
	sectionUnit    = "Unit"
	sectionService = "Service"
	sectionInstall = "Install"
	sectionQuadlet = "Quadlet"
)

// Import is what one .kube unit becomes.
type Import struct {
	// Unit is the .kube file; Service the unit Quadlet makes of it
	// ("web.service", or ServiceName=).
	Unit, Service string
	// File is the manifest's file name ("web.yaml"), Manifest its content:
	// the ConfigMap= documents, then the Yaml= documents, with the unit's
	// ports, annotations and ordering written in. Nil when Err is set.
	File     string
	Manifest []byte
	// Pods are the pods the manifest defines, "namespace/name".
	Pods []string
	// Keepers are the units whose manifests hold objects (ConfigMaps,
	// Secrets, claims) that this unit defines too, the same, and that are
	// left out of its manifest: sync reads each object once, from one
	// file. The manifest is not to be written without theirs.
	Keepers []string
	// Notes say, for every assignment of the unit in order, what it became
	// or, when podunit cannot carry it over, what to do instead; then what
	// the import changed in the YAML to run it as podman ran it. None when
	// Err is set.
	Notes []Note
	// Err is why the unit cannot be imported; the other units are.
	Err error
}

// Note is what became of one assignment of a unit.
type Note struct {
	// Option is the assignment as written: "[Kube] PublishPort=8080:80".
	Option string
	// From is the file that set it (the unit or a drop-in).
	From string
	// Carried tells whether podunit does the same; Text says what it does
	// or what to do instead.
	Carried bool
	Text    string
}

func (n Note) String() string {
	mark := "not carried over"
	if n.Carried {
		mark = "carried over"
	}
	return fmt.Sprintf("%s: %s: %s", n.Option, mark, n.Text)
}

// HeaderPrefix starts the first line of every manifest an import writes,
// followed by the unit's path: a later import of the same unit knows the
// file as its own.
const HeaderPrefix = "# podunit import quadlet: "

// Header is the first line of the manifest imported from unit path.
func Header(unitPath string) string { return HeaderPrefix + unitPath + "\n" }

// ManifestFile is the name of the manifest the unit becomes: NAME.yaml.
func (u *Unit) ManifestFile() string { return strings.TrimSuffix(u.Name(), ".kube") + ".yaml" }

// ServiceName is the systemd service Quadlet generates for the unit.
func (u *Unit) ServiceName() string {
	if o, ok := u.last(sectionKube, "ServiceName"); ok {
		return o.Value + ".service"
	}
	return strings.TrimSuffix(u.Name(), ".kube") + ".service"
}

// Sources are the files the unit's Yaml= and ConfigMap= name, absolute,
// resolved as Quadlet resolves them (relative to the unit's directory),
// with specifiers expanded.
func (u *Unit) Sources() (yamls, configMaps []string, err error) {
	yamls, err = u.paths("Yaml")
	if err != nil {
		return nil, nil, err
	}
	if len(yamls) == 0 {
		return nil, nil, errors.New("no Yaml= key: Quadlet refuses such a unit too")
	}
	configMaps, err = u.paths("ConfigMap")
	return yamls, configMaps, err
}

func (u *Unit) paths(key string) ([]string, error) {
	var out []string
	for _, o := range u.values(sectionKube, key) {
		words, err := splitWords(o.Value)
		if err != nil {
			return nil, fmt.Errorf("%s=: %w", key, err)
		}
		for _, w := range words {
			p, unknown := expandSpecifiers(w, u.ServiceName())
			if len(unknown) > 0 {
				return nil, fmt.Errorf("%s=%s: specifier %s has no value outside systemd: write the path out", key, w, strings.Join(unknown, ", "))
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(u.Path), p)
			}
			out = append(out, filepath.Clean(p))
		}
	}
	return out, nil
}

// Convert translates units into manifests. files holds the content of
// every file the units' Sources name. Ordering between the units ([Unit]
// After=, Before=) becomes podunit.io/after on the pods; a requirement
// (Requires=, Wants=, BindsTo=, Requisite=, Upholds=) does not order, as
// in systemd, and is reported; so is an order on a unit that is not among
// units. Each manifest is checked as sync checks it.
//
// existing are the manifests sync reads beside the ones the import writes
// (the manifest directory's other files, in the order sync reads them).
// sync keeps one ConfigMap, Secret or claim of a name in a namespace for
// all pods: one that a unit defines as an existing manifest or an earlier
// unit does is left out of its manifest (Keepers), and a unit that defines
// one otherwise is refused.
func Convert(units []*Unit, files map[string][]byte, existing []generator.File) []Import {
	out := make([]Import, len(units))
	docs := make([][]document, len(units))
	byName := map[string]int{}
	for i, u := range units {
		if _, dup := byName[u.Name()]; !dup {
			byName[u.Name()] = i
			byName[u.ServiceName()] = i
		}
	}
	// First each unit on its own, to know its pods.
	firstOf := map[string]string{}
	for i, u := range units {
		out[i] = Import{Unit: u.Path, Service: u.ServiceName(), File: u.ManifestFile()}
		if first, ok := firstOf[u.Name()]; ok {
			out[i].Err = fmt.Errorf("%s has the same name: Quadlet makes one %s of the two, podunit one %s", first, u.ServiceName(), out[i].File)
			continue
		}
		firstOf[u.Name()] = u.Path
		docs[i], out[i].Notes, out[i].Err = convertUnit(u, files)
		if out[i].Err == nil {
			out[i].Manifest, out[i].Pods, out[i].Err = render(u, docs[i])
		}
	}
	// Then the ordering between them: After= and Before= order, as in
	// systemd; the requirement keys (Requires=, Wants=, …) alone do not.
	after := make([][]string, len(units))
	afterUnits := make([][]int, len(units))
	for i, u := range units {
		if docs[i] == nil {
			continue // not converted: its error says why
		}
		for j, o := range u.Options {
			isOrder, isRequire := slices.Contains(orderKeys, o.Key), slices.Contains(requireKeys, o.Key)
			if o.Section != sectionUnit || (!isOrder && !isRequire) || o.Value == "" {
				continue
			}
			if _, ok := overridden(u, j); ok {
				continue
			}
			words, err := splitWords(o.Value)
			if err != nil {
				out[i].Err = errors.Join(out[i].Err, fmt.Errorf("[Unit] %s=: %w", o.Key, err))
				continue
			}
			if isRequire {
				continue // noted once it is known which units are imported
			}
			var carried, others []string
			for _, w := range words {
				k, ok := byName[w]
				switch {
				case !ok || k == i:
					others = append(others, w)
				case out[k].Err != nil && o.Key != "Before":
					out[i].Err = errors.Join(out[i].Err, fmt.Errorf("[Unit] %s=%s: %s cannot be imported (see there), so neither can the order on it", o.Key, w, units[k].Name()))
				case o.Key == "Before" && out[k].Err != nil:
					others = append(others, w) // not imported
				case o.Key == "Before":
					after[k] = append(after[k], out[i].Pods...)
					afterUnits[k] = append(afterUnits[k], i)
					carried = append(carried, w)
				default:
					after[i] = append(after[i], out[k].Pods...)
					afterUnits[i] = append(afterUnits[i], k)
					carried = append(carried, w)
				}
			}
			out[i].Notes[j] = orderNote(o, carried, others) // one note per option, in order
		}
	}
	for i, cycle := range orderCycles(afterUnits) {
		if cycle != nil {
			var names []string
			for _, k := range cycle {
				names = append(names, units[k].Name())
			}
			out[i].Err = errors.Join(out[i].Err, fmt.Errorf("its order is a cycle: %s after %s: no pod of them would ever start; drop one of the After=/Before=", units[i].Name(), strings.Join(names, " after ")))
		}
	}
	refuseDifferentObjects(units, out, docs, existing)
	// A unit ordered after one that is not imported is not imported either
	// (it would wait for pods that never come), transitively.
	for changed := true; changed; {
		changed = false
		for i := range units {
			for _, k := range afterUnits[i] {
				if out[i].Err == nil && out[k].Err != nil {
					out[i].Err = fmt.Errorf("it starts after %s, which cannot be imported (see there)", units[k].Name())
					changed = true
				}
			}
		}
	}
	noteRequirements(units, out, byName)
	shared := shareObjects(units, out, docs, existing)
	for i, u := range units {
		if out[i].Err != nil || (len(after[i]) == 0 && !shared[i]) {
			continue
		}
		if len(after[i]) > 0 {
			if err := addAfter(docs[i], after[i]); err != nil {
				out[i].Err = err
				continue
			}
		}
		out[i].Manifest, out[i].Pods, out[i].Err = render(u, docs[i])
	}
	for i := range out {
		if out[i].Err != nil {
			out[i].Manifest, out[i].Pods, out[i].Notes, out[i].Keepers = nil, nil, nil, nil // not imported: the error says why
			out[i].Err = fmt.Errorf("%s: %w", units[i].Path, out[i].Err)
		}
	}
	return out
}

// orderCycles finds, for each unit, a cycle of the order through it (the
// units after which it comes, back to itself), nil when there is none.
func orderCycles(after [][]int) [][]int {
	out := make([][]int, len(after))
	for start := range after {
		// A breadth-first search from start's predecessors back to start.
		prev := map[int]int{}
		queue := []int{}
		for _, k := range after[start] {
			if _, ok := prev[k]; !ok {
				prev[k] = -1
				queue = append(queue, k)
			}
		}
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			if n == start {
				var path []int
				for c := prev[n]; c != -1; c = prev[c] {
					path = append([]int{c}, path...)
				}
				out[start] = append(path, start)
				break
			}
			for _, k := range after[n] {
				if _, ok := prev[k]; !ok {
					prev[k] = n
					queue = append(queue, k)
				}
			}
		}
	}
	return out
}

// orderKeys are the [Unit] keys that order a unit after (or, Before=,
// before) another; requireKeys those that only start (or stop) another
// with it: systemd starts the two together unless an order key orders
// them.
var (
	orderKeys   = []string{"After", "Before"}
	requireKeys = []string{"Requires", "Wants", "BindsTo", "Requisite", "Upholds"}
)

func orderNote(o Option, carried, others []string) Note {
	n := Note{Option: optionString(o), From: o.From}
	var parts []string
	if len(carried) > 0 {
		n.Carried = true
		what := "starts once the pods of %s are ready (podunit.io/after)"
		if o.Key == "Before" {
			what = "the pods of %s start once this unit's pods are ready (podunit.io/after on them)"
		}
		parts = append(parts, fmt.Sprintf(what, strings.Join(carried, ", ")))
	}
	if len(others) > 0 {
		parts = append(parts, notImported(others))
		if len(carried) > 0 {
			parts[len(parts)-1] = "not carried over: " + parts[len(parts)-1]
		}
	}
	n.Text = strings.Join(parts, "; ")
	return n
}

// noteRequirements writes the notes of the imported units' requirements
// (requireKeys) on other units, which do not order them.
func noteRequirements(units []*Unit, out []Import, byName map[string]int) {
	for i, u := range units {
		if out[i].Err != nil {
			continue
		}
		orderedAfter := map[int]bool{} // the units this one's After= names
		for _, o := range u.values(sectionUnit, "After") {
			words, _ := splitWords(o.Value)
			for _, w := range words {
				if k, ok := byName[w]; ok {
					orderedAfter[k] = true
				}
			}
		}
		for j, o := range u.Options {
			if o.Section != sectionUnit || !slices.Contains(requireKeys, o.Key) || o.Value == "" {
				continue
			}
			if _, ok := overridden(u, j); ok {
				continue
			}
			words, _ := splitWords(o.Value) // an error refused the unit
			var together, ordered, failed, others []string
			for _, w := range words {
				k, ok := byName[w]
				switch {
				case !ok || k == i:
					others = append(others, w)
				case out[k].Err != nil:
					failed = append(failed, w)
				case orderedAfter[k]:
					ordered = append(ordered, w)
				default:
					together = append(together, w)
				}
			}
			out[i].Notes[j] = requireNote(o, together, ordered, failed, others)
		}
	}
}

// requireNote says what became of a requirement on other units: together
// names imported units it does not order on, ordered those its After=
// orders on too, failed those that cannot be imported, others the rest.
func requireNote(o Option, together, ordered, failed, others []string) Note {
	n := Note{Option: optionString(o), From: o.From}
	var parts []string
	if len(together)+len(ordered) > 0 {
		n.Carried = true
		if len(together) > 0 {
			parts = append(parts, fmt.Sprintf("the pods of %s run too, started together with this unit's, not ordered: systemd orders only on After=/Before=, and podunit starts every pod of the manifest directory without waiting for another unless podunit.io/after says so", strings.Join(together, ", ")))
		}
		if len(ordered) > 0 {
			parts = append(parts, fmt.Sprintf("the pods of %s run too; After= orders this unit after them", strings.Join(ordered, ", ")))
		}
		if o.Key != "Wants" {
			parts = append(parts, "podunit has no requirement beyond running every pod and ordering: a pod is not stopped, nor kept from starting, with the pods it requires")
		}
	}
	var not []string
	if len(failed) > 0 {
		not = append(not, fmt.Sprintf("%s cannot be imported (see there): this unit's pods run without its pods", strings.Join(failed, ", ")))
	}
	if len(others) > 0 {
		not = append(not, notImported(others))
	}
	if len(not) > 0 && n.Carried {
		not[0] = "not carried over: " + not[0]
	}
	n.Text = strings.Join(append(parts, not...), "; ")
	return n
}

func notImported(names []string) string {
	return fmt.Sprintf("%s: not a .kube unit imported with this one; podunit's pods start after the container runtime and the network by themselves; import that unit too if it is a .kube unit, or order on a pod with podunit.io/after", strings.Join(names, ", "))
}

func optionString(o Option) string { return fmt.Sprintf("[%s] %s=%s", o.Section, o.Key, o.Value) }

// render encodes a unit's documents as its manifest and checks it as sync
// would.
func render(u *Unit, docs []document) ([]byte, []string, error) {
	data, err := encodeDocuments(Header(u.Path), docs)
	if err != nil {
		return nil, nil, err
	}
	m, err := generator.DecodeManifest(strings.TrimSuffix(u.Name(), ".kube")+".yaml", data)
	if err != nil {
		// The unit's files are valid (checkSource): what the import
		// changed is not. The lines are the unwritten manifest's: left out.
		return nil, nil, fmt.Errorf("its YAML is valid, but what its keys make of it is not, for podunit: %w", withoutLines(err))
	}
	var pods []string
	for _, p := range m.Pods {
		pods = append(pods, p.Key())
	}
	return data, pods, nil
}

// withoutLines reports a manifest's errors by field alone.
func withoutLines(err error) error {
	var msgs []string
	for _, e := range generator.Flatten(err) {
		var fe *generator.FieldError
		switch {
		case errors.As(e, &fe) && fe.Field != "":
			msgs = append(msgs, fmt.Sprintf("%s: %s", fe.Field, fe.Msg))
		case errors.As(e, &fe):
			msgs = append(msgs, fe.Msg)
		default:
			msgs = append(msgs, e.Error())
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// checkSource checks a Yaml= or ConfigMap= file as it is, as sync would
// read it, so that its errors name it and its lines.
func checkSource(path string, files map[string][]byte) error {
	data, ok := files[path]
	if !ok {
		return fmt.Errorf("%s: not read", path)
	}
	_, err := generator.DecodeManifest(path, data)
	return err
}

// addAfter appends pods to every pod template's podunit.io/after.
func addAfter(docs []document, pods []string) error {
	sort.Strings(pods)
	pods = slices.Compact(pods)
	for _, d := range docs {
		meta, _ := podTemplate(d)
		if meta == nil {
			continue
		}
		ns := d.str("metadata", "namespace")
		if ns == "" {
			ns = "default"
		}
		refs := []string{}
		if v, ok := annotation(meta, generator.AnnotationAfter); ok && strings.TrimSpace(v) != "" {
			refs = append(refs, strings.Split(v, ",")...)
			for i := range refs {
				refs[i] = strings.TrimSpace(refs[i])
			}
		}
		for _, p := range pods {
			pns, name, _ := strings.Cut(p, "/")
			ref := p
			if pns == ns {
				ref = name
			}
			if !slices.Contains(refs, ref) {
				refs = append(refs, ref)
			}
		}
		annotate(meta, generator.AnnotationAfter, strings.Join(refs, ","))
	}
	return nil
}

// convertUnit reads the unit's files into documents and applies its
// [Kube] keys; it writes one note per option of the unit, in order (the
// ordering keys' are completed by Convert).
func convertUnit(u *Unit, files map[string][]byte) ([]document, []Note, error) {
	notes := make([]Note, len(u.Options))
	for j, o := range u.Options {
		notes[j] = Note{Option: optionString(o), From: o.From}
	}
	yamls, configMaps, err := u.Sources()
	if err != nil {
		return nil, notes, err
	}
	var docs, pods []document
	for _, p := range slices.Concat(configMaps, yamls) {
		if err := checkSource(p, files); err != nil {
			return nil, notes, fmt.Errorf("its YAML is not valid for podunit:\n%w", err)
		}
	}
	for _, p := range configMaps {
		ds, err := readDocuments(p, files)
		if err != nil {
			return nil, notes, fmt.Errorf("ConfigMap=: %w", err)
		}
		for _, d := range ds {
			if k := d.kind(); k != "ConfigMap" {
				return nil, notes, fmt.Errorf("ConfigMap=%s: holds a %q document; podman reads only ConfigMaps from it", p, k)
			}
		}
		docs = append(docs, ds...)
	}
	for _, p := range yamls {
		ds, err := readDocuments(p, files)
		if err != nil {
			return nil, notes, fmt.Errorf("Yaml=: %w", err)
		}
		docs = append(docs, ds...)
		for _, d := range ds {
			if meta, _ := podTemplate(d); meta != nil {
				pods = append(pods, d)
			}
		}
	}
	if len(pods) == 0 {
		return nil, notes, errors.New("its YAML defines no pod (Pod, Deployment, DaemonSet, Job, …)")
	}
	for _, d := range pods {
		if r := lookup(d.node, "spec", "replicas"); d.kind() == "Deployment" && r != nil && r.Value != "0" && r.Value != "1" {
			// podman kube play: "Limiting replica count to 1".
			notes = append(notes, Note{Option: fmt.Sprintf("Deployment %s: spec.replicas: %s", d.str("metadata", "name"), r.Value), From: d.from, Carried: true,
				Text: "set to 1, as podman runs one replica whatever the YAML says; podunit runs as many as spec.replicas asks (each with the same host ports, if any)"})
			setScalar(lookup(d.node, "spec"), "replicas", "1", "!!int")
		}
	}
	var errs []error
	done := published{}
	for j, o := range u.Options {
		if o.Value == "" {
			notes[j].Text = fmt.Sprintf("empty: clears the %s= before it, as in systemd", o.Key)
			continue
		}
		if by, ok := overridden(u, j); ok {
			notes[j].Text = by
			continue
		}
		text, carried, err := convertOption(u, o, pods, done)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", optionString(o), o.From, err))
			continue
		}
		if _, unknown := expandSpecifiers(o.Value, u.ServiceName()); len(unknown) > 0 && o.Section != sectionKube {
			text += fmt.Sprintf(" (specifier %s is systemd's, left as written)", strings.Join(unknown, ", "))
		}
		notes[j].Text, notes[j].Carried = text, carried
	}
	if n, ok := notStartedAtBoot(u); ok {
		notes = append(notes, n)
	}
	if n, ok := rootlessUnit(u); ok {
		notes = append(notes, n)
	}
	return docs, notes, errors.Join(errs...)
}

// rootlessUnit is the note for a rootless user's unit (one from a user's
// ~/.config/containers/systemd or /etc/containers/systemd/users): podunit
// runs every pod as root's, in the node's network, and the user's named
// volumes are in the user's own storage.
func rootlessUnit(u *Unit) (Note, bool) {
	p := filepath.ToSlash(u.Path)
	rootless := strings.Contains(p, "/.config/containers/systemd/") ||
		strings.HasPrefix(p, "/etc/containers/systemd/users/") ||
		strings.HasPrefix(p, "/usr/share/containers/systemd/users/") ||
		(strings.HasPrefix(p, "/run/user/") && strings.Contains(p, "/containers/systemd/"))
	if !rootless {
		return Note{}, false
	}
	return Note{Option: "a rootless user's unit", From: u.Path,
		Text: "podman ran its pods as that user, in the user's own network; podunit runs them as root's pods, like every other, with the user IDs the YAML sets (add securityContext.runAsUser to keep them off root). The user's named volumes are under ~/.local/share/containers/storage/volumes: podunit volume import NAME --from that directory; their files belong to the user's subordinate IDs (/etc/subuid: a container's root is the user, its UID 1000 some 100999), which root's pods see as they are: chown them to the IDs the pod runs as"}, true
}

// notStartedAtBoot is the note for a unit that nothing starts at boot (no
// [Install] WantedBy=, RequiredBy= or UpheldBy=): systemd starts it only
// when asked (by hand, by another unit, by a .timer), podunit at once.
func notStartedAtBoot(u *Unit) (Note, bool) {
	for _, key := range []string{"WantedBy", "RequiredBy", "UpheldBy"} {
		if len(u.values(sectionInstall, key)) > 0 {
			return Note{}, false
		}
	}
	return Note{Option: "[Install] without WantedBy=", From: u.Path,
		Text: "systemd starts this unit only when asked (by hand, by another unit or by a .timer), not at boot; podunit runs the pods as soon as the manifest is in the manifest directory, and at every boot. If a .timer starts it, write the pod as a CronJob (its schedule from the timer's OnCalendar=) instead; if it must not run yet, keep the manifest out of the manifest directory (import with --manifest-dir) until it should"}, true
}

// singleKeys are the [Kube] keys of one value: the last one counts.
var singleKeys = []string{"ServiceName", "LogDriver", "UserNS", "SetWorkingDirectory", "ExitCodePropagation", "KubeDownForce", "RemapUid", "RemapGid", "RemapUsers", "RemapUidSize"}

// overridden tells whether a later assignment undoes the unit's j-th: an
// empty one of the same key, or any one of a key of one value.
func overridden(u *Unit, j int) (string, bool) {
	o := u.Options[j]
	for _, later := range u.Options[j+1:] {
		if later.Section != o.Section || later.Key != o.Key {
			continue
		}
		if later.Value == "" {
			return fmt.Sprintf("cleared by a later empty %s= (%s)", o.Key, later.From), true
		}
		if o.Section == sectionKube && slices.Contains(singleKeys, o.Key) {
			return fmt.Sprintf("overridden by %s=%s (%s)", o.Key, later.Value, later.From), true
		}
	}
	return "", false
}

func readDocuments(path string, files map[string][]byte) ([]document, error) {
	data, ok := files[path]
	if !ok {
		return nil, fmt.Errorf("%s: not read", path)
	}
	return parseDocuments(path, data)
}

// convertOption applies one assignment to the pods, or says why it cannot.
func convertOption(u *Unit, o Option, pods []document, done published) (text string, carried bool, err error) {
	switch o.Section {
	case sectionKube:
		return convertKube(u, o, pods, done)
	case sectionUnit:
		if slices.Contains(orderKeys, o.Key) || slices.Contains(requireKeys, o.Key) {
			return "", false, nil // Convert writes it, knowing the other units
		}
		return "podunit names the pod's unit after the pod (pod-NAME.service) and describes it itself; put a note in the manifest's annotations if you need one", false, nil
	case sectionService:
		return serviceHint(o.Key), false, nil
	case sectionInstall:
		switch o.Key {
		case "WantedBy", "RequiredBy", "UpheldBy":
			words, _ := splitWords(o.Value)
			for _, w := range words {
				if w != "default.target" && w != "multi-user.target" && w != "graphical.target" {
					return fmt.Sprintf("%s: podunit starts every pod of the manifest directory at boot, after the container runtime; it does not tie a pod to another target", w), false, nil
				}
			}
			return "starts at boot: podunit starts every pod of the manifest directory at boot (podunit.path and podunit-sync.service), so nothing is needed", true, nil
		}
		return "podunit's pod units are transient and not installed: a pod runs while its manifest is in the manifest directory", false, nil
	case sectionQuadlet:
		return "podunit's pods always wait for the container runtime and the network", false, nil
	}
	return fmt.Sprintf("section [%s] is not one of Quadlet's; podunit ignores it as systemd would", o.Section), false, nil
}

func serviceHint(key string) string {
	switch key {
	case "Restart", "RestartSec":
		return "podunit restarts containers as the YAML's restartPolicy says (Always by default) and the pod's unit with Restart= of its own"
	case "TimeoutStartSec", "TimeoutStopSec":
		return "podunit waits for image pulls and readiness itself; a pod's stop takes its terminationGracePeriodSeconds (set it in the YAML)"
	case "Environment", "EnvironmentFile":
		return "set the containers' env (or envFrom a ConfigMap) in the YAML"
	case "ExecStartPre", "ExecStartPost", "ExecStop", "ExecStopPost", "ExecReload":
		return "podunit runs no commands around a pod: use an init container, or a postStart/preStop lifecycle hook in the YAML"
	case "Type", "NotifyAccess", "KillMode", "SyslogIdentifier", "WorkingDirectory":
		return "podunit sets up the pod's unit (pod-NAME.service) itself"
	case "MemoryMax", "MemoryHigh", "CPUQuota", "CPUWeight", "TasksMax", "IOWeight":
		return "set resources.limits in the YAML: podunit puts them on the pod's slice"
	}
	return "podunit generates the pod's unit (pod-NAME.service) itself and does not take service settings from elsewhere; express it in the YAML"
}

// autoUpdateDisabled is podman's policy of no update, which podunit's
// auto-update annotation accepts too.
const autoUpdateDisabled = "disabled"

// kubeKeys are the [Kube] keys Quadlet knows; any other is refused, as
// Quadlet refuses it.
var kubeKeys = []string{"AutoUpdate", "ConfigMap", "ContainersConfModule", "ExitCodePropagation", "GlobalArgs",
	"KubeDownForce", "LogDriver", "LogOpt", "Network", "PodmanArgs", "PublishPort", "RemapGid", "RemapUid",
	"RemapUidSize", "RemapUsers", "ServiceName", "SetWorkingDirectory", "UserNS", "Yaml"}

// convertKube applies one [Kube] assignment; done records the ports the
// unit's PublishPort= published so far.
func convertKube(u *Unit, o Option, pods []document, done published) (string, bool, error) {
	if !slices.Contains(kubeKeys, o.Key) {
		return "", false, fmt.Errorf("unknown key: Quadlet refuses the unit too (its keys: %s)", strings.Join(kubeKeys, ", "))
	}
	switch o.Key {
	case "Yaml":
		return "its documents are in the manifest", true, nil
	case "ConfigMap":
		return "its ConfigMap documents are in the manifest, before the pods", true, nil
	case "PublishPort":
		ports, err := parsePublishPort(o.Value)
		if err != nil {
			return "", false, err
		}
		var mapped []string
		for _, d := range pods {
			_, spec := podTemplate(d)
			for _, p := range ports {
				c, err := publishPort(spec, p, done)
				if err != nil {
					return "", false, fmt.Errorf("%s %s: %w", d.kind(), d.str("metadata", "name"), err)
				}
				mapped = append(mapped, fmt.Sprintf("%s (container %s of %s)", p, c, d.str("metadata", "name")))
			}
		}
		return "hostPort " + strings.Join(mapped, ", "), true, nil
	case "AutoUpdate":
		words, err := splitWords(o.Value)
		if err != nil {
			return "", false, err
		}
		var set []string
		disabled := false
		for _, w := range words {
			key, policy := generator.AnnotationPodmanAutoUpdate, w
			if ctr, p, ok := strings.Cut(w, "/"); ok {
				key, policy = generator.AnnotationPodmanAutoUpdate+"/"+ctr, p
			}
			what := key + ": " + policy
			switch policy {
			case generator.AutoUpdateRegistry, generator.AutoUpdateLocal:
			case autoUpdateDisabled:
				disabled = true
			case "image": // podman's old name of registry, which it still reads
				policy = generator.AutoUpdateRegistry
				what = fmt.Sprintf("%s: %s (image is podman's old name of registry)", key, policy)
			default:
				return "", false, fmt.Errorf("%q: registry, local, disabled (or image, podman's old name of registry), or CONTAINER/POLICY", w)
			}
			for _, d := range pods {
				meta, _ := podTemplate(d)
				annotate(meta, key, policy)
			}
			set = append(set, what)
		}
		text := "annotation " + strings.Join(set, ", ") + ": podunit auto-update (podunit-auto-update.timer) replaces the pod when the image changes"
		if disabled {
			text += ", except where the policy is disabled (as in podman)"
		}
		return text, true, nil
	case "Network":
		words, err := splitWords(o.Value)
		if err != nil {
			return "", false, err
		}
		if len(words) == 1 && words[0] == "host" {
			for _, d := range pods {
				_, spec := podTemplate(d)
				setScalar(spec, "hostNetwork", "true", "!!bool")
			}
			return "spec.hostNetwork: true", true, nil
		}
		return "podunit's pods join the node's CNI network (config.yaml, /etc/cni/net.d); pods reach each other through Services (kind: Service) and their names", false, nil
	case "UserNS":
		mode, _, _ := strings.Cut(o.Value, ":")
		switch mode {
		case "host":
			return "the host's users: podunit's default", true, nil
		case "auto":
			for _, d := range pods {
				_, spec := podTemplate(d)
				setScalar(spec, "hostUsers", "false", "!!bool")
			}
			return "spec.hostUsers: false (a user namespace of the pod's own; needs containerd 2.0 or later, or CRI-O)", true, nil
		}
		return "podunit knows two modes: the host's users (default) and spec.hostUsers: false (a user namespace of the pod's own, as UserNS=auto)", false, nil
	case "RemapUid", "RemapGid", "RemapUsers", "RemapUidSize":
		return "podman's old user mapping: set spec.hostUsers: false in the YAML for a user namespace of the pod's own", false, nil
	case "LogDriver":
		if o.Value == "journald" {
			return "podunit's containers log to journald (journalctl -u pod-NAME, journalctl CONTAINER_NAME=…)", true, nil
		}
		return "podunit's containers log to journald only (journalctl -u pod-NAME); forward from there", false, nil
	case "LogOpt":
		return "journald's own settings (journald.conf) apply to the pods' logs", false, nil
	case "SetWorkingDirectory":
		return "podunit resolves no path against a working directory: the YAML's hostPath volumes must be absolute", false, nil
	case "ExitCodePropagation":
		return "a pod's unit follows its restartPolicy; for work that runs to completion use a Job, whose outcome podunit keeps", false, nil
	case "KubeDownForce":
		return "removing the manifest keeps the claims' data, as podman kube down does without --force; podunit volume rm NAMESPACE/CLAIM removes it", false, nil
	case "PodmanArgs":
		return podmanArgs(o.Value, pods)
	case "GlobalArgs", "ContainersConfModule":
		return "podman's own settings; podunit's are in /etc/podunit/config.yaml", false, nil
	case "ServiceName":
		return fmt.Sprintf("other units' ordering on %s is read as ordering on this unit's pods; the pods' units are pod-NAME.service", u.ServiceName()), true, nil
	}
	return "", false, fmt.Errorf("unhandled key") // kubeKeys and this switch agree (tested)
}

// podmanArgs carries --annotation KEY=VALUE over and reports the rest.
func podmanArgs(v string, pods []document) (string, bool, error) {
	words, err := splitWords(v)
	if err != nil {
		return "", false, err
	}
	var done, rest []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		var kv string
		switch {
		case strings.HasPrefix(w, "--annotation="):
			kv = strings.TrimPrefix(w, "--annotation=")
		case w == "--annotation" && i+1 < len(words):
			i++
			kv = words[i]
		default:
			rest = append(rest, w)
			continue
		}
		key, value, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return "", false, fmt.Errorf("--annotation %q: KEY=VALUE", kv)
		}
		for _, d := range pods {
			meta, _ := podTemplate(d)
			annotate(meta, key, value)
		}
		done = append(done, "annotation "+key)
	}
	switch {
	case len(rest) == 0:
		return strings.Join(done, ", "), true, nil
	case len(done) == 0:
		return fmt.Sprintf("%s: podman's command line has no podunit equivalent; express it in the YAML", strings.Join(rest, " ")), false, nil
	}
	return fmt.Sprintf("%s carried over; not carried over: %s: podman's command line has no podunit equivalent; express it in the YAML", strings.Join(done, ", "), strings.Join(rest, " ")), false, nil
}
