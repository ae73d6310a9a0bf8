package service

import (
	"context"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher calls Changed whenever one of Dirs changes (the node's Service
// table, the pods' state files), once a burst of changes held still for
// Settle, and once at the start; it is what the rules and the resolver
// daemons run, each rebuilding its Snapshot in Changed. A directory that
// does not exist yet is waited for. Every Resync, Changed runs anyway:
// what inotify cannot see (a watch overflowed) is caught then.
type Watcher struct {
	Dirs    []string
	Changed func(ctx context.Context)
	// Settle is the quiet time after a change (default 20 ms: a pod's
	// readiness must reach the rules within a second); Resync the period
	// of unconditional rebuilds (default 30 s).
	Settle, Resync time.Duration
}

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	settle, resync := w.Settle, w.Resync
	if settle <= 0 {
		settle = 20 * time.Millisecond
	}
	if resync <= 0 {
		resync = 30 * time.Second
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	watched := map[string]bool{}
	watch := func() {
		for _, d := range w.Dirs {
			if watched[d] {
				continue
			}
			if err := fw.Add(d); err == nil {
				watched[d] = true
			}
		}
	}
	watch()
	w.Changed(ctx)
	tick := time.NewTicker(resync)
	defer tick.Stop()
	// A directory made after the start is found at the next poll.
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	var pending <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if ev.Op&fsnotify.Remove != 0 && watched[ev.Name] {
				delete(watched, ev.Name)
			}
			if pending == nil {
				pending = time.After(settle)
			}
		case <-fw.Errors:
			// An overflow: rebuild from what is there.
			if pending == nil {
				pending = time.After(settle)
			}
		case <-pending:
			pending = nil
			w.Changed(ctx)
		case <-poll.C:
			before := len(watched)
			watch()
			if len(watched) != before {
				w.Changed(ctx)
			}
		case <-tick.C:
			w.Changed(ctx)
		}
	}
}
