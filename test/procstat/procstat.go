// Package procstat reads what the benchmarks and the load suite report of
// a process from /proc: its private memory and its CPU time.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Private is a process's private memory in KiB, from smaps_rollup: Dirty
// (what podunit's memory target counts) and Clean (pages of its binary that
// only it touched: the kernel can drop them, but they are its own).
type Private struct{ Dirty, Clean int }

// ReadPrivate reads pid's private memory.
func ReadPrivate(pid int) (Private, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return Private{}, err
	}
	var m Private
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "Private_Dirty:":
			m.Dirty = v
		case "Private_Clean:":
			m.Clean = v
		}
	}
	return m, nil
}

// Ticks is pid's CPU time (utime+stime, its threads included) in clock
// ticks of 10 ms; with children, that of its children it has waited for
// (cutime+cstime) instead.
func Ticks(pid int, children bool) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// After the command, which may hold spaces and parentheses.
	f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
	i := 11 // utime, stime: fields 14 and 15 of stat
	if children {
		i = 13 // cutime, cstime: fields 16 and 17
	}
	u, _ := strconv.ParseInt(f[i], 10, 64)
	s, _ := strconv.ParseInt(f[i+1], 10, 64)
	return u + s, nil
}

// Named lists the processes whose command name is name.
func Named(name string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(b)) == name {
			pids = append(pids, pid)
		}
	}
	return pids
}
