package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/podspec"
)

// waitRestartBackoff is podshim's part of the restart back-off on a
// manager without RestartSteps= (systemd before 254, podshim run with
// --restart-backoff): after the n-th automatic restart in a row (systemd's
// NRestarts, which an explicit start sets back to zero) systemd has waited
// RestartSec only, and podshim waits the rest of what systemd 254+ would
// have waited before it does anything, so that a failing podshim is paced
// the same on every systemd. A stop during the wait ends it: Run then
// tears down what the last podshim left.
//
// Only a podshim that follows a failed one asks systemd: one that left
// its pod's state file (killed, hung) or its failure mark (failed before
// the pod was up). A first start asks nothing and waits for nothing.
func waitRestartBackoff(ctx context.Context, log *slog.Logger, notify func(string) error, stateDir, namespace, name string) {
	if !exists(podshim.StatePath(stateDir, namespace, name)) && !exists(podshim.FailedMarkPath(stateDir, namespace, name)) {
		return
	}
	n, err := restarts()
	if err != nil {
		log.Warn("restart back-off not applied: cannot read the unit's restart count from systemd", "err", err)
		return
	}
	wait := podspec.DefaultRestartBackoff.Wait(n)
	if wait <= 0 {
		return
	}
	log.Info("restart back-off", "restarts", n, "wait", wait.Round(time.Millisecond))
	_ = notify(fmt.Sprintf("STATUS=Restart back-off: restart %d after failures, waiting %s\nEXTEND_TIMEOUT_USEC=%d",
		n, wait.Round(time.Second), (wait + podspec.DefaultRestartBackoff.MaxDelay).Microseconds()))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// restarts is systemd's NRestarts of the unit podshim runs in: how many
// automatic restarts came in a row before this start. podshim speaks no
// D-Bus of its own (it stays lean); systemctl asks.
func restarts() (int, error) {
	unit, err := ownUnit()
	if err != nil {
		return 0, err
	}
	out, err := exec.Command("systemctl", "show", "--property=NRestarts", "--value", unit).Output()
	if err != nil {
		return 0, fmt.Errorf("systemctl show %s: %w", unit, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

// ownUnit is the service podshim runs in, from its cgroup (cgroup v2's
// line, or v1's name=systemd hierarchy).
func ownUnit() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	return unitOfCgroup(b)
}

func unitOfCgroup(b []byte) (string, error) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && (f[0] == "0" && f[1] == "" || f[1] == "name=systemd") {
			if unit := path.Base(f[2]); strings.HasSuffix(unit, ".service") {
				return unit, nil
			}
		}
	}
	return "", errors.New("not in a service's cgroup")
}
