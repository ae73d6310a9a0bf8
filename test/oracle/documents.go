package oracle

import (
	"bytes"
	"strconv"
	"strings"
)

// Document is one YAML document of a manifest file, as kubectl splits a
// file before it sends each document to the API server.
type Document struct {
	File  string // the file's path as the corpus names it
	Index int    // 0-based among the file's non-empty documents
	// First and Last are the 1-based lines the document spans, its
	// separators excluded.
	First, Last int
	Data        []byte
}

// ID names the document in reports and in the table: "file#index".
func (d Document) ID() string { return d.File + "#" + strconv.Itoa(d.Index) }

// Split cuts data into documents at lines that start with "---" followed
// by nothing but blanks or a comment, as kubectl's YAML reader does;
// documents holding only blanks and comments are dropped, as kubectl drops
// them. A file with no document at all is one document, the whole file.
func Split(file string, data []byte) []Document {
	var docs []Document
	lines := bytes.SplitAfter(data, []byte("\n"))
	start := 0 // index of the current document's first line
	flush := func(end int) {
		body := bytes.Join(lines[start:end], nil)
		if !onlyComments(body) {
			docs = append(docs, Document{File: file, Index: len(docs), First: start + 1, Last: end, Data: body})
		}
	}
	for i, line := range lines {
		if isSeparator(line) {
			flush(i)
			start = i + 1
		}
	}
	if start < len(lines) {
		flush(len(lines))
	}
	if len(docs) == 0 {
		// Nothing but comments and separators: the file as one document,
		// which both sides must refuse.
		docs = append(docs, Document{File: file, First: 1, Last: len(lines), Data: data})
	}
	return docs
}

func isSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	rest := strings.TrimSpace(string(line[3:]))
	return rest == "" || strings.HasPrefix(rest, "#")
}

func onlyComments(body []byte) bool {
	for _, line := range strings.Split(string(body), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}
