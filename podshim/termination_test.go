package podshim

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The termination message is the container's file; under
// FallbackToLogsOnError, after a failure with an empty file, the tail of its
// output (partial lines joined, at most 80 lines and 2048 bytes), as the
// kubelet reports it.
func TestTerminationMessage(t *testing.T) {
	s := newShim(t, testPod(), newFakeCRI(), &notes{})
	c := &s.pod.Spec.Containers[0]
	cc, release, err := s.containerConfig(context.Background(), c, "busybox:1", 2)
	defer release()
	if err != nil {
		t.Fatal(err)
	}
	m := cc.Mounts[len(cc.Mounts)-1]
	if m.ContainerPath != "/dev/termination-log" {
		t.Fatalf("mount %+v", m)
	}
	if fi, err := os.Stat(m.HostPath); err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("the termination log on the host: %v %v", fi, err)
	}
	log := filepath.Join(t.TempDir(), "2.log")
	var b strings.Builder
	for i := range 100 {
		b.WriteString("2026-12-02T03:00:00.000000000Z stdout F line " + string(rune('a'+i%26)) + "\n")
	}
	b.WriteString("2026-12-02T03:00:00.000000000Z stderr P partial \n2026-12-02T03:00:00.000000000Z stderr F end\n")
	os.WriteFile(log, []byte(b.String()), 0o644)

	if msg := s.terminationMessage(c, 2, 1, log); msg != "" {
		t.Errorf("policy File, empty file: %q", msg)
	}
	c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	msg := s.terminationMessage(c, 2, 1, log)
	lines := strings.Split(msg, "\n")
	if len(lines) != 80 || lines[79] != "partial end" || len(msg) > 2048 {
		t.Errorf("fallback: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	if msg := s.terminationMessage(c, 2, 0, log); msg != "" {
		t.Errorf("fallback after success: %q", msg)
	}
	os.WriteFile(m.HostPath, []byte("bye"), 0o666)
	if msg := s.terminationMessage(c, 2, 1, log); msg != "bye" {
		t.Errorf("the file wins: %q", msg)
	}
}
