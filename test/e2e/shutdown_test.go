//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podunit/podunit/units"
)

// stopTimes are when systemd began and finished stopping unit since a
// time, from its job messages in the journal (systemd's UNIT_STOPPING and
// UNIT_STOPPED message IDs).
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
		switch e["MESSAGE_ID"] {
		case "de5b426a63be47a7b6ac3eaac82e2f6f":
			began = time.UnixMicro(us)
		case "9d1aaa27d60140bd96365438aad20286":
			done = time.UnixMicro(us)
		}
	}
	return began, done
}

// At shutdown, node-critical pods (priorityClassName system-node-critical,
// as kubeadm's control plane has) stop only once every other pod has
// stopped, as the kubelet's graceful node shutdown stops them. The stop
// transaction of a shutdown is reproduced without powering the test bed
// off: one `systemctl stop` of both pods and podunit-critical.target, whose
// ordering is the same. The other pod takes two seconds to stop; the
// critical one begins stopping only after that.
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
	start := time.Now()
	// Listed critical first: the order of the names does not matter, the
	// units' ordering does.
	systemctl(t, "stop", critical, units.CriticalTarget, regular)
	_, regularDone := stopTimes(t, regular, start)
	criticalBegan, criticalDone := stopTimes(t, critical, start)
	if regularDone.IsZero() || criticalBegan.IsZero() || criticalDone.IsZero() {
		t.Fatalf("stop messages missing: regular stopped %v, critical began %v, stopped %v\n%s", regularDone, criticalBegan, criticalDone, diagnostics())
	}
	if criticalBegan.Before(regularDone) {
		t.Errorf("the critical pod began stopping at %s, before the other pod had stopped (%s)",
			criticalBegan.Format(time.StampMicro), regularDone.Format(time.StampMicro))
	}
	runSync(t) // the target is started again, with the pods
	waitFor(t, units.CriticalTarget+" active again", func() (bool, error) { return activeState(units.CriticalTarget) == "active", nil })
}
