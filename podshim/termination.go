package podshim

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/criconfig"
)

// The kubelet's limits on a termination message: what the container wrote
// to its terminationMessagePath, or with FallbackToLogsOnError the tail of
// its log after a failure.
const (
	maxTerminationMessage = 4096
	maxFallbackLogBytes   = 2048
	maxFallbackLogLines   = 80
)

// terminationMessage is what the kubelet reports as an exited container's
// message: its termination log, or under FallbackToLogsOnError after a
// failure with an empty log, the tail of its output. Empty when there is
// none.
func (s *Shim) terminationMessage(c *corev1.Container, attempt uint32, exitCode int32, logPath string) string {
	msg := readLimited(criconfig.TerminationLog(s.podDir(), c.Name, attempt), maxTerminationMessage)
	if msg == "" && exitCode != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		msg = logTail(logPath, maxFallbackLogLines, maxFallbackLogBytes)
	}
	return msg
}

func readLimited(path string, limit int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, limit))
	return string(b)
}

// logTail is the last lines of a CRI log file's messages (without the
// time, stream and tag of each line), at most maxBytes from the end.
func logTail(path string, lines int, maxBytes int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// Every CRI line carries ~40 bytes of prefix: read enough for the
	// messages.
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		if _, err := f.Seek(-window, io.SeekEnd); err != nil {
			return ""
		}
	}
	b, _ := io.ReadAll(f)
	var (
		msgs    []string
		partial string // a line's beginning, tagged P: its end follows
	)
	for _, line := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		// <time> <stream> <tag> <message>
		parts := bytes.SplitN(line, []byte(" "), 4)
		if len(parts) < 4 {
			continue
		}
		if string(parts[2]) == "P" {
			partial += string(parts[3])
			continue
		}
		msgs = append(msgs, partial+string(parts[3]))
		partial = ""
	}
	if len(msgs) > lines {
		msgs = msgs[len(msgs)-lines:]
	}
	out := strings.Join(msgs, "\n")
	if len(out) > maxBytes {
		out = out[len(out)-maxBytes:]
	}
	return out
}

// exitOf is how attempt of c ended, with its termination message when the
// runtime gave none.
func (s *Shim) exitOf(c *container, attempt uint32, st *runtimeapi.ContainerStatus) *exitInfo {
	e := exitOf(st)
	if e.Message == "" && st != nil {
		e.Message = s.terminationMessage(c.spec, attempt, e.ExitCode, filepath.Join(s.sandboxConfig.LogDirectory, c.spec.Name, fmt.Sprintf("%d.log", attempt)))
	}
	return e
}
