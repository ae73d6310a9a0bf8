// Package atomicfile replaces files so that a reader, or the next boot,
// finds the old content or the new, never a part of either: the data goes
// to a temporary file of a unique name in the same directory, which is
// renamed over the target. It is podunit's one way of writing a file that
// another process reads: spec files, state files, the manifest cache, Job
// records, manifests written by `podunit apply`.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data, with permissions perm, making its
// directory (0755) when missing. A crash of the writer leaves the old
// file. After a power cut the file may be the old one or the new one; use
// WriteSync where it must be the new one.
func Write(path string, data []byte, perm fs.FileMode) error {
	f, err := write(path, data, perm, false)
	if err != nil {
		return err
	}
	return f.Close()
}

// WriteSync is Write, with the data and the rename on disk when it
// returns: what must survive a power cut (a completed Job's record, the
// manifest cache a box boots from offline, a manifest `podunit apply`
// wrote).
func WriteSync(path string, data []byte, perm fs.FileMode) error {
	f, err := write(path, data, perm, true)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// Create is Write, and returns the new file open for writing, for one
// rewritten in place while its length stays the same (podshim's log
// offsets).
func Create(path string, data []byte, perm fs.FileMode) (*os.File, error) {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm fs.FileMode, sync bool) (*os.File, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, err
	}
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil && sync {
		err = tmp.Sync()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return tmp, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
