package engine

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/podunit/podunit/generator"
)

// quietAlready tells whether the directories can be read at once, without
// waiting for them to hold still (settle): nothing in them is a file on
// its way, that is no entry has a name editors and tools give their
// temporary and backup files (generator.Transient: an editor's save
// renames the manifest away to one, so that the manifest is missing for a
// moment), and no regular file is open for writing by anyone. The common
// change, one manifest written or removed, is then read as soon as the sync
// runs. What cannot be told (a file system without leases, an unreadable
// entry) is not quiet.
func quietAlready(dirs ...string) bool {
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false
		}
		for _, e := range entries {
			if generator.Transient(e.Name()) {
				return false
			}
			info, err := os.Stat(filepath.Join(dir, e.Name())) // follows symlinks
			if err != nil {
				return false
			}
			if info.Mode().IsRegular() && openForWriting(filepath.Join(dir, e.Name())) {
				return false
			}
		}
	}
	return true
}

// openForWriting tells whether a regular file is open for writing by any
// process, or whether that cannot be told: a read lease is refused
// (EAGAIN) while anyone has the file open for writing. The lease is let go
// at once; a writer opening the file meanwhile waits the microseconds
// until then. Taking it needs the file's owner or CAP_LEASE (the sync runs
// as root).
func openForWriting(path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return true
	}
	defer unix.Close(fd)
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_RDLCK); err != nil {
		return true
	}
	_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK)
	return false
}

// monotonicMicros is CLOCK_MONOTONIC in microseconds, the clock of
// systemd's *TimestampMonotonic: the anchor of a sync's timings line.
func monotonicMicros() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return ts.Nano() / 1000
}
