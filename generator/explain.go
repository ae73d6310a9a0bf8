package generator

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Explanation is what `podunit explain` prints for a field: its type, what
// podunit does with it (its class) and the same for each field below it.
type Explanation struct {
	Kind       string
	APIVersion string
	Path       string // e.g. spec.containers.ports; "" for the kind itself
	Type       string
	Class      string // a Class's String, or Rejected
	Doc        string
	Fields     []ExplainedField
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
