package podshim

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// podshim sleeps until something happens: the kernel tells it when a
// container's process exits (a pidfd becomes readable) and when a container
// writes to its log (inotify), so an idle pod costs no CPU. The runtime is
// polled only where no event source is available (a runtime that does not
// report container PIDs), and on every keepalive as a safety net.

// exitWatch is a container process's pidfd, watched by the Go runtime's
// poller.
type exitWatch struct {
	file  *os.File
	fired atomic.Bool // the process exited; the runtime may not know yet
}

// watchExit calls wake when process pid exits. A process that is already
// gone fires at once.
func watchExit(pid int, wake func()) (*exitWatch, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	w := &exitWatch{file: os.NewFile(uintptr(fd), "pidfd")}
	rc, err := w.file.SyscallConn()
	if err != nil {
		w.file.Close()
		return nil, err
	}
	go func() {
		// Read calls back until the callback returns true, waiting for
		// the pidfd to be readable (the process exited) in between.
		err := rc.Read(func(fd uintptr) bool {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, _ := unix.Poll(fds, 0)
			return n > 0
		})
		if err == nil {
			w.fired.Store(true)
			wake()
		}
	}()
	return w, nil
}

// stop ends the watch; it does not fire afterwards.
func (w *exitWatch) stop() {
	if w != nil {
		w.file.Close()
	}
}

// containerPID is the PID of a running container's first process, from the
// runtime's verbose status (containerd and CRI-O report it); 0 if unknown.
func (s *Shim) containerPID(ctx context.Context, id string) int {
	st, err := s.rt.ContainerStatus(ctx, id, true)
	if err != nil {
		return 0
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if json.Unmarshal([]byte(st.GetInfo()["info"]), &info) != nil {
		return 0
	}
	return info.Pid
}

// watchContainer starts watching c's current instance for its exit.
func (s *Shim) watchContainer(ctx context.Context, c *container) {
	if c.exitWatch != nil && c.watchedID == c.id {
		return
	}
	c.exitWatch.stop()
	c.exitWatch, c.watchedID = nil, c.id
	pid := s.containerPID(ctx, c.id)
	if pid <= 0 {
		return // polled instead
	}
	w, err := watchExit(pid, s.wakeUp)
	if err != nil {
		s.log.Debug("cannot watch container process; polling it", "container", c.spec.Name, "pid", pid, "err", err)
		return
	}
	c.exitWatch = w
}

// logWatch tells the main loop that a container wrote to its log: an
// inotify instance on the containers' log directories, read in the Go
// runtime's poller. That an event came is what matters, but for one kind:
// the runtime closing a log podshim rotated, which says it wrote its last
// line there (see rotatedLog).
// (fsnotify's reader keeps a 64 KiB event buffer on its goroutine's stack,
// which grows to 128 KiB: in a process that runs once per pod, that was a
// twelfth of its memory; docs/benchmarks.md.)
type logWatch struct {
	fd      int
	f       *os.File
	written chan struct{}
	dirs    map[string]bool

	mu     sync.Mutex
	wds    map[int32]string // watch descriptor → directory
	closes map[string]bool  // logs whose close is awaited → closed yet
}

func newLogWatch() (*logWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	// Non-blocking, so reads wait in the poller; f.Fd() would undo that.
	lw := &logWatch{fd: fd, f: os.NewFile(uintptr(fd), "inotify"), written: make(chan struct{}, 1),
		dirs: map[string]bool{}, wds: map[int32]string{}, closes: map[string]bool{}}
	go func() {
		// Room for many events, and at least one with the longest name.
		buf := make([]byte, 4096)
		for {
			n, err := lw.f.Read(buf)
			if err != nil {
				return // closed
			}
			lw.noteCloses(buf[:n])
			select {
			case lw.written <- struct{}{}:
			default:
			}
		}
	}()
	return lw, nil
}

// noteCloses records, of the events in b, the closes of awaited logs by a
// writer. Nothing is made unless a close is awaited.
func (lw *logWatch) noteCloses(b []byte) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if len(lw.closes) == 0 {
		return
	}
	for len(b) >= unix.SizeofInotifyEvent {
		wd := int32(binary.NativeEndian.Uint32(b[0:]))
		mask := binary.NativeEndian.Uint32(b[4:])
		end := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(b[12:]))
		if end > len(b) {
			return
		}
		if mask&unix.IN_CLOSE_WRITE != 0 {
			name := string(bytes.TrimRight(b[unix.SizeofInotifyEvent:end], "\x00"))
			path := filepath.Join(lw.wds[wd], name)
			if _, awaited := lw.closes[path]; awaited {
				lw.closes[path] = true
			}
		}
		b = b[end:]
	}
}

// add watches a container's log directory (made by the runtime when the
// container is created).
func (lw *logWatch) add(dir string) {
	if lw == nil || lw.dirs[dir] {
		return
	}
	wd, err := unix.InotifyAddWatch(lw.fd, dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE)
	if err != nil {
		return
	}
	lw.dirs[dir] = true
	lw.mu.Lock()
	lw.wds[int32(wd)] = dir
	lw.mu.Unlock()
	// What was written before the watch began is read now.
	select {
	case lw.written <- struct{}{}:
	default:
	}
}

// awaitClose starts looking out for a writer's close of the log at path
// (the name it will have then). Without a watch, nothing is seen.
func (lw *logWatch) awaitClose(path string) {
	if lw == nil {
		return
	}
	lw.mu.Lock()
	lw.closes[path] = false
	lw.mu.Unlock()
}

// closed reports whether a writer closed the log at path since awaitClose.
func (lw *logWatch) closed(path string) bool {
	if lw == nil {
		return false
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.closes[path]
}

// forget stops looking out for path's close.
func (lw *logWatch) forget(path string) {
	if lw == nil {
		return
	}
	lw.mu.Lock()
	delete(lw.closes, path)
	lw.mu.Unlock()
}

func (lw *logWatch) close() {
	if lw != nil {
		lw.f.Close()
	}
}

// writtenC is the channel that receives a value after a log was written;
// nil (never ready) without a watch.
func (lw *logWatch) writtenC() <-chan struct{} {
	if lw == nil {
		return nil
	}
	return lw.written
}

func (s *Shim) watchLogs(c *container) {
	if s.logWatch != nil && s.sandboxConfig != nil {
		s.logWatch.add(filepath.Join(s.sandboxConfig.LogDirectory, c.spec.Name))
	}
}
