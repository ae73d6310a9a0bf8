package hugepages

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSelected(t *testing.T) {
	for list, want := range map[string]string{
		"[always] madvise never\n": "always",
		"always [madvise] never\n": "madvise",
		"always madvise [never]\n": "never",
		"always madvise never\n":   "",
		"":                         "",
	} {
		if got := selected(list); got != want {
			t.Errorf("selected(%q) = %q, want %q", list, got, want)
		}
	}
}

func TestNeeded(t *testing.T) {
	for _, c := range []struct {
		mode     string
		disabled bool
		want     bool
	}{
		{"always", false, true},
		{"always", true, false}, // after the re-exec: no loop
		{"madvise", false, false},
		{"never", false, false},
		{"", false, false}, // no THP in the kernel
	} {
		if got := needed(c.mode, c.disabled); got != c.want {
			t.Errorf("needed(%q, %v) = %v, want %v", c.mode, c.disabled, got, c.want)
		}
	}
}

func TestReadModeOfAMissingFile(t *testing.T) {
	if got := readMode(filepath.Join(t.TempDir(), "enabled")); got != "" {
		t.Errorf("readMode of a missing file = %q, want \"\"", got)
	}
}

// The re-exec: a child of the test, told the kernel's mode is "always",
// sets the flag and executes itself again; the new image, in the same
// process and under the same name, has the flag and goes on (no second
// exec). The test's own
// process never sets it.
func TestOffExecutesAgainWithTheFlag(t *testing.T) {
	if os.Getenv("HUGEPAGES_CHILD") == "1" {
		comm, _ := os.ReadFile("/proc/self/comm")
		fmt.Printf("pid %d %s disabled %v\n", os.Getpid(), strings.TrimSpace(string(comm)), thpDisabled())
		if err := off("always"); err != nil {
			fmt.Printf("error %v\n", err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestOffExecutesAgainWithTheFlag$")
	cmd.Env = append(os.Environ(), "HUGEPAGES_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The same process, under the same name (ps, pgrep), with the flag.
	pid := cmd.Process.Pid
	comm := filepath.Base(os.Args[0])[:min(15, len(filepath.Base(os.Args[0])))]
	want := fmt.Sprintf("pid %d %s disabled false\npid %d %s disabled true\n", pid, comm, pid, comm)
	if !strings.HasPrefix(string(out), want) {
		t.Fatalf("the child printed\n%s\nwant it to start with\n%s", out, want)
	}
}
