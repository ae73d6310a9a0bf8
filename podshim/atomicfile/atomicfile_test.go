package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// A write replaces the file with the new content and permissions, makes
// its directory, and leaves no temporary file; a failed one leaves the old
// file as it was.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "state.json")
	for _, write := range []func(string, []byte, os.FileMode) error{Write, WriteSync} {
		if err := write(path, []byte("one"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := write(path, []byte("two"), 0o640); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if err != nil || string(b) != "two" || fi.Mode().Perm() != 0o640 {
			t.Errorf("content %q, mode %v, %v", b, fi.Mode(), err)
		}
		if left, _ := os.ReadDir(filepath.Dir(path)); len(left) != 1 {
			t.Errorf("files left: %v", left)
		}
	}
	// The target is a directory: the rename fails, the temporary file goes.
	if err := Write(filepath.Join(dir, "sub"), []byte("x"), 0o644); err == nil {
		t.Error("replaced a directory")
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("files left after a failed write: %v", left)
	}
	f, err := Create(path, []byte("abc"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("xyz"), 0)
	f.Close()
	if b, _ := os.ReadFile(path); string(b) != "xyz" {
		t.Errorf("rewritten in place: %q", b)
	}
}
