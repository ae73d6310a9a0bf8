package podshim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Kubernetes' container log rotation defaults (containerLogMaxSize,
// containerLogMaxFiles).
const (
	DefaultLogMaxSize  = 10 << 20
	DefaultLogMaxFiles = 5
)

// LogLine is one line a container wrote, as forwarded to the journal.
type LogLine struct {
	Container    string
	ContainerID  string
	RestartCount uint32
	Stream       string // stdout or stderr
	Time         time.Time
	Message      string
}

// LogSink receives container log lines: in podshim, the journal (with the
// pod's and container's fields, attributed to the pod's unit).
type LogSink func(LogLine) error

// logPath is where the runtime writes an instance's log, as the kubelet
// lays it out: <log root>/<ns>_<name>_<uid>/<container>/<attempt>.log.
func (s *Shim) logPath(c *container) string {
	return filepath.Join(s.sandboxConfig.LogDirectory, c.spec.Name, fmt.Sprintf("%d.log", c.attempt))
}

// forwardLogs sends what every container wrote since the last call to the
// log sink, rotates a log that grew past LogMaxSize, and records how far it
// got.
func (s *Shim) forwardLogs(ctx context.Context) {
	if s.cfg.Logs == nil || s.sandboxConfig == nil {
		return
	}
	if s.logOffsets == nil {
		s.logOffsets = map[string]int64{}
	}
	for _, c := range s.containers {
		if c.id != "" && c.log.id != c.id {
			c.log.close()
			c.log = containerLog{id: c.id, path: s.logPath(c)}
			s.followRotatedLogs(c)
		}
		// Lines in a rotated log came first: the current one waits for
		// the runtime to be done with it (milliseconds), so the journal
		// has them in order.
		if !s.forwardRotatedLogs(c) || c.id == "" {
			continue
		}
		if s.forwardContainerLog(c) {
			s.rotateLog(ctx, c)
		}
	}
	// At once: a podshim killed now sends nothing twice.
	s.saveLogOffsets()
}

// containerLog is the log of one container instance, kept open between
// wake-ups: a batch of output costs a stat and a read, not an open and a
// close (docs/benchmarks.md).
type containerLog struct {
	id   string   // the instance
	path string   // its log, in the kubelet's layout
	f    *os.File // nil: not open (yet: the runtime creates it)
}

func (l *containerLog) close() {
	if l.f != nil {
		l.f.Close()
	}
	*l = containerLog{}
}

// rotatedLogWait is how long a rotated log is followed when the runtime's
// close of it cannot be seen: without inotify, or when a podshim restarted
// after the rotation.
const rotatedLogWait = 10 * time.Second

// rotatedLog is a log podshim renamed aside that the runtime may still be
// writing. containerd's ReopenContainerLog returns while the old file's
// writer still holds lines it read from the container (a buffer's worth)
// and closes the file only once it wrote them; CRI-O's conmon closes it at
// once. The log is followed until that close, so those lines reach the
// journal too.
type rotatedLog struct {
	path    string
	f       *os.File
	id      string // the instance that wrote it
	attempt uint32
	at      time.Time // when it was rotated
}

// forwardContainerLog sends what c's current instance wrote since the last
// call, and reports whether it read its log to the end.
func (s *Shim) forwardContainerLog(c *container) bool {
	if c.log.f == nil {
		f, err := os.Open(c.log.path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("open container log", "container", c.spec.Name, "err", err)
			}
			return false
		}
		c.log.f = f
	}
	if err := s.forwardFile(c, c.id, c.attempt, c.log.path, c.log.f); err != nil {
		s.log.Warn("forward container log", "container", c.spec.Name, "path", c.log.path, "err", err)
		return false
	}
	return true
}

// forwardRotatedLogs sends what c's rotated logs hold, closing each the
// runtime is done with, and reports whether none is left.
func (s *Shim) forwardRotatedLogs(c *container) bool {
	for len(c.rotated) > 0 {
		r := c.rotated[0]
		// Asked before the read: a close seen now means the read finds
		// every line the runtime wrote there.
		done := s.logWatch.closed(r.path) || s.cfg.Now().Sub(r.at) >= rotatedLogWait
		if err := s.forwardFile(c, r.id, r.attempt, r.path, r.f); err != nil {
			s.log.Warn("forward container log", "container", c.spec.Name, "path", r.path, "err", err)
			return false
		}
		if !done {
			return false
		}
		// A line the runtime split at the reopen: its start is here, its
		// end in the next log.
		c.carry += s.partialTail(r.path, r.f)
		r.f.Close()
		delete(s.logOffsets, r.path)
		s.logWatch.forget(r.path)
		c.rotated = c.rotated[1:]
	}
	c.rotated = nil
	return true
}

// partialTail is the text of the partial records at the end of f, the
// log at path, after what was forwarded: the start of a line whose end the
// runtime wrote elsewhere.
func (s *Shim) partialTail(path string, f *os.File) string {
	off := s.logOffsets[path]
	rest, err := io.ReadAll(io.NewSectionReader(f, off, 1<<62))
	if err != nil || len(rest) == 0 {
		return ""
	}
	var tail strings.Builder
	for raw := range bytes.Lines(rest) {
		if l, ok := parseCRILog(raw); ok && l.partial {
			tail.WriteString(l.Message)
		}
	}
	return tail.String()
}

// followRotatedLogs takes up the rotated logs of c's current instance that
// an earlier podshim was still following (their offsets were recorded).
func (s *Shim) followRotatedLogs(c *container) {
	prefix := c.log.path + "."
	for path := range s.logOffsets {
		if !strings.HasPrefix(path, prefix) || slices.ContainsFunc(c.rotated, func(r rotatedLog) bool { return r.path == path }) {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			delete(s.logOffsets, path)
			continue
		}
		c.rotated = append(c.rotated, rotatedLog{path: path, f: f, id: c.id, attempt: c.attempt, at: s.cfg.Now()})
	}
	// Their names sort in the order they were rotated.
	slices.SortFunc(c.rotated, func(a, b rotatedLog) int { return strings.Compare(a.path, b.path) })
}

// closeReplacedLogs closes an open log that is no longer the file at its
// path, which the runtime made anew (a ReopenContainerLog podshim did not
// ask for): the next batch follows the new one. Called on reconcile, right
// after forwardLogs read what the old one held.
func (s *Shim) closeReplacedLogs() {
	for _, c := range s.containers {
		if c.log.f == nil {
			continue
		}
		var open, now unix.Stat_t
		if unix.Fstat(int(c.log.f.Fd()), &open) != nil || unix.Stat(c.log.path, &now) != nil ||
			open.Dev != now.Dev || open.Ino != now.Ino {
			c.log.f.Close()
			c.log.f = nil
			delete(s.logOffsets, c.log.path)
		}
	}
}

// dropGoneLogOffsets forgets the offsets of logs that no longer exist
// (older attempts' logs, removed).
func (s *Shim) dropGoneLogOffsets() {
	for path := range s.logOffsets {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !s.followed(path) {
			delete(s.logOffsets, path)
		}
	}
}

// followed reports whether path is a rotated log still followed: it may be
// removed (containerLogMaxFiles) while it is read from the open file.
func (s *Shim) followed(path string) bool {
	for _, c := range s.containers {
		for _, r := range c.rotated {
			if r.path == path {
				return true
			}
		}
	}
	return false
}

// forwardFile sends the complete lines of f, the log at path of c's
// instance id (attempt), after path's recorded offset. A line's start left
// at the end of the log rotated before (c.carry) begins its first line.
func (s *Shim) forwardFile(c *container, id string, attempt uint32, path string, f *os.File) error {
	var st unix.Stat_t // not f.Stat: no allocation for every wake-up
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	off := s.logOffsets[path]
	if st.Size < off {
		off = 0 // truncated
	}
	if st.Size == off {
		// Nothing new, the usual case on a keepalive: no garbage made.
		return nil
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	// One reader for all logs, reused: a new one for every wake-up was
	// most of what an idle podshim allocated (docs/benchmarks.md). A
	// runtime splits longer lines into partial records of 16 KiB.
	if s.logReader == nil {
		s.logReader = bufio.NewReaderSize(f, 16<<10)
	} else {
		s.logReader.Reset(f)
	}
	r := s.logReader
	defer r.Reset(nil)
	var lines joiner
	lines.partial.WriteString(c.carry)
	pending := int64(0) // bytes of partial lines read but not yet sent
	for {
		raw, err := r.ReadBytes('\n')
		if err != nil {
			break // EOF: an unterminated line is read again next time
		}
		off += int64(len(raw))
		line, ok := parseCRILog(raw)
		if !ok {
			s.log.Warn("unparsable container log line", "container", c.spec.Name, "line", strings.TrimSpace(string(raw)))
			continue
		}
		msg, whole := lines.add(line)
		if !whole {
			pending += int64(len(raw))
			continue
		}
		if err := s.cfg.Logs(LogLine{Container: c.spec.Name, ContainerID: id, RestartCount: attempt,
			Stream: line.Stream, Time: line.Time, Message: msg}); err != nil {
			s.logOffsets[path] = off - int64(len(raw)) - pending
			return err
		}
		pending = 0
		c.carry = ""
		s.logOffsets[path] = off
	}
	// A line split over several records whose end is not written yet is
	// sent whole next time.
	s.logOffsets[path] = off - pending
	return nil
}

// rotateLog renames c's log aside once it is past LogMaxSize and asks the
// runtime to reopen it, keeping at most LogMaxFiles files per container, as
// the kubelet's container log manager does. The renamed log is followed
// until the runtime is done with it.
func (s *Shim) rotateLog(ctx context.Context, c *container) {
	path := c.log.path
	// What was just forwarded is (but an unfinished line) the file's size.
	if s.cfg.LogMaxSize <= 0 || s.logOffsets[path] < s.cfg.LogMaxSize {
		return
	}
	rotated := fmt.Sprintf("%s.%s", path, s.cfg.Now().UTC().Format("20060102-150405.000000"))
	// Looked out for before the rename: the close comes under the new name.
	s.logWatch.awaitClose(rotated)
	if err := os.Rename(path, rotated); err != nil {
		s.logWatch.forget(rotated)
		s.log.Warn("rotate container log", "path", path, "err", err)
		return
	}
	if err := s.rt.ReopenContainerLog(ctx, c.id); err != nil {
		// As the kubelet: the runtime still writes to the file, which
		// goes back to be rotated in a later round.
		s.logWatch.forget(rotated)
		s.log.Warn("reopen container log", "container", c.spec.Name, "err", err)
		if err := os.Rename(rotated, path); err != nil {
			s.log.Warn("rename container log back", "path", rotated, "err", err)
		}
		return
	}
	s.logOffsets[rotated] = s.logOffsets[path]
	delete(s.logOffsets, path)
	c.rotated = append(c.rotated, rotatedLog{path: rotated, f: c.log.f, id: c.id, attempt: c.attempt, at: s.cfg.Now()})
	c.log.f = nil // the next batch opens the new one
	s.forwardRotatedLogs(c)

	old, _ := filepath.Glob(path + ".*")
	slices.Sort(old) // timestamps sort in time order
	for len(old) > max(s.cfg.LogMaxFiles-1, 0) {
		if err := os.Remove(old[0]); err != nil {
			s.log.Warn("remove rotated container log", "path", old[0], "err", err)
		}
		old = old[1:]
	}
}

type criLogLine struct {
	Time    time.Time
	Stream  string
	partial bool
	Message string
}

// parseCRILog parses one line of the CRI log format:
// "<RFC3339Nano> <stdout|stderr> <F|P> <message>\n".
func parseCRILog(raw []byte) (criLogLine, bool) {
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	ts, rest, ok := bytes.Cut(raw, []byte(" "))
	if !ok {
		return criLogLine{}, false
	}
	stream, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return criLogLine{}, false
	}
	tag, msg, _ := bytes.Cut(rest, []byte(" "))
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return criLogLine{}, false
	}
	line := criLogLine{Time: t, partial: bytes.HasPrefix(tag, []byte("P")), Message: string(msg)}
	switch string(stream) { // no allocation: the constants are used
	case "stdout":
		line.Stream = "stdout"
	case "stderr":
		line.Stream = "stderr"
	default:
		return criLogLine{}, false
	}
	return line, true
}

// ReadCRILog reads a container's log file in the CRI format, joining
// partial lines, for readers without the journal (podunit logs falls back
// to it). Unparsable lines are skipped.
func ReadCRILog(path string) ([]LogLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []LogLine
	var lines joiner
	for _, raw := range bytes.SplitAfter(b, []byte("\n")) {
		if !bytes.HasSuffix(raw, []byte("\n")) {
			break // being written
		}
		line, ok := parseCRILog(raw)
		if !ok {
			continue
		}
		if msg, whole := lines.add(line); whole {
			out = append(out, LogLine{Stream: line.Stream, Time: line.Time, Message: msg})
		}
	}
	return out, nil
}

// joiner puts back together a line the runtime split into partial records.
type joiner struct{ partial strings.Builder }

// add takes the next record and returns the whole line once its last
// record came.
func (j *joiner) add(l criLogLine) (msg string, whole bool) {
	if l.partial {
		j.partial.WriteString(l.Message)
		return "", false
	}
	if j.partial.Len() == 0 {
		return l.Message, true // the usual case: no copy
	}
	j.partial.WriteString(l.Message)
	msg = j.partial.String()
	j.partial.Reset()
	return msg, true
}
