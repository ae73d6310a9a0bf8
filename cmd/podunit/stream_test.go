package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/net/websocket"
)

// streamServer is a runtime's streaming server for one `cat`: it speaks
// the protocols given (the first of the client's it knows), echoes standard
// input, and ends the command (status Success) when v5 says the input
// ended or the client sends "EOF" under v4. ran counts the commands run.
func streamServer(t *testing.T, protocols []string, ran *atomic.Int32) *httptest.Server {
	t.Helper()
	return httptest.NewServer(websocket.Server{
		Handshake: func(cfg *websocket.Config, _ *http.Request) error {
			for _, p := range cfg.Protocol {
				if slices.Contains(protocols, p) {
					cfg.Protocol = []string{p}
					return nil
				}
			}
			return errors.New("requested protocol(s) are not supported")
		},
		Handler: func(ws *websocket.Conn) {
			ran.Add(1)
			ws.PayloadType = websocket.BinaryFrame
			for {
				var msg []byte
				if websocket.Message.Receive(ws, &msg) != nil || len(msg) == 0 {
					return
				}
				switch {
				case msg[0] == chanStdin:
					websocket.Message.Send(ws, append([]byte{chanStdout}, msg[1:]...))
				case msg[0] == chanClose && len(msg) == 2 && msg[1] == chanStdin:
					websocket.Message.Send(ws, append([]byte{chanError}, `{"status":"Success"}`...))
					return
				}
			}
		},
	})
}

func wsURL(s *httptest.Server) string { return s.URL + "/exec/token" }

// -i without -t: v5 passes the end of the input on and the command
// finishes; a v4-only server refuses the connection before the command
// runs.
func TestStreamExecStdinWithoutTerminal(t *testing.T) {
	var ran atomic.Int32
	v5 := streamServer(t, []string{streamProtocolV5, streamProtocolV4}, &ran)
	defer v5.Close()
	var out, errs bytes.Buffer
	code, err := streamExec(wsURL(v5), strings.NewReader("hello\nworld\n"), &out, &errs, false)
	if err != nil || code != 0 || out.String() != "hello\nworld\n" {
		t.Errorf("v5: exit %d, %v, stdout %q", code, err, out.String())
	}

	ran.Store(0)
	v4 := streamServer(t, []string{streamProtocolV4}, &ran)
	defer v4.Close()
	_, err = streamExec(wsURL(v4), strings.NewReader("hello\n"), &out, &errs, false)
	if !errors.Is(err, errNoStdinClose) {
		t.Errorf("v4 server, -i without -t: %v, want %v", err, errNoStdinClose)
	}
	if ran.Load() != 0 {
		t.Error("the command ran on a server that cannot be told the input ended")
	}
}
