// Package urlserver is a manifestURL server for tests: it wants a header,
// sends ETags, answers 304 to a matching If-None-Match, and answers
// whatever status, body and delay it is told — or misbehaves as a broken
// server does (Misbehave).
package urlserver

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is an http.Handler.
type Server struct {
	// Header and Value must be in every request; other requests get 403.
	Header, Value string

	mu          sync.Mutex
	status      int
	body        string
	delay       time.Duration
	notModified int
	mode        Mode
}

// Mode is a way of misbehaving.
type Mode int

const (
	// Normal answers the status and body set by Answer.
	Normal Mode = iota
	// Hang never answers (until the client gives up).
	Hang
	// HalfBody announces the whole body but sends half of it and closes
	// the connection.
	HalfBody
	// Huge sends a 50 MiB body.
	Huge
	// RedirectLoop redirects every request to itself.
	RedirectLoop
)

// HugeSize is the size of the body Huge sends.
const HugeSize = 50 << 20

// Misbehave sets how the next requests are answered.
func (s *Server) Misbehave(m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
}

// Answer sets what the next requests get.
func (s *Server) Answer(status int, body string, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body, s.delay = status, body, delay
}

// NotModified is how many requests got 304.
func (s *Server) NotModified() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notModified
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	status, body, delay, mode := s.status, s.body, s.delay, s.mode
	s.mu.Unlock()
	if r.Header.Get(s.Header) != s.Value {
		http.Error(w, "missing "+s.Header, http.StatusForbidden)
		return
	}
	switch mode {
	case Hang:
		<-r.Context().Done()
		return
	case HalfBody:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, body[:len(body)/2])
		// The server closes a connection whose handler wrote less than
		// the Content-Length it announced.
		return
	case Huge:
		w.Header().Set("Content-Length", strconv.Itoa(HugeSize))
		w.WriteHeader(http.StatusOK)
		line := []byte("# " + strings.Repeat("x", 1021) + "\n")
		for range HugeSize / len(line) {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
		return
	case RedirectLoop:
		http.Redirect(w, r, r.URL.String(), http.StatusFound)
		return
	}
	time.Sleep(delay)
	sum := sha256.Sum256([]byte(body))
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	if status == http.StatusOK && r.Header.Get("If-None-Match") == etag {
		s.mu.Lock()
		s.notModified++
		s.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}
