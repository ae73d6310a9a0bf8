package podshim

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseCRILog(t *testing.T) {
	l, ok := parseCRILog([]byte("2026-11-23T10:00:00.123456789Z stderr F oh no: it broke\n"))
	if !ok || l.Stream != "stderr" || l.partial || l.Message != "oh no: it broke" || l.Time.Nanosecond() != 123456789 {
		t.Errorf("parsed %+v, %v", l, ok)
	}
	if l, ok := parseCRILog([]byte("2026-11-23T10:00:00Z stdout P \n")); !ok || !l.partial || l.Message != "" {
		t.Errorf("partial empty line: %+v %v", l, ok)
	}
	for _, bad := range []string{"", "garbage", "2026-11-23T10:00:00Z stdin F x", "yesterday stdout F x"} {
		if _, ok := parseCRILog([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// logShim is a started shim whose log sink collects lines, with its first
// container's log file at the returned path.
func logShim(t testing.TB) (*Shim, *[]LogLine, string) {
	t.Helper()
	var got []LogLine
	s := newShim(t, testPod(), newFakeCRI("busybox:1"), &notes{})
	s.cfg.LogRoot = t.TempDir()
	s.cfg.Logs = func(l LogLine) error { got = append(got, l); return nil }
	if err := s.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	path := s.logPath(s.containers[0])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	return s, &got, path
}

func appendLog(t testing.TB, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		fmt.Fprint(f, l)
	}
}

func messages(lines []LogLine) string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Stream+":"+l.Message)
	}
	return strings.Join(out, "|")
}

func TestForwardLogs(t *testing.T) {
	s, got, path := logShim(t)
	ctx := context.Background()
	appendLog(t, path,
		"2026-11-23T10:00:00Z stdout F hello\n",
		"2026-11-23T10:00:01Z stderr P a long \n",
	)
	s.forwardLogs(ctx)
	if m := messages(*got); m != "stdout:hello" {
		t.Fatalf("forwarded %q", m)
	}
	// The rest of the split line, and a line still being written.
	appendLog(t, path, "2026-11-23T10:00:01Z stderr F line\n", "2026-11-23T10:00:02Z stdout F unfinis")
	s.forwardLogs(ctx)
	if m := messages(*got); m != "stdout:hello|stderr:a long line" {
		t.Fatalf("forwarded %q", m)
	}
	l := (*got)[1]
	if l.Container != "app" || l.RestartCount != 0 || l.ContainerID == "" {
		t.Errorf("line fields: %+v", l)
	}

	// A new podshim does not send anything twice: the offsets are in
	// their own file, recorded after every batch, and the state file (the
	// status server's input) is not rewritten for them.
	state, _ := os.ReadFile(StatePath(s.cfg.StateDir, s.pod.Namespace, s.pod.Name))
	s.saveLogOffsets()
	if now, _ := os.ReadFile(StatePath(s.cfg.StateDir, s.pod.Namespace, s.pod.Name)); string(now) != string(state) {
		t.Error("the state file was rewritten for log offsets")
	}
	var again []LogLine
	s2 := newShim(t, testPod(), s.rt, &notes{})
	s2.cfg.StateDir, s2.cfg.LogRoot = s.cfg.StateDir, s.cfg.LogRoot
	s2.cfg.Logs = func(l LogLine) error { again = append(again, l); return nil }
	if err := s2.start(ctx); err != nil {
		t.Fatal(err)
	}
	appendLog(t, path, "hed\n")
	s2.forwardLogs(ctx)
	if m := messages(again); m != "stdout:unfinished" {
		t.Errorf("after a podshim restart: %q", m)
	}
}

func TestRotateLogs(t *testing.T) {
	s, got, path := logShim(t)
	s.cfg.LogMaxSize = 100
	s.cfg.LogMaxFiles = 2
	clk := &clock{now: time.Unix(1_000_000, 0)}
	s.cfg.Now = clk.Now
	rt := s.rt.(*fakeCRI)
	for i := range 3 {
		appendLog(t, path, strings.Repeat(fmt.Sprintf("2026-11-23T10:00:0%dZ stdout F line %d of forty bytes\n", i, i), 3))
		rt.FakeRuntimeService.Called = nil
		s.forwardLogs(context.Background())
		// Without a log watch, the runtime's close of a rotated log is
		// not seen: it is followed for rotatedLogWait.
		clk.now = clk.now.Add(rotatedLogWait)
		reopened := false
		for _, c := range rt.FakeRuntimeService.Called {
			reopened = reopened || c == "ReopenContainerLog"
		}
		if !reopened {
			t.Fatalf("round %d: a log past LogMaxSize was not rotated", i)
		}
	}
	if len(*got) != 9 {
		t.Errorf("forwarded %d lines, want 9", len(*got))
	}
	rotated, _ := filepath.Glob(path + ".*")
	if len(rotated) != 1 {
		t.Errorf("rotated files kept: %v, want 1 (LogMaxFiles 2 with the current one)", rotated)
	}
}

// lateWriter is a runtime that writes a container's log as containerd
// does: through a file it keeps open, which ReopenContainerLog replaces by a
// new one at the log's path while the old one stays open until its writer
// flushed what it held (the test closes it).
type lateWriter struct {
	*fakeCRI
	path     string
	w, old   *os.File
	reopened int
}

func (r *lateWriter) ReopenContainerLog(ctx context.Context, id string) error {
	if err := r.fakeCRI.ReopenContainerLog(ctx, id); err != nil {
		return err
	}
	f, err := os.OpenFile(r.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	r.old, r.w = r.w, f
	r.reopened++
	return nil
}

func (r *lateWriter) write(t *testing.T, f *os.File, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := fmt.Fprintf(f, "2026-11-23T10:00:00Z stdout F %s\n", l); err != nil {
			t.Fatal(err)
		}
	}
}

// rotatingShim is a started shim with LogMaxSize 100 whose runtime writes
// its container's log as containerd does (lateWriter), with a log watch if
// watch; three lines have been written and forwarded, and the log rotated.
func rotatingShim(t *testing.T, watch bool) (*Shim, *[]LogLine, string, *lateWriter) {
	t.Helper()
	s, got, path := logShim(t)
	s.cfg.LogMaxSize, s.cfg.LogMaxFiles = 100, 2
	if watch {
		lw, err := newLogWatch()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(lw.close)
		s.logWatch = lw
		s.watchLogs(s.containers[0])
	}
	rt := &lateWriter{fakeCRI: s.rt.(*fakeCRI), path: path}
	s.rt = rt
	var err error
	if rt.w, err = os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.w.Close() })
	rt.write(t, rt.w, "one of several lines", "two of several lines", "three of several lines")
	s.forwardLogs(context.Background())
	if rt.reopened != 1 {
		t.Fatalf("a log past LogMaxSize: %d reopens, want 1", rt.reopened)
	}
	return s, got, path, rt
}

// Lines containerd writes to a log after podshim rotated it (its reopen
// returns before the old writer flushed) reach the sink, before any line of
// the new log; the rotated log is let go once the runtime closed it.
func TestRotatedLogFollowedUntilTheRuntimeClosesIt(t *testing.T) {
	s, got, path, rt := rotatingShim(t, true)
	ctx := context.Background()
	lw := s.logWatch
	rotated, _ := filepath.Glob(path + ".*")
	if len(rotated) != 1 {
		t.Fatalf("rotated logs %v", rotated)
	}
	rt.write(t, rt.old, "four, flushed late")
	rt.write(t, rt.w, "five, in the new log")
	s.forwardLogs(ctx)
	if m := messages(*got); !strings.HasSuffix(m, "|stdout:four, flushed late") {
		t.Fatalf("while the runtime still writes the rotated log: %q", m)
	}
	rt.old.Close()
	waitUntil(t, "the runtime's close seen", func() bool { return lw.closed(rotated[0]) })
	s.forwardLogs(ctx)
	want := "stdout:one of several lines|stdout:two of several lines|stdout:three of several lines|stdout:four, flushed late|stdout:five, in the new log"
	if m := messages(*got); m != want {
		t.Errorf("forwarded %q, want %q", m, want)
	}
	if n := len(s.containers[0].rotated); n != 0 {
		t.Errorf("%d rotated logs still followed after the runtime closed them", n)
	}
	if _, ok := s.logOffsets[rotated[0]]; ok {
		t.Error("the rotated log's offset is kept after it was let go")
	}
}

// A line whose start the runtime's old writer flushed as a partial record
// when the reopen closed its pipe, and whose end went to the new log
// (containerd cuts the container's output where its pipe read ended), is
// sent whole.
func TestLineSplitByARotation(t *testing.T) {
	s, got, path, rt := rotatingShim(t, true)
	ctx := context.Background()
	lw := s.logWatch
	rotated, _ := filepath.Glob(path + ".*")
	if rt.reopened != 1 || len(rotated) != 1 {
		t.Fatalf("%d reopens, rotated logs %v", rt.reopened, rotated)
	}
	fmt.Fprint(rt.old, "2026-11-23T10:00:01Z stdout P chatty li\n")
	rt.old.Close()
	fmt.Fprint(rt.w, "2026-11-23T10:00:01Z stdout F ne 1362\n")
	waitUntil(t, "the runtime's close seen", func() bool { return lw.closed(rotated[0]) })
	s.forwardLogs(ctx)
	if m := messages((*got)[3:]); m != "stdout:chatty line 1362" {
		t.Errorf("after the split line: %q", m)
	}
	rt.write(t, rt.w, "next")
	s.forwardLogs(ctx)
	if m := messages((*got)[3:]); m != "stdout:chatty line 1362|stdout:next" {
		t.Errorf("after the split line: %q", m)
	}
}

// A podshim that restarts while a rotated log is followed takes it up again
// from its recorded offset: its late lines are sent, and nothing twice.
func TestRotatedLogFollowedAcrossARestart(t *testing.T) {
	s, got, _, rt := rotatingShim(t, false)
	ctx := context.Background()
	before := len(*got)

	var again []LogLine
	s2 := newShim(t, testPod(), rt, &notes{})
	s2.cfg.StateDir, s2.cfg.LogRoot = s.cfg.StateDir, s.cfg.LogRoot
	s2.cfg.Logs = func(l LogLine) error { again = append(again, l); return nil }
	clk := &clock{now: time.Unix(1_000_000, 0)}
	s2.cfg.Now = clk.Now
	if err := s2.start(ctx); err != nil {
		t.Fatal(err)
	}
	rt.write(t, rt.old, "four, flushed late")
	rt.old.Close()
	rt.write(t, rt.w, "five, in the new log")
	s2.forwardLogs(ctx)
	if m := messages(again); m != "stdout:four, flushed late" {
		t.Errorf("the new podshim, before rotatedLogWait: %q", m)
	}
	clk.now = clk.now.Add(rotatedLogWait)
	s2.forwardLogs(ctx)
	if m := messages(again); m != "stdout:four, flushed late|stdout:five, in the new log" || before != 3 {
		t.Errorf("the new podshim sent %q (the first %d lines)", m, before)
	}
}

// A reopen the runtime refuses puts the log back, as the kubelet does: the
// runtime still writes to it, and it is rotated in a later round.
func TestRotateLogReopenRefused(t *testing.T) {
	s, got, path := logShim(t)
	ctx := context.Background()
	s.cfg.LogMaxSize, s.cfg.LogMaxFiles = 100, 2
	rt := s.rt.(*fakeCRI)
	rt.FakeRuntimeService.InjectError("ReopenContainerLog", fmt.Errorf("container is not running"))
	appendLog(t, path, strings.Repeat("2026-11-23T10:00:00Z stdout F a line of forty bytes or so\n", 3))
	s.forwardLogs(ctx)
	if rotated, _ := filepath.Glob(path + ".*"); len(rotated) != 0 {
		t.Errorf("after a refused reopen: rotated logs %v", rotated)
	}
	appendLog(t, path, "2026-11-23T10:00:01Z stdout F after\n")
	s.forwardLogs(ctx)
	if n := len(*got); n != 4 || (*got)[3].Message != "after" {
		t.Errorf("forwarded %q", messages(*got))
	}
	if rotated, _ := filepath.Glob(path + ".*"); len(rotated) != 1 {
		t.Errorf("the next round: rotated logs %v, want 1", rotated)
	}
}

// A log the runtime made anew at the same path (a reopen podshim did not
// ask for) is followed from the next reconcile on, and the old one's last
// lines are not lost.
func TestForwardLogsFollowsReplacedLog(t *testing.T) {
	s, got, path := logShim(t)
	ctx := context.Background()
	appendLog(t, path, "2026-11-23T10:00:00Z stdout F one\n")
	s.forwardLogs(ctx)
	appendLog(t, path, "2026-11-23T10:00:01Z stdout F two\n")
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	appendLog(t, path, "2026-11-23T10:00:02Z stdout F three\n")
	if err := s.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	s.forwardLogs(ctx)
	if m := messages(*got); m != "stdout:one|stdout:two|stdout:three" {
		t.Errorf("forwarded %q", m)
	}
}

func TestOffsetsFile(t *testing.T) {
	o := offsetsFile{path: filepath.Join(t.TempDir(), "logs", "default_web")}
	read := func() map[string]int64 {
		t.Helper()
		m, err := readLogOffsets(o.path)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if err := o.save(map[string]int64{"/var/log/pods/a/0.log": 7}); err != nil {
		t.Fatal(err)
	}
	first, _ := os.Stat(o.path)
	// Offsets that grew overwrite the file in place, without garbage.
	off := int64(7)
	if n := testing.AllocsPerRun(100, func() {
		off += 1000
		if err := o.save(map[string]int64{"/var/log/pods/a/0.log": off}); err != nil {
			t.Fatal(err)
		}
	}); n > 1 { // the map literal
		t.Errorf("%v allocations a save, want none but the caller's map", n)
	}
	if m := read(); m["/var/log/pods/a/0.log"] != off || len(m) != 1 {
		t.Errorf("read back %v, want offset %d", m, off)
	}
	if now, _ := os.Stat(o.path); !os.SameFile(first, now) {
		t.Error("the file was replaced for new offsets of the same logs")
	}
	// Another log: a new file, atomically.
	want := map[string]int64{"/var/log/pods/a/0.log": off, "/var/log/pods/a/1.log": 3}
	if err := o.save(want); err != nil {
		t.Fatal(err)
	}
	if m := read(); !maps.Equal(m, want) {
		t.Errorf("read back %v, want %v", m, want)
	}
	if st, _ := os.Stat(o.path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(o.path), ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// BenchmarkForwardLogs is what podshim does when a container wrote one
// line: read it, send it, record the new offset.
func BenchmarkForwardLogs(b *testing.B) {
	s, _, path := logShim(b)
	s.cfg.Logs = func(LogLine) error { return nil }
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line := []byte("2026-11-23T10:00:00.123456789Z stdout F line of a container that logs\n")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f.Write(line)
		s.forwardLogs(ctx)
	}
}
