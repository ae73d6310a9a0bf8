// Package hugepages keeps a small, long-lived process off transparent huge
// pages on kernels that hand them to every process.
//
// With /sys/kernel/mm/transparent_hugepage/enabled at "always" (Debian 13's
// kernel), the kernel backs an anonymous mapping with 2 MiB pages as soon as
// it is touched: a Go process whose heap is a few hundred KiB holds 2–6 MiB
// (docs/benchmarks.md, "Why podshim is larger in the VM"). GODEBUG's
// disablethp makes Go's runtime advise MADV_NOHUGEPAGE, but only for what
// it maps after reading GODEBUG: the first heap chunk, mapped before, stays
// a huge page. PR_SET_THP_DISABLE holds for the whole process and across
// execve(2), so Off sets it and runs the program again: the new image maps
// everything under it. Elsewhere ("madvise", "never") nothing is done.
package hugepages

import (
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ModePath is where the kernel says when it gives transparent huge pages.
const ModePath = "/sys/kernel/mm/transparent_hugepage/enabled"

// Off makes sure the process runs with transparent huge pages disabled
// where the kernel's mode is "always": it sets PR_SET_THP_DISABLE and
// executes its binary again, by its path (so that its name, what ps and
// pgrep show, stays the same: an exec of /proc/self/exe would name it
// "exe"), with the same arguments and environment. It returns only when no
// re-exec is needed or it failed; after a failed exec, the mappings made
// from then on still get no huge pages.
func Off() error {
	return off(readMode(ModePath))
}

func off(mode string) error {
	if !needed(mode, thpDisabled()) {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl PR_SET_THP_DISABLE", err)
	}
	path, err := os.Executable()
	if err != nil {
		return err
	}
	return os.NewSyscallError("execve "+path, syscall.Exec(path, os.Args, os.Environ()))
}

// needed is whether a process must start over without huge pages: the
// kernel gives them to every process (mode "always"), and this one has
// not disabled them yet (it has after the re-exec: the flag is inherited).
func needed(mode string, disabled bool) bool {
	return mode == "always" && !disabled
}

// readMode is the selected mode in the kernel's list ("always [madvise]
// never" → "madvise"); empty when the kernel has no transparent huge pages.
func readMode(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return selected(string(b))
}

func selected(list string) string {
	for _, f := range strings.Fields(list) {
		if len(f) > 2 && f[0] == '[' && f[len(f)-1] == ']' {
			return f[1 : len(f)-1]
		}
	}
	return ""
}

// thpDisabled is whether PR_SET_THP_DISABLE is set for this process.
func thpDisabled() bool {
	r, _, errno := unix.Syscall6(unix.SYS_PRCTL, unix.PR_GET_THP_DISABLE, 0, 0, 0, 0, 0)
	return errno == 0 && r != 0
}
