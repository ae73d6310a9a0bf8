// Package urlserver is a manifestURL server for tests: it wants a header,
// sends ETags, answers 304 to a matching If-None-Match, and answers
// whatever status, body and delay it is told.
package urlserver

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
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
	status, body, delay := s.status, s.body, s.delay
	s.mu.Unlock()
	if r.Header.Get(s.Header) != s.Value {
		http.Error(w, "missing "+s.Header, http.StatusForbidden)
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
