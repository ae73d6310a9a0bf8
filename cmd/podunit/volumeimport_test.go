package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// podmanVolume makes a podman-like volume directory NAME/_data under a
// temporary volume path, with a file, a subdirectory, a symbolic link, a
// hard link and modes to keep; it returns the _data directory.
func podmanVolume(t *testing.T) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "db_data", "_data")
	must(t, os.MkdirAll(filepath.Join(data, "sub"), 0o750))
	must(t, os.WriteFile(filepath.Join(data, "token"), []byte("podman's data\n"), 0o640))
	must(t, os.WriteFile(filepath.Join(data, "sub", "run.sh"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Symlink("../token", filepath.Join(data, "sub", "token-link")))
	must(t, os.Link(filepath.Join(data, "token"), filepath.Join(data, "token-hard")))
	return data
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestImportVolumeKeepsTheTree(t *testing.T) {
	src := podmanVolume(t)
	dst := filepath.Join(t.TempDir(), "volumes", "default", "db_data")
	st, err := importVolume(src, dst, false, func() error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "token")); err != nil || string(b) != "podman's data\n" {
		t.Errorf("token: %q %v", b, err)
	}
	for path, want := range map[string]os.FileMode{"token": 0o640, "sub": os.ModeDir | 0o750, "sub/run.sh": 0o755} {
		if fi, err := os.Lstat(filepath.Join(dst, path)); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode(), err, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(dst, "sub", "token-link")); err != nil || target != "../token" {
		t.Errorf("the symbolic link: %q %v", target, err)
	}
	a, _ := os.Stat(filepath.Join(dst, "token"))
	b, _ := os.Stat(filepath.Join(dst, "token-hard"))
	if !os.SameFile(a, b) {
		t.Error("the hard link became two files")
	}
	if st.files != 4 || st.dirs != 2 {
		t.Errorf("counted %d files, %d directories; want 4, 2", st.files, st.dirs)
	}
	if left, _ := filepath.Glob(dst + ".import-*"); len(left) > 0 {
		t.Errorf("left beside the claim: %v", left)
	}
}

func TestImportVolumeRefusesData(t *testing.T) {
	src := podmanVolume(t)
	dst := filepath.Join(t.TempDir(), "db_data")
	must(t, os.MkdirAll(dst, 0o755))
	must(t, os.WriteFile(filepath.Join(dst, "mine"), []byte("the pod's\n"), 0o644))
	if _, err := importVolume(src, dst, false, nil); err == nil || !strings.Contains(err.Error(), "already holds data (1 entries): --force replaces it") {
		t.Fatalf("over data, without --force: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "mine")); err != nil {
		t.Errorf("the claim's data was touched: %v", err)
	}
	// --force: the volume's tree takes the claim's place in one exchange.
	if _, err := importVolume(src, dst, true, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "mine")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old data is still there: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "token")); string(b) != "podman's data\n" {
		t.Errorf("token after --force: %q", b)
	}
	if left, _ := filepath.Glob(dst + ".import-*"); len(left) > 0 {
		t.Errorf("left beside the claim: %v", left)
	}
}

// A pod that starts on the claim while the data is copied: its directory,
// and what it wrote, are kept; the import says why it changed nothing.
func TestImportVolumeNeverOverwritesWhatCameDuringTheCopy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before func(dst string) // the claim's directory when the import starts
		want   string
	}{
		{"no directory, then one", func(string) {}, "appeared while the data was copied"},
		{"empty, then written to", func(dst string) { must(t, os.MkdirAll(dst, 0o755)) }, "was written to while the data was copied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := podmanVolume(t)
			dst := filepath.Join(t.TempDir(), "db_data")
			tc.before(dst)
			podStarted := func() error {
				must(t, os.MkdirAll(dst, 0o755))
				return os.WriteFile(filepath.Join(dst, "pod-wrote"), []byte("x"), 0o644)
			}
			_, err := importVolume(src, dst, false, podStarted)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dst, "pod-wrote")); err != nil {
				t.Errorf("what the pod wrote is gone: %v", err)
			}
			if left, _ := filepath.Glob(dst + ".import-*"); len(left) > 0 {
				t.Errorf("left beside the claim: %v", left)
			}
		})
	}
	// The claim came into use: nothing is placed.
	src := podmanVolume(t)
	dst := filepath.Join(t.TempDir(), "db_data")
	if _, err := importVolume(src, dst, false, func() error { return errors.New("came into use by pod web") }); err == nil {
		t.Fatal("imported into a claim in use")
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the claim's directory was made: %v", err)
	}
}

// A container still writing to the volume swaps a directory for a link to
// the host's /etc between the walk's look and its open: the copy refuses
// it instead of reading /etc.
func TestImportVolumeFollowsNoLinkSwappedIn(t *testing.T) {
	src := podmanVolume(t)
	c := &treeCopier{stats: &copyStats{}, links: map[[2]uint64]string{}}
	parent, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	defer unix.Close(parent)
	var st unix.Stat_t
	must(t, unix.Fstatat(parent, "sub", &st, unix.AT_SYMLINK_NOFOLLOW))
	// The swap, after the look.
	must(t, os.RemoveAll(filepath.Join(src, "sub")))
	must(t, os.Symlink("/etc", filepath.Join(src, "sub")))
	_, err = openNoFollow(parent, "sub", filepath.Join(src, "sub"), unix.O_DIRECTORY, &st)
	if err == nil {
		t.Fatal("opened a directory swapped for a link")
	}
	// And walked whole: the link is copied as a link, /etc not read.
	dst := filepath.Join(t.TempDir(), "copy")
	must(t, c.copyRoot(src, dst))
	if target, err := os.Readlink(filepath.Join(dst, "sub")); err != nil || target != "/etc" {
		t.Errorf("sub: %q %v", target, err)
	}
}

// A claim's directory a pod left empty (it ran once) takes the import.
func TestImportVolumeIntoAnEmptyClaim(t *testing.T) {
	src := podmanVolume(t)
	dst := filepath.Join(t.TempDir(), "db_data")
	must(t, os.MkdirAll(dst, 0o755))
	if _, err := importVolume(src, dst, false, func() error { return nil }); err != nil {
		t.Fatalf("into an empty claim directory: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "token")); string(b) != "podman's data\n" {
		t.Errorf("token: %q", b)
	}
}

// The volume's top swapped for a link to elsewhere: refused.
func TestImportVolumeRefusesALinkAtTheTop(t *testing.T) {
	top := filepath.Join(t.TempDir(), "db_data")
	must(t, os.MkdirAll(top, 0o755))
	must(t, os.Symlink("/etc", filepath.Join(top, "_data")))
	c := &treeCopier{stats: &copyStats{}, links: map[[2]uint64]string{}}
	if err := c.copyRoot(filepath.Join(top, "_data"), filepath.Join(t.TempDir(), "copy")); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("a link at the top: %v", err)
	}
}

// A file's capabilities survive the copy: they are set after its owner,
// whose change removes them.
func TestImportVolumeKeepsCapabilities(t *testing.T) {
	src := podmanVolume(t)
	ping := filepath.Join(src, "ping")
	must(t, os.WriteFile(ping, []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chown(ping, 1000, 1000))
	// vfs_cap_data revision 2, effective, permitted: cap_net_raw (13).
	capNetRaw := []byte{0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if err := unix.Setxattr(ping, "security.capability", capNetRaw, 0); err != nil {
		t.Skipf("no file capabilities here: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "db_data")
	st, err := importVolume(src, dst, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := unix.Getxattr(filepath.Join(dst, "ping"), "security.capability", buf)
	if err != nil || string(buf[:n]) != string(capNetRaw) {
		t.Errorf("the copy's capabilities: %x %v (not kept: %d, %v)", buf[:max(n, 0)], err, st.notKept, st.firstNotKept)
	}
}

// An import killed during its copy leaves the copy beside the claim; the
// next import removes it.
func TestImportVolumeRemovesACopyLeftBehind(t *testing.T) {
	src := podmanVolume(t)
	dst := filepath.Join(t.TempDir(), "db_data")
	left := dst + ".import-12345"
	must(t, os.MkdirAll(filepath.Join(left, "half"), 0o700))
	if _, err := importVolume(src, dst, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the copy left behind is still there: %v", err)
	}
}
