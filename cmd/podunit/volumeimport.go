package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
)

// Where podman keeps named volumes when run as root: the local driver's
// volume NAME is the directory VOLUME_PATH/NAME/_data, VOLUME_PATH being
// containers.conf's [engine] volume_path (the last file that sets it: the
// vendor's, the admin's, then the admin's drop-ins), else the graphroot of
// storage.conf (the admin's, else the vendor's) + /volumes.
const podmanGraphRoot = "/var/lib/containers/storage"

func podmanConfigFiles() (containersConfs, storageConfs []string) {
	dropIns, _ := filepath.Glob("/etc/containers/containers.conf.d/*.conf")
	containersConfs = append([]string{"/usr/share/containers/containers.conf", "/etc/containers/containers.conf"}, dropIns...)
	return containersConfs, []string{"/etc/containers/storage.conf", "/usr/share/containers/storage.conf"}
}

func newVolumeImportCommand(root, specDir *string) *cobra.Command {
	var (
		namespace, claim, from string
		force                  bool
	)
	cmd := &cobra.Command{
		Use:   "import NAME",
		Short: "copy a podman named volume's data into a claim's directory",
		Long: `Copies podman's named volume NAME (root's: the directory NAME/_data in
podman's volume path, /var/lib/containers/storage/volumes unless
containers.conf's volume_path or storage.conf's graphroot say otherwise;
--from names another) into the directory of claim CLAIM (default NAME) of
namespace NS (default "default"), so that a pod whose manifest claims it
finds the data podman's pod had. Owners, modes, times, symbolic and hard
links, device nodes and extended attributes are kept where the file system
allows (a count of what could not be is printed). podman need not run, and
nothing of podman's is changed.

It refuses while a pod uses the claim, and when the claim's directory
already holds data, unless --force (the old data is then replaced). The copy
is made beside the claim's directory and put in its place in one step, so a
pod never sees half of it; if a pod starts on the claim during the copy,
nothing is changed. Stop the containers that use podman's volume first: the
copy never follows a symbolic link, and refuses a file that changes under
it.`,
		Example: "  podunit volume import db_data --claim db-data\n  podunit volume import pgdata --namespace shop --from /srv/podman/volumes",
		Args:    exactArgs(1, "the podman volume's NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if claim == "" {
				claim = name
			}
			rename, err := generator.CheckClaimName(claim)
			if err != nil {
				return usageError(cmd, "claim %q: not a valid claim name: %v: name the claim with --claim", claim, err)
			}
			if rename != "" {
				// podman before 5.4 writes the volume's name as the claimName,
				// 5.4 and later a DNS-1123 one.
				fmt.Fprintf(cmd.ErrOrStderr(), "note: claim %q is the claimName podman before 5.4 writes for this volume; podman 5.4 and later write %q: if the manifest says so, import with --claim %s\n", claim, rename, rename)
			}
			if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
				return usageError(cmd, "namespace %q: %s", namespace, strings.Join(errs, "; "))
			}
			if from == "" {
				from = podmanVolumePath(podmanConfigFiles())
			}
			src := filepath.Join(from, name, "_data")
			inUse, err := claimsInUse(cmd.Context(), *specDir)
			if err != nil {
				return err
			}
			if pods := inUse[namespace+"/"+claim]; len(pods) > 0 {
				return fmt.Errorf("%s/%s is used by pod %s: delete the pod's manifest first, or import before the pod starts", namespace, claim, strings.Join(pods, ", "))
			}
			dst := podshim.ClaimDir(*root, namespace, claim)
			// Asked again once the copy is made: a pod may have started
			// on the claim while it was.
			stillFree := func() error {
				inUse, err := claimsInUse(cmd.Context(), *specDir)
				if err != nil {
					return err
				}
				if pods := inUse[namespace+"/"+claim]; len(pods) > 0 {
					return fmt.Errorf("%s/%s came into use by pod %s while its data was copied: nothing was changed; delete the pod's manifest first, or import before the pod starts", namespace, claim, strings.Join(pods, ", "))
				}
				return nil
			}
			st, err := importVolume(src, dst, force, stillFree)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %s to %s: %d files, %d directories, %d bytes\n", src, dst, st.files, st.dirs, st.bytes)
			if st.files == 0 && st.dirs == 1 {
				fmt.Fprintf(cmd.OutOrStdout(), "the volume was empty: a volume made with a device= option (podman volume inspect %s: Options) keeps its data in that device or directory, which podman mounts only while a container uses it\n", name)
			}
			if st.notKept > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%d extended attributes or owners could not be kept on this file system (first: %v)\n", st.notKept, st.firstNotKept)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the claim's namespace")
	cmd.Flags().StringVar(&claim, "claim", "", "the claim's name (default: NAME)")
	cmd.Flags().StringVar(&from, "from", "", "podman's volume path (default: from containers.conf and storage.conf, else /var/lib/containers/storage/volumes)")
	cmd.Flags().BoolVar(&force, "force", false, "replace data the claim's directory already holds")
	return cmd
}

// podmanVolumePath is where root's podman keeps named volumes, given its
// containers.conf files (later ones win) and storage.conf files (the first
// that exists counts).
func podmanVolumePath(containersConfs, storageConfs []string) string {
	path := ""
	for _, f := range containersConfs {
		if v := tomlString(f, "engine", "volume_path"); v != "" {
			path = v
		}
	}
	if path != "" {
		return path
	}
	for _, f := range storageConfs {
		if _, err := os.Stat(f); err != nil {
			continue
		}
		if v := tomlString(f, "storage", "graphroot"); v != "" {
			return filepath.Join(v, "volumes")
		}
		break
	}
	return filepath.Join(podmanGraphRoot, "volumes")
}

// tomlString reads one quoted string key of one table from a TOML file, as
// containers.conf and storage.conf write them; "" when it is not there.
func tomlString(path, table, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var current string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			current = strings.Trim(line, "[] ")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || current != table || strings.TrimSpace(k) != key {
			continue
		}
		if s, err := strconv.Unquote(strings.TrimSpace(v)); err == nil {
			return s
		}
		if v = strings.TrimSpace(v); len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			return v[1 : len(v)-1]
		}
	}
	return ""
}

type copyStats struct {
	files, dirs  int
	bytes        int64
	notKept      int
	firstNotKept error
}

// importVolume copies the tree src into dst: into a fresh directory beside
// dst first, then put in dst's place in one step, once stillFree says no
// pod uses the claim. What is at dst is never half replaced, and what came
// there during the copy is never lost: no dst then, the copy takes its
// name only if nothing else took it meanwhile (RENAME_NOREPLACE); an empty
// one, the copy replaces it only if it is still empty (rename refuses a
// directory that is not); one with data (--force), the two are exchanged
// (RENAME_EXCHANGE) and the old data removed after.
func importVolume(src, dst string, force bool, stillFree func() error) (copyStats, error) {
	var st copyStats
	info, err := os.Lstat(src)
	if err != nil {
		return st, fmt.Errorf("podman volume: %w (podman volume inspect NAME shows its Mountpoint; pass its parent's parent as --from)", err)
	}
	if !info.IsDir() {
		return st, fmt.Errorf("podman volume: %s is not a directory", src)
	}
	old, err := os.ReadDir(dst)
	exists := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return st, err
	case len(old) > 0 && !force:
		return st, fmt.Errorf("%s already holds data (%d entries): --force replaces it", dst, len(old))
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return st, err
	}
	// One import at a time in the namespace's directory (a lock on the
	// directory itself, gone with the process): the copies an import that
	// was killed left beside their claims are then no one's, and go.
	lock, err := unix.Open(filepath.Dir(dst), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return st, err
	}
	defer unix.Close(lock)
	if err := unix.Flock(lock, unix.LOCK_EX); err != nil {
		return st, fmt.Errorf("%s: lock: %w", filepath.Dir(dst), err)
	}
	stale, _ := filepath.Glob(dst + ".import-*")
	for _, d := range stale {
		if err := os.RemoveAll(d); err != nil {
			return st, fmt.Errorf("the copy a cut-short import left, %s: %w", d, err)
		}
	}
	tmp := fmt.Sprintf("%s.import-%d", dst, time.Now().UnixNano())
	c := &treeCopier{stats: &st, links: map[[2]uint64]string{}}
	if err := c.copyRoot(src, tmp); err != nil {
		os.RemoveAll(tmp)
		return st, err
	}
	if stillFree != nil {
		if err := stillFree(); err != nil {
			os.RemoveAll(tmp)
			return st, err
		}
	}
	switch {
	case !exists:
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EEXIST) {
			err = fmt.Errorf("%s appeared while the data was copied (a pod started on the claim?): nothing was changed; run the import again", dst)
		}
	case len(old) == 0:
		// rename(2) itself: it replaces an empty directory, where
		// os.Rename refuses any directory.
		err = unix.Rename(tmp, dst)
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			err = fmt.Errorf("%s was written to while the data was copied (a pod started on the claim?): nothing was changed; --force replaces its data", dst)
		}
	default:
		if err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_EXCHANGE); err == nil {
			// tmp is the old data now.
			if rerr := os.RemoveAll(tmp); rerr != nil {
				return st, fmt.Errorf("the data was imported, but its old data was not removed from %s: %w", tmp, rerr)
			}
			return st, nil
		}
	}
	if errors.Is(err, unix.EINVAL) {
		err = fmt.Errorf("%s: its file system cannot put the copy in place in one step (renameat2 RENAME_NOREPLACE or RENAME_EXCHANGE): %w", filepath.Dir(dst), err)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return st, err
	}
	return st, nil
}

// treeCopier copies a directory tree as cp -a does.
type treeCopier struct {
	stats *copyStats
	links map[[2]uint64]string // (device, inode) of a file with more than one link → its first copy
}

func (c *treeCopier) notKept(err error) {
	c.stats.notKept++
	if c.stats.firstNotKept == nil {
		c.stats.firstNotKept = err
	}
}

// copyRoot copies the directory src to dst. The tree is walked by file
// descriptors, each name opened in its opened parent without following a
// symbolic link: a container still writing to the volume cannot, by
// swapping a directory or a file for a link, make the copy read what lies
// outside it.
func (c *treeCopier) copyRoot(src, dst string) error {
	parent, err := unix.Open(filepath.Dir(src), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Dir(src), err)
	}
	defer unix.Close(parent)
	var st unix.Stat_t
	if err := unix.Fstatat(parent, filepath.Base(src), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("podman volume: %s is not a directory", src)
	}
	return c.copy(parent, filepath.Base(src), src, dst)
}

// copy copies the entry name of the directory open at dirfd (src, for
// messages) to dst.
func (c *treeCopier) copy(dirfd int, name, src, dst string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	mode := st.Mode & unix.S_IFMT
	if mode == unix.S_IFREG && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := c.links[key]; ok {
			c.stats.files++
			return os.Link(first, dst)
		}
		c.links[key] = dst
	}
	perm := st.Mode & 0o7777
	var xattrs []xattr
	switch mode {
	case unix.S_IFDIR:
		f, err := openNoFollow(dirfd, name, src, unix.O_DIRECTORY, &st)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		entries, err := f.ReadDir(-1)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		for _, e := range entries {
			if err := c.copy(int(f.Fd()), e.Name(), filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
		xattrs = c.readXattrs(fdXattrs(int(f.Fd())), src)
		c.stats.dirs++
	case unix.S_IFREG:
		f, err := openNoFollow(dirfd, name, src, unix.O_NONBLOCK, &st)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := copyFile(f, dst, &st)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		xattrs = c.readXattrs(fdXattrs(int(f.Fd())), src)
		c.stats.files++
		c.stats.bytes += n
	case unix.S_IFLNK:
		target, err := readlinkat(dirfd, name)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		xattrs = c.readXattrs(pathXattrs(fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, name)), src)
		c.stats.files++
	case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK, unix.S_IFSOCK:
		if err := unix.Mknod(dst, mode|perm, int(st.Rdev)); err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		xattrs = c.readXattrs(pathXattrs(fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, name)), src)
		c.stats.files++
	default:
		return fmt.Errorf("%s: unknown file type %o", src, mode)
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		c.notKept(fmt.Errorf("%s: owner %d:%d: %w", dst, st.Uid, st.Gid, err))
	}
	// After chown, which removes a file's capabilities (security.capability).
	for _, x := range xattrs {
		if err := unix.Lsetxattr(dst, x.name, x.value, 0); err != nil {
			c.notKept(fmt.Errorf("%s: %s: %w", dst, x.name, err))
		}
	}
	if mode != unix.S_IFLNK {
		// After chown, which clears set-user-ID and set-group-ID bits.
		if err := unix.Chmod(dst, perm); err != nil {
			return err
		}
	}
	times := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		c.notKept(fmt.Errorf("%s: times: %w", dst, err))
	}
	return nil
}

// openNoFollow opens name in the directory dirfd, never through a symbolic
// link, and only if it is still the file st describes (not one put in its
// place since).
func openNoFollow(dirfd int, name, src string, flags int, st *unix.Stat_t) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: changed while it was copied: stop the containers that use the volume, and import again", src)
	}
	return os.NewFile(uintptr(fd), src), nil
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// xattrSource reads a file's extended attributes: through its open
// descriptor, or (a link, a device node) by a path whose last component
// is not followed.
type xattrSource struct {
	list func(buf []byte) (int, error)
	get  func(name string, buf []byte) (int, error)
}

func fdXattrs(fd int) xattrSource {
	return xattrSource{
		list: func(buf []byte) (int, error) { return unix.Flistxattr(fd, buf) },
		get:  func(name string, buf []byte) (int, error) { return unix.Fgetxattr(fd, name, buf) },
	}
}

func pathXattrs(path string) xattrSource {
	return xattrSource{
		list: func(buf []byte) (int, error) { return unix.Llistxattr(path, buf) },
		get:  func(name string, buf []byte) (int, error) { return unix.Lgetxattr(path, name, buf) },
	}
}

type xattr struct {
	name  string
	value []byte
}

// readXattrs reads a file's extended attributes, to be set on its copy
// once its owner is.
func (c *treeCopier) readXattrs(x xattrSource, src string) []xattr {
	size, err := x.list(nil)
	if err != nil || size == 0 {
		return nil
	}
	buf := make([]byte, size)
	if size, err = x.list(buf); err != nil {
		c.notKept(fmt.Errorf("%s: extended attributes: %w", src, err))
		return nil
	}
	var out []xattr
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		n, err := x.get(name, nil)
		if err == nil {
			val := make([]byte, n)
			if n, err = x.get(name, val); err == nil {
				out = append(out, xattr{name, val[:n]})
				continue
			}
		}
		c.notKept(fmt.Errorf("%s: %s: %w", src, name, err))
	}
	return out
}

// copyFile copies the open regular file in, which st described when it
// was looked at, to a new file dst; a file written to meanwhile (its size,
// modification or change time moved) is refused, not copied half old.
func copyFile(in *os.File, dst string, st *unix.Stat_t) (int64, error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	var now unix.Stat_t
	if err := unix.Fstat(int(in.Fd()), &now); err != nil {
		return n, err
	}
	if now.Size != st.Size || now.Mtim != st.Mtim || now.Ctim != st.Ctim {
		return n, errors.New("written to while it was copied: stop the containers that use the volume, and import again")
	}
	return n, nil
}
