package oracle

import (
	"errors"
	"fmt"
	"strings"

	"github.com/podunit/podunit/generator"
)

// Verdict is podunit's judgement of one document.
type Verdict struct {
	Errors  []*generator.FieldError // those on the document's lines, and the file's own (no line)
	Notices []generator.Notice      // those on the document's lines
}

// Accepted tells whether podunit accepts the document: no error.
func (v Verdict) Accepted() bool { return len(v.Errors) == 0 }

// UnknownFields are the field paths podunit refuses as unknown.
func (v Verdict) UnknownFields() []string {
	var out []string
	for _, e := range v.Errors {
		if strings.HasPrefix(e.Msg, "unknown field") && e.Field != "" {
			out = append(out, e.Field)
		}
	}
	return out
}

// Podunit reads one file as `podunit validate` does, beside sources (the
// references of its pods resolve there), and gives each of docs (the
// file's documents, from Split) its verdict: the errors and notices on
// its lines; an error with no line (the file as a whole) counts against
// every document.
func Podunit(r generator.Reader, file string, data []byte, docs []Document, sources ...generator.Source) ([]Verdict, error) {
	set, err := r.Check([]generator.File{{Path: file, Data: data}}, sources...)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", file, err)
	}
	out := make([]Verdict, len(docs))
	for _, e := range set.Errors {
		for _, fe := range generator.Flatten(e) {
			var f *generator.FieldError
			if !errors.As(fe, &f) {
				f = &generator.FieldError{File: file, Msg: fe.Error()}
			}
			if f.File != file {
				continue
			}
			if f.Line == 0 {
				for i := range out {
					out[i].Errors = append(out[i].Errors, f)
				}
				continue
			}
			i := docAt(docs, f.Line)
			out[i].Errors = append(out[i].Errors, f)
		}
	}
	for _, n := range set.Notices {
		if n.File == file {
			i := docAt(docs, n.Line)
			out[i].Notices = append(out[i].Notices, n)
		}
	}
	return out, nil
}

// docAt is the index of the document holding line: the last one starting
// at or before it (a separator's line belongs to the document before it).
func docAt(docs []Document, line int) int {
	at := 0
	for i, d := range docs {
		if d.First <= line {
			at = i
		}
	}
	return at
}
