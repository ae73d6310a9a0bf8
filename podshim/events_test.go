package podshim

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A process's exit wakes the watcher without polling; stopping a watch
// keeps it quiet.
func TestWatchExitFiresOnExit(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	woke := make(chan struct{}, 1)
	w, err := watchExit(cmd.Process.Pid, func() { woke <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	select {
	case <-woke:
		t.Fatal("woke while the process runs")
	case <-time.After(100 * time.Millisecond):
	}
	cmd.Process.Kill()
	cmd.Wait()
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up after the process exited")
	}
	if !w.fired.Load() {
		t.Error("fired not set")
	}

	other := exec.Command("sleep", "60")
	other.Start()
	quiet, err := watchExit(other.Process.Pid, func() { woke <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	quiet.stop()
	other.Process.Kill()
	other.Wait()
	select {
	case <-woke:
		t.Error("a stopped watch fired")
	case <-time.After(200 * time.Millisecond):
	}
}

// An idle pod whose containers are watched sleeps until its keepalive;
// restarts due and unwatched containers bring the next check forward.
func TestNextCheckSleepsWhenIdle(t *testing.T) {
	s := newShim(t, testPod(), newFakeCRI(), &notes{})
	s.cfg.PollInterval = time.Second
	now := time.Now()
	keepalive := now.Add(30 * time.Second)
	c := s.containers[0]
	c.state = runtimeapi.ContainerState_CONTAINER_RUNNING
	c.exitWatch = &exitWatch{}
	if got := s.nextCheck(now, keepalive); !got.Equal(keepalive) {
		t.Errorf("idle: next check in %s, want at the keepalive", got.Sub(now))
	}
	c.exitWatch.fired.Store(true) // exited, the runtime does not show it yet
	if got := s.nextCheck(now, keepalive); got.Sub(now) != time.Second {
		t.Errorf("exit seen: next check in %s, want the poll interval", got.Sub(now))
	}
	c.exitWatch = nil // not watchable
	if got := s.nextCheck(now, keepalive); got.Sub(now) != time.Second {
		t.Errorf("unwatched: next check in %s, want the poll interval", got.Sub(now))
	}
	c.state = runtimeapi.ContainerState_CONTAINER_EXITED
	c.restartAt = now.Add(10 * time.Second)
	if got := s.nextCheck(now, keepalive); got.Sub(now) != 10*time.Second {
		t.Errorf("back-off: next check in %s, want when the restart is due", got.Sub(now))
	}
}

func TestLogWatchSignalsWrites(t *testing.T) {
	lw, err := newLogWatch()
	if err != nil {
		t.Fatal(err)
	}
	defer lw.close()
	dir := t.TempDir()
	lw.add(dir)
	wait := func(what string) {
		t.Helper()
		select {
		case <-lw.writtenC():
		case <-time.After(5 * time.Second):
			t.Fatalf("no signal after %s", what)
		}
	}
	wait("the watch began") // what was written before it is read at once
	os.WriteFile(filepath.Join(dir, "0.log"), []byte("line\n"), 0o644)
	wait("a new log file")
	f, _ := os.OpenFile(filepath.Join(dir, "0.log"), os.O_APPEND|os.O_WRONLY, 0)
	time.Sleep(50 * time.Millisecond)
	for len(lw.writtenC()) > 0 {
		<-lw.writtenC()
	}
	f.WriteString("more\n")
	f.Close()
	wait("a write to the log")
}
