package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/net/websocket"
	"golang.org/x/sys/unix"
)

// The kubelet's remotecommand protocol over a WebSocket, as the runtime's
// streaming server (containerd's, CRI-O's) speaks it: every message starts
// with its channel's number. Version 4 over a WebSocket cannot tell the
// command that its standard input ended: standard input without a terminal
// goes over SPDY (execSPDY).
const (
	streamProtocolV4 = "v4.channel.k8s.io"
	chanStdin        = 0
	chanStdout       = 1
	chanStderr       = 2
	chanError        = 3
	chanResize       = 4
)

// streamStatus is what the server sends on the error channel when the
// command ends: a metav1.Status, with the exit code as a cause.
type streamStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Details struct {
		Causes []struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

// exitCode reads the command's exit status out of the error channel's
// message: 0 for Success.
func (s streamStatus) exitCode() (int, error) {
	if s.Status == "Success" {
		return 0, nil
	}
	for _, c := range s.Details.Causes {
		if c.Reason == "ExitCode" {
			return strconv.Atoi(c.Message)
		}
	}
	return 0, errors.New(s.Message)
}

// streamExec connects to the runtime's exec URL and joins the command's
// streams to ours, with a terminal of the same size when tty is set, until
// the command ends. It returns the command's exit status.
func streamExec(rawURL string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, err
	}
	origin := *u
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	cfg, err := websocket.NewConfig(u.String(), origin.String())
	if err != nil {
		return 0, err
	}
	cfg.Protocol = []string{streamProtocolV4}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		return 0, fmt.Errorf("the runtime's streaming server at %s: %w", origin.Host, err)
	}
	defer ws.Close()
	ws.PayloadType = websocket.BinaryFrame

	var sendMu sync.Mutex
	send := func(ch byte, data []byte) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return websocket.Message.Send(ws, append([]byte{ch}, data...))
	}
	if tty {
		if restore, err := rawTerminal(os.Stdin); err == nil {
			defer restore()
		}
		resize := func() {
			if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
				b, _ := json.Marshal(map[string]uint16{"Width": ws.Col, "Height": ws.Row})
				send(chanResize, b)
			}
		}
		resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				resize()
			}
		}()
	}
	if stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := stdin.Read(buf)
				if n > 0 && send(chanStdin, buf[:n]) != nil {
					return
				}
				if err != nil {
					// End of input: v4 over a WebSocket cannot pass it
					// on; with a terminal, ^D does.
					return
				}
			}
		}()
	}
	for {
		var msg []byte
		if err := websocket.Message.Receive(ws, &msg); err != nil {
			if errors.Is(err, io.EOF) {
				// v4 always ends with a status on the error channel.
				return 0, errors.New("the runtime's streaming server closed the stream without the command's exit status")
			}
			return 0, err
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case chanStdout:
			stdout.Write(msg[1:])
		case chanStderr:
			stderr.Write(msg[1:])
		case chanError:
			var st streamStatus
			if err := json.Unmarshal(msg[1:], &st); err != nil {
				return 0, fmt.Errorf("the runtime's streaming server: %s", msg[1:])
			}
			return st.exitCode()
		}
	}
}

// rawTerminal puts f's terminal into raw mode, as ssh does for an
// interactive session, and returns how to restore it.
func rawTerminal(f *os.File) (func(), error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}
