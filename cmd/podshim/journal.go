package main

import (
	"encoding/binary"
	"errors"
	"maps"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/journal"
	corev1 "k8s.io/api/core/v1"

	"github.com/podunit/podunit/podshim"
)

// journalSocket is where journald takes entries in its native protocol.
const journalSocket = "/run/systemd/journal/socket"

// journalWriter sends container output to journald over its native protocol.
// podshim runs in the pod's unit, so journald files every line under that
// unit: `journalctl -u pod-web` shows the pod, and the fields select a
// container (`journalctl -u pod-web CONTAINER_NAME=nginx`) or a stream.
// stderr is logged at priority err, stdout at info, as Docker's journald
// driver does.
//
// Each line is one datagram, built in a buffer the writer reuses, with the
// pod's fields encoded once: go-systemd's journal.Send builds a map and a
// buffer for every line, and for a container writing ten lines a second
// that garbage grew podshim's heap to its collector's 4 MB minimum within a
// minute (docs/benchmarks.md). An entry too large for a datagram goes through
// journal.Send, which passes it in a file.
type journalWriter struct {
	path    string
	conn    *net.UnixConn
	podVars map[string]string // POD_NAME, POD_NAMESPACE, POD_UID
	pod     []byte            // the same, encoded
	buf     []byte
}

func newJournalWriter(path string, pod *corev1.Pod) *journalWriter {
	w := &journalWriter{path: path, podVars: map[string]string{
		"POD_NAME":      pod.Name,
		"POD_NAMESPACE": pod.Namespace,
		"POD_UID":       string(pod.UID),
	}}
	for _, k := range []string{"POD_NAME", "POD_NAMESPACE", "POD_UID"} {
		w.pod = appendJournalField(w.pod, k, w.podVars[k])
	}
	return w
}

// criTimestamp is how CONTAINER_TIMESTAMP is written: the runtime's time
// of the line, in UTC with nanoseconds.
const criTimestamp = "2006-01-02T15:04:05.000000000Z"

// send is the podshim.LogSink.
func (w *journalWriter) send(l podshim.LogLine) error {
	prio := journal.PriInfo
	if l.Stream == "stderr" {
		prio = journal.PriErr
	}
	b := w.buf[:0]
	b = appendJournalField(b, "MESSAGE", l.Message)
	b = append(b, "PRIORITY="...)
	b = strconv.AppendInt(b, int64(prio), 10)
	b = append(b, '\n')
	b = appendJournalField(b, "SYSLOG_IDENTIFIER", l.Container)
	b = appendJournalField(b, "CONTAINER_NAME", l.Container)
	b = appendJournalField(b, "CONTAINER_ID", l.ContainerID)
	b = append(b, "CONTAINER_RESTART_COUNT="...)
	b = strconv.AppendUint(b, uint64(l.RestartCount), 10)
	b = append(b, '\n')
	b = append(b, w.pod...)
	b = appendJournalField(b, "STREAM", l.Stream)
	b = append(b, "CONTAINER_TIMESTAMP="...)
	b = l.Time.UTC().AppendFormat(b, criTimestamp)
	b = append(b, '\n')
	w.buf = b

	err := w.write(b)
	if err != nil && !isTooLarge(err) && w.conn != nil {
		// journald restarted: its socket is a new one.
		w.conn.Close()
		w.conn = nil
		err = w.write(b)
	}
	if isTooLarge(err) {
		vars := map[string]string{
			"SYSLOG_IDENTIFIER":       l.Container,
			"CONTAINER_NAME":          l.Container,
			"CONTAINER_ID":            l.ContainerID,
			"CONTAINER_RESTART_COUNT": strconv.FormatUint(uint64(l.RestartCount), 10),
			"STREAM":                  l.Stream,
			"CONTAINER_TIMESTAMP":     l.Time.UTC().Format(criTimestamp),
		}
		maps.Copy(vars, w.podVars)
		return journal.Send(l.Message, prio, vars)
	}
	return err
}

func (w *journalWriter) write(b []byte) error {
	if w.conn == nil {
		conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: w.path, Net: "unixgram"})
		if err != nil {
			return err
		}
		w.conn = conn
	}
	_, err := w.conn.Write(b)
	return err
}

func isTooLarge(err error) bool {
	return errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, syscall.ENOBUFS)
}

// appendJournalField appends one field in journald's native format: KEY=value
// and a newline, or, for a value with a newline in it, the key, a newline,
// the value's length as 64-bit little endian, the value and a newline.
func appendJournalField(b []byte, key, value string) []byte {
	b = append(b, key...)
	if !strings.ContainsRune(value, '\n') {
		b = append(b, '=')
		b = append(b, value...)
		return append(b, '\n')
	}
	b = append(b, '\n')
	b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
	b = append(b, value...)
	return append(b, '\n')
}
