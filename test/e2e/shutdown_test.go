//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/units"
)

// stopTimes are when a pod began and finished stopping since a time, from
// its podshim's journal: "stopping container" and "removed sandbox".
func stopTimes(t *testing.T, unit string, since time.Time) (began, done time.Time) {
	t.Helper()
	out, err := exec.Command("journalctl", "--no-pager", "-o", "json", "-u", unit,
		"--since", since.Add(-time.Second).Format("2006-01-02 15:04:05")).Output()
	if err != nil {
		t.Fatalf("journalctl: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		us, _ := strconv.ParseInt(fmt.Sprint(e["__REALTIME_TIMESTAMP"]), 10, 64)
		msg := fmt.Sprint(e["MESSAGE"])
		switch {
		case strings.Contains(msg, `msg="stopping container"`) && began.IsZero():
			began = time.UnixMicro(us)
		case strings.Contains(msg, `msg="removed sandbox"`):
			done = time.UnixMicro(us)
		}
	}
	return began, done
}

// At shutdown, node-critical pods (priorityClassName system-node-critical,
// as kubeadm's control plane has) stop only once every other pod has
// stopped, as the kubelet's graceful node shutdown stops them. The stop
// transaction of a shutdown is reproduced without powering the test bed
// off: a unit that conflicts with both pods and podunit-critical.target is
// started, which stops all three in one transaction, as shutdown.target's
// conflicts do. The other pod takes two seconds to stop; the critical one
// begins stopping only after that.
func TestCriticalPodsStopLast(t *testing.T) {
	pod := func(name, class string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  priorityClassName: %q
  terminationGracePeriodSeconds: 10
  containers:
  - name: c
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'sleep 2; exit 0' TERM; while :; do sleep 0.2; done"]
`, name, class)
	}
	writeManifest(t, "e2e-critical.yaml", pod("e2e-critical", "system-node-critical"))
	writeManifest(t, "e2e-regular.yaml", pod("e2e-regular", ""))
	critical, regular := waitActive(t, "default", "e2e-critical"), waitActive(t, "default", "e2e-regular")
	if s := activeState(units.CriticalTarget); s != "active" {
		t.Fatalf("%s is %q: podunit-sync.service should have started it", units.CriticalTarget, s)
	}
	// No sync may start the pods again while they stop (podunit-sync.timer
	// runs one every 20 s, podunit.path one at any manifest change).
	systemctl(t, "stop", "podunit.path", "podunit-sync.timer")
	t.Cleanup(func() { exec.Command("systemctl", "start", "podunit.path", "podunit-sync.timer").Run() })
	// Nor may a hand-off of an earlier test's pod (it queues a sync when
	// the pod is down; at a real shutdown, systemd refuses that start: the
	// shutdown's jobs are irreversible, this test's are not).
	waitFor(t, "no sync or hand-off under way", func() (bool, error) {
		if s := activeState("podunit-sync.service"); s == "active" || s == "activating" {
			return false, nil
		}
		list, err := systemd.ListUnitsByPatternsContext(context.Background(), nil, []string{"podunit-handoff-*", "podunit-rollout-*"})
		if err != nil {
			return false, err
		}
		for _, u := range list {
			if u.JobId != 0 || u.ActiveState == "active" || u.ActiveState == "activating" {
				return false, nil
			}
		}
		return true, nil
	})
	start := time.Now()
	// The critical pod named first: the order of the names does not
	// matter, the units' ordering does.
	shutdown := exec.Command("systemd-run", "--unit=e2e-shutdown", "--service-type=oneshot", "--remain-after-exit",
		"--property=Conflicts="+critical+" "+units.CriticalTarget+" "+regular, "true")
	if out, err := shutdown.CombinedOutput(); err != nil {
		t.Fatalf("systemd-run: %v\n%s", err, out)
	}
	// Stopped, not yet unloaded: the unit that conflicts with them refers to them.
	defer exec.Command("systemctl", "stop", "e2e-shutdown.service").Run()
	for _, u := range []string{critical, regular} {
		waitFor(t, u+" stopped", func() (bool, error) { s := activeState(u); return s == "inactive" || s == "failed" || s == "", nil })
	}
	_, regularDone := stopTimes(t, regular, start)
	criticalBegan, criticalDone := stopTimes(t, critical, start)
	if regularDone.IsZero() || criticalBegan.IsZero() || criticalDone.IsZero() {
		t.Fatalf("stop messages missing: regular stopped %v, critical began %v, stopped %v\n%s", regularDone, criticalBegan, criticalDone, diagnostics())
	}
	if criticalBegan.Before(regularDone) {
		t.Errorf("the critical pod began stopping at %s, before the other pod had stopped (%s)",
			criticalBegan.Format(time.StampMicro), regularDone.Format(time.StampMicro))
	}
	systemctl(t, "stop", "e2e-shutdown.service")
	runSync(t) // the target is started again, with the pods
	waitFor(t, units.CriticalTarget+" active again", func() (bool, error) { return activeState(units.CriticalTarget) == "active", nil })
}
