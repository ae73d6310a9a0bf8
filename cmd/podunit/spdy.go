package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

// spdyStreamTimeout is how long the runtime's streaming server may take to
// accept each of the exec's streams.
const spdyStreamTimeout = 30 * time.Second

// execSPDY runs an exec session with standard input and no terminal over
// SPDY, the kubelet's remotecommand protocol (v4) as the runtimes' streaming
// servers speak it, as kubectl and crictl do: each stream is a stream of
// its own, so the end of standard input is the end of the stdin stream,
// and the command sees it (the WebSocket framing, before v5, has no way to
// say it, and the runtimes' servers do not speak v5). It returns the
// command's exit status.
func execSPDY(rawURL string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, err
	}
	var conn net.Conn
	switch u.Scheme {
	case "https":
		// The runtime's own self-signed certificate (enable_tls_streaming),
		// on an address it gave us over its local socket.
		conn, err = tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true})
	default:
		conn, err = net.Dial("tcp", u.Host)
	}
	if err != nil {
		return 0, fmt.Errorf("the runtime's streaming server at %s: %w", u.Host, err)
	}
	defer conn.Close()

	req, err := http.NewRequest(http.MethodPost, rawURL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Set("X-Stream-Protocol-Version", streamProtocolV4)
	if err := req.Write(conn); err != nil {
		return 0, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return 0, fmt.Errorf("the runtime's streaming server at %s: %w", u.Host, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return 0, fmt.Errorf("the runtime's streaming server at %s answered %s to the SPDY upgrade", u.Host, resp.Status)
	}
	if p := resp.Header.Get("X-Stream-Protocol-Version"); p != streamProtocolV4 {
		return 0, fmt.Errorf("the runtime's streaming server at %s chose protocol %q, not %s", u.Host, p, streamProtocolV4)
	}
	sc, err := spdystream.NewConnection(&bufferedConn{conn, br}, false)
	if err != nil {
		return 0, err
	}
	defer sc.Close()
	go sc.Serve(spdystream.NoOpStreamHandler)

	// The error stream first, as the kubelet's clients open it: the
	// server writes the command's end there.
	streams := map[string]*spdystream.Stream{}
	for _, kind := range []string{"error", "stdin", "stdout", "stderr"} {
		s, err := sc.CreateStream(http.Header{"Streamtype": {kind}}, nil, false)
		if err == nil {
			err = s.WaitTimeout(spdyStreamTimeout)
		}
		if err != nil {
			return 0, fmt.Errorf("%s stream: %w", kind, err)
		}
		streams[kind] = s
	}
	in, errStream := streams["stdin"], streams["error"]
	go func() {
		io.Copy(in, stdin)
		in.Close() // the end of standard input: the command's stdin closes
	}()
	var wg sync.WaitGroup
	for _, c := range []struct {
		w io.Writer
		r io.Reader
	}{{stdout, streams["stdout"]}, {stderr, streams["stderr"]}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(c.w, c.r)
		}()
	}
	status, err := io.ReadAll(errStream)
	if err != nil {
		return 0, fmt.Errorf("error stream: %w", err)
	}
	wg.Wait()
	if len(status) == 0 {
		return 0, nil // v4 sends nothing for a command that succeeded
	}
	var st streamStatus
	if err := json.Unmarshal(status, &st); err != nil {
		return 0, fmt.Errorf("the runtime's streaming server: %s", status)
	}
	return st.exitCode()
}

// bufferedConn reads what the HTTP response's reader already buffered
// before the connection itself.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
