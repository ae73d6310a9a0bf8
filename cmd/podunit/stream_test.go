package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/moby/spdystream"
)

// spdyServer is a runtime's streaming server for one `sh -c 'cat; echo
// done; exit 3'`, over SPDY as the kubelet's remotecommand v4: it echoes
// the stdin stream to stdout until that stream ends, then says done and
// writes the exit status on the error stream.
func spdyServer(t *testing.T) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "SPDY/3.1" || r.Header.Get("X-Stream-Protocol-Version") != streamProtocolV4 {
			http.Error(w, "not a v4 SPDY upgrade", http.StatusBadRequest)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: " + streamProtocolV4 + "\r\n\r\n")
		buf.Flush()
		sc, err := spdystream.NewConnection(conn, true)
		if err != nil {
			return
		}
		var mu sync.Mutex
		streams := map[string]*spdystream.Stream{}
		all := make(chan struct{})
		go sc.Serve(func(s *spdystream.Stream) {
			s.SendReply(http.Header{}, false)
			mu.Lock()
			defer mu.Unlock()
			streams[s.Headers().Get("Streamtype")] = s
			if len(streams) == 4 {
				close(all)
			}
		})
		<-all
		io.Copy(streams["stdout"], bufio.NewReader(streams["stdin"]))
		streams["stdout"].Write([]byte("done\n"))
		streams["error"].Write([]byte(`{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}`))
		for _, s := range streams {
			s.Close()
		}
		sc.CloseWait()
	}))
}

// -i without -t: the input reaches the command, and so does its end; the
// command's exit status comes back.
func TestExecSPDYPassesTheEndOfInput(t *testing.T) {
	s := spdyServer(t)
	defer s.Close()
	var out, errs bytes.Buffer
	code, err := execSPDY(s.URL+"/exec/token", strings.NewReader("one\ntwo\n"), &out, &errs)
	if err != nil || code != 3 || out.String() != "one\ntwo\ndone\n" {
		t.Errorf("exit %d, %v, stdout %q", code, err, out.String())
	}
}
