package generator

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Explanation is what `podunit explain` prints for a field: its type, what
// it is in Kubernetes, what podunit does with it (its class) and the same
// for each field below it.
type Explanation struct {
	Kind       string
	APIVersion string
	Path       string // e.g. spec.containers.ports; "" for the kind itself
	Type       string
	// Description is Kubernetes' own, from k8s.io/api (what kubectl
	// explain prints); "" where it has none.
	Description string
	Class       string // a Class's String, or Rejected
	Doc         string // what podunit does with it
	Fields      []ExplainedField
}

// ExplainedField is one field below an explained one.
type ExplainedField struct {
	Name, Type, Class, Doc string
}

// Explain looks up "kind.field.field…" (kubectl explain's form, without
// list indices; the kind in any case) in the field lists. A kind that is
// skipped gives an error that says why.
func Explain(query string) (*Explanation, error) {
	kindName, path, _ := strings.Cut(query, ".")
	var kind *Kind
	for _, k := range Kinds {
		if strings.EqualFold(k.Name, kindName) {
			kind = k
		}
	}
	if kind == nil {
		for _, sk := range SkippedKinds {
			if strings.EqualFold(sk.Name, kindName) {
				return nil, fmt.Errorf("%s is skipped with a notice: %s", sk.Name, sk.Why)
			}
		}
		return nil, fmt.Errorf("%q is not a kind podunit reads (%s)", kindName, kindNames())
	}
	e := &Explanation{Kind: kind.Name, APIVersion: kind.apiVersion(), Path: path, Class: Honoured.String()}
	t, node, inherited := kind.Type, kind.supported(), Class(-1)
	e.Description = swaggerDoc(t, "")
	if path != "" {
		for _, part := range strings.Split(path, ".") {
			st := structOf(t)
			if st == nil {
				return nil, fmt.Errorf("%s: %s has no fields", query, typeName(t))
			}
			ft, ok := jsonFields(st)[part]
			if !ok {
				return nil, fmt.Errorf("%s: no field %q in %s%s", query, part, typeName(st), suggest(part, jsonFields(st)))
			}
			t = ft
			e.Description = swaggerDoc(st, part)
			switch {
			case inherited >= 0 || node == nil:
			case len(node.children) == 0:
				inherited = node.class // a listed field covers all below it
			default:
				node = node.children[part]
			}
		}
		e.Doc, e.Class = explainClass(node, inherited)
	}
	e.Type = typeName(t)
	if isPodAnnotations(kind, path) {
		for _, a := range PodAnnotations {
			e.Fields = append(e.Fields, ExplainedField{Name: a.Pattern(), Type: "string", Class: a.Class.String(), Doc: a.Doc})
		}
	}
	if st := structOf(t); st != nil {
		fields := jsonFields(st)
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			if path != "" && (name == "apiVersion" || name == "kind" || name == "TypeMeta") {
				continue
			}
			f := ExplainedField{Name: name, Type: typeName(fields[name])}
			var child *fieldNode
			childInherited := inherited
			switch {
			case childInherited >= 0:
			case node != nil && path != "" && len(node.children) == 0:
				childInherited = node.class
			case node != nil:
				child = node.children[name]
			}
			f.Doc, f.Class = explainClass(child, childInherited)
			if i := strings.Index(f.Doc, ". "); i > 0 {
				f.Doc = f.Doc[:i+1] // the first sentence
			}
			e.Fields = append(e.Fields, f)
		}
	}
	return e, nil
}

// explainClass is the doc and class of a field's node: inherited from a
// listed field above it, its own, or rejected when it is in no list.
func explainClass(node *fieldNode, inherited Class) (doc, class string) {
	switch {
	case inherited >= 0:
		return "", inherited.String()
	case node == nil:
		return "Not supported by podunit: a manifest that sets it is rejected.", Rejected
	case node.doc == "" && len(node.children) > 0:
		return "", "mixed: see its fields"
	}
	return node.doc, node.class.String()
}

func structOf(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return nil
	}
	return t
}

// typeName is a field's type as kubectl explain writes it.
func typeName(t reflect.Type) string {
	switch {
	case t.Kind() == reflect.Pointer:
		return typeName(t.Elem())
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return "string (base64)"
	case t.Kind() == reflect.Slice:
		return "[]" + typeName(t.Elem())
	case t.Kind() == reflect.Map:
		return "map[" + typeName(t.Key()) + "]" + typeName(t.Elem())
	case reflect.PointerTo(t).Implements(jsonUnmarshaler):
		return t.Name()
	case t.Kind() == reflect.Struct:
		return t.Name()
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "integer"
	}
	return "string"
}

// isPodAnnotations tells whether path is a pod's annotations, or its
// template's in a workload kind.
func isPodAnnotations(kind *Kind, path string) bool {
	switch {
	case kind.Name == "Pod":
		return path == "metadata.annotations"
	case kind.Workload:
		return path == kind.Template()+"metadata.annotations"
	}
	return false
}

// swaggerDocer is a k8s.io/api type with its fields' descriptions, as the
// API's OpenAPI documents them ("" is the type's own).
type swaggerDocer interface {
	SwaggerDoc() map[string]string
}

// swaggerDoc is Kubernetes' description of field (the JSON name) of struct
// type t, or of t itself for ""; a field of an inlined struct (TypeMeta) is
// found there. "" when it has none.
func swaggerDoc(t reflect.Type, field string) string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	if d, ok := reflect.Zero(t).Interface().(swaggerDocer); ok {
		if doc := d.SwaggerDoc()[field]; doc != "" {
			return doc
		}
	}
	if field == "" {
		return ""
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.Anonymous && name == "" {
			if doc := swaggerDoc(f.Type, field); doc != "" {
				return doc
			}
		}
	}
	return ""
}
