package quadlet

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/podunit/podunit/generator"
)

// objectKinds are the kinds sync keeps one of per namespace and name for
// all pods, whichever file defines it (the first; another definition is an
// error). podman gives each unit's pods the ones of its own files.
var objectKinds = []string{"ConfigMap", "Secret", "PersistentVolumeClaim"}

// object is a definition of one of objectKinds.
type object struct {
	key     string // "ConfigMap default/app-config"
	content any    // the document, namespace written out, comments left out
	from    string // the file that defines it
	unit    int    // the unit whose manifest holds it; -1: an existing manifest
	where   string // that manifest, for messages
}

// of says where the object is defined: its file and, imported, the
// manifest that holds it.
func (o object) of() string {
	if o.unit < 0 {
		return o.from + ", in the manifest directory"
	}
	return fmt.Sprintf("%s, which %s holds", o.from, o.where)
}

// objectOf is d as an object, false when it is not of objectKinds.
func objectOf(d document) (object, bool) {
	if !slices.Contains(objectKinds, d.kind()) {
		return object{}, false
	}
	ns := d.str("metadata", "namespace")
	if ns == "" {
		ns = "default"
	}
	var content map[string]any
	if err := d.node.Decode(&content); err != nil {
		return object{}, false // the manifest check reports it
	}
	if meta, ok := content["metadata"].(map[string]any); ok {
		meta["namespace"] = ns
	}
	return object{key: fmt.Sprintf("%s %s/%s", d.kind(), ns, d.str("metadata", "name")), content: content, from: d.from}, true
}

// existingObjects are the objects of the manifests sync reads beside the
// import's, the first definition of a name winning as in sync; a file sync
// would refuse is left out, as sync leaves it out.
func existingObjects(existing []generator.File) map[string]object {
	out := map[string]object{}
	for _, f := range existing {
		if _, err := generator.DecodeManifest(f.Path, f.Data); err != nil {
			continue
		}
		docs, err := parseDocuments(f.Path, f.Data)
		if err != nil {
			continue
		}
		for _, d := range docs {
			if o, ok := objectOf(d); ok {
				if _, dup := out[o.key]; !dup {
					o.unit, o.where = -1, f.Path
					out[o.key] = o
				}
			}
		}
	}
	return out
}

// refuseDifferentObjects refuses each unit that defines an object another
// unit, earlier in order and not refused, or an existing manifest defines
// otherwise: sync would give the pods of both the first definition.
func refuseDifferentObjects(units []*Unit, out []Import, docs [][]document, existing []generator.File) {
	keep := existingObjects(existing)
	for i, u := range units {
		if out[i].Err != nil {
			continue
		}
		var mine []object
		var errs []error
		for _, d := range docs[i] {
			o, ok := objectOf(d)
			if !ok {
				continue
			}
			if k, dup := keep[o.key]; dup && !reflect.DeepEqual(k.content, o.content) {
				errs = append(errs, fmt.Errorf("%s of %s differs from the one of %s: podunit has one %s of a name in a namespace for all pods, where podman gives each unit's pods their own; rename it in one of the two files, and the pods' references to it", o.key, o.from, k.of(), d.kind()))
				continue
			}
			o.unit, o.where = i, manifestOf(u)
			mine = append(mine, o)
		}
		if len(errs) > 0 {
			out[i].Err = errors.Join(errs...)
			continue
		}
		for _, o := range mine {
			if _, dup := keep[o.key]; !dup {
				keep[o.key] = o
			}
		}
	}
}

// shareObjects leaves out of each imported unit's manifest the objects an
// existing manifest or an earlier imported unit's already defines (the
// same: refuseDifferentObjects refused the others), so that sync reads
// each once. It notes each, names the units whose manifests keep them
// (Import.Keepers), and tells which manifests changed.
func shareObjects(units []*Unit, out []Import, docs [][]document, existing []generator.File) []bool {
	changed := make([]bool, len(units))
	keep := existingObjects(existing)
	for i, u := range units {
		if out[i].Err != nil {
			continue
		}
		var kept []document
		for _, d := range docs[i] {
			o, ok := objectOf(d)
			if !ok {
				kept = append(kept, d)
				continue
			}
			k, dup := keep[o.key]
			if !dup || k.unit == i {
				o.unit, o.where = i, manifestOf(u)
				keep[o.key] = o
				kept = append(kept, d)
				continue
			}
			out[i].Notes = append(out[i].Notes, Note{Option: o.key, From: o.from, Carried: true,
				Text: fmt.Sprintf("left out of this manifest: the same %s is defined by %s; sync gives every pod that one definition", d.kind(), k.of())})
			if k.unit >= 0 && !slices.Contains(out[i].Keepers, units[k.unit].Path) {
				out[i].Keepers = append(out[i].Keepers, units[k.unit].Path)
			}
			changed[i] = true
		}
		docs[i] = kept
	}
	return changed
}

// manifestOf names a unit's manifest in messages.
func manifestOf(u *Unit) string {
	return fmt.Sprintf("the manifest of %s (%s)", u.Name(), u.ManifestFile())
}
