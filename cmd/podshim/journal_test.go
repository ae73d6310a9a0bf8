package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/podshim"
)

// listenJournal is a stand-in for journald's socket at path.
func listenJournal(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// readEntry reads one datagram and decodes journald's native format.
func readEntry(t *testing.T, l *net.UnixConn) map[string]string {
	t.Helper()
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1<<16)
	n, err := l.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	b := buf[:n]
	fields := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		line := b[:nl]
		if eq := bytes.IndexByte(line, '='); eq >= 0 {
			fields[string(line[:eq])] = string(line[eq+1:])
			b = b[nl+1:]
			continue
		}
		size := binary.LittleEndian.Uint64(b[nl+1:])
		value := b[nl+9 : nl+9+int(size)]
		if b[nl+9+int(size)] != '\n' {
			t.Fatalf("binary field %s not followed by a newline", line)
		}
		fields[string(line)] = string(value)
		b = b[nl+10+int(size):]
	}
	return fields
}

func TestJournalWriterFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socket")
	l := listenJournal(t, path)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "edge", UID: "u-1"}}
	w := newJournalWriter(path, pod)
	at := time.Date(2026, 11, 23, 10, 0, 0, 5, time.FixedZone("x", 3600))

	lines := []podshim.LogLine{
		{Container: "nginx", ContainerID: "c1", RestartCount: 2, Stream: "stderr", Time: at, Message: "boom"},
		// A message with a newline takes the binary form.
		{Container: "nginx", ContainerID: "c1", Stream: "stdout", Time: at, Message: "two\nlines"},
	}
	for _, line := range lines {
		if err := w.send(line); err != nil {
			t.Fatal(err)
		}
	}
	got := readEntry(t, l)
	for k, v := range map[string]string{
		"MESSAGE": "boom", "PRIORITY": "3", "SYSLOG_IDENTIFIER": "nginx", "CONTAINER_NAME": "nginx",
		"CONTAINER_ID": "c1", "CONTAINER_RESTART_COUNT": "2", "POD_NAME": "web", "POD_NAMESPACE": "edge",
		"POD_UID": "u-1", "STREAM": "stderr", "CONTAINER_TIMESTAMP": "2026-11-23T09:00:00.000000005Z",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	got = readEntry(t, l)
	if got["MESSAGE"] != "two\nlines" || got["PRIORITY"] != "6" || got["POD_NAME"] != "web" {
		t.Errorf("second entry: %q", got)
	}
}

// TestJournalWriterReconnects: after journald restarts (a new socket at
// the same path), lines keep arriving.
func TestJournalWriterReconnects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "socket")
	l := listenJournal(t, path)
	w := newJournalWriter(path, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}})
	line := podshim.LogLine{Container: "c", Stream: "stdout", Time: time.Now(), Message: "first"}
	if err := w.send(line); err != nil {
		t.Fatal(err)
	}
	readEntry(t, l)
	l.Close()
	os.Remove(path)
	l = listenJournal(t, path)
	line.Message = "after the restart"
	if err := w.send(line); err != nil {
		t.Fatal(err)
	}
	if got := readEntry(t, l); got["MESSAGE"] != "after the restart" {
		t.Errorf("got %q", got)
	}
}

func BenchmarkJournalWriter(b *testing.B) {
	path := filepath.Join(b.TempDir(), "socket")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		buf := make([]byte, 1<<16)
		for {
			if _, err := l.Read(buf); err != nil {
				return
			}
		}
	}()
	w := newJournalWriter(path, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u"}})
	line := podshim.LogLine{Container: "app", ContainerID: "0123456789abcdef", Stream: "stdout", Time: time.Now(), Message: "GET /index.html 200 512 bytes"}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.send(line); err != nil {
			b.Fatal(err)
		}
	}
}
