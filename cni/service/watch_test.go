package service

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// Changes in a watched directory, and in one made after the start, are
// seen within the settle time, not at the next resync.
func TestWatcher(t *testing.T) {
	root := t.TempDir()
	table, pods := filepath.Join(root, "services"), filepath.Join(root, "pods")
	if err := os.Mkdir(table, 0o755); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	w := &Watcher{Dirs: []string{table, pods}, Changed: func(context.Context) { calls.Add(1) }, Resync: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	wait := func(what string, n int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for calls.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d calls, want %d", what, calls.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait("at the start", 1)
	os.WriteFile(filepath.Join(table, "services.json"), []byte("[]"), 0o644)
	wait("after the table changed", 2)
	if err := os.Mkdir(pods, 0o755); err != nil {
		t.Fatal(err)
	}
	wait("once the pods' directory appeared", 3)
	os.WriteFile(filepath.Join(pods, "default_web.json"), []byte("{}"), 0o644)
	wait("after a pod's state changed", 4)
}
