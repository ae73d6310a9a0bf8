//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/units"
)

const (
	cniBinDir = "/usr/lib/cni" // the test bed's containerd.toml and crio.conf
	// cniIPAMDir is where host-local keeps one file per address handed
	// out, holding the sandbox it went to.
	cniIPAMDir = "/var/lib/cni/networks/podunit"
)

// leakedAddresses lists the pod addresses host-local still holds for a
// sandbox that is not ready: what a failed network setup must not leave.
func leakedAddresses(t *testing.T) []string {
	t.Helper()
	list, err := cri.ListPodSandbox(context.Background(), &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}})
	if err != nil {
		t.Fatal(err)
	}
	ready := map[string]bool{}
	for _, sb := range list {
		ready[sb.Id] = true
	}
	entries, _ := os.ReadDir(cniIPAMDir)
	var leaked []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "last_reserved_ip") || e.Name() == "lock" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(cniIPAMDir, e.Name()))
		if err != nil {
			continue
		}
		if id, _, _ := strings.Cut(string(b), "\n"); !ready[strings.TrimSpace(id)] {
			leaked = append(leaked, e.Name())
		}
	}
	return leaked
}

// A CNI plugin that is missing, then failing: the new pod says why (its
// journal and `podunit describe`), the pod already running keeps running
// untouched, nothing leaks from the failed attempts, and once the plugin is
// back the new pod starts without a hand.
//
// CRI-O checks a network's plugins when it loads the network and drops a
// network whose plugins are missing or fail: the pod then says CRI-O's
// words, "no CNI configuration file in /etc/cni/net.d/", and `podunit
// doctor`, which makes the same check with libcni, names the plugin and its
// error. CRI-O watches the plugin directory and takes the network back as
// soon as the plugin is.
func TestCNIFailure(t *testing.T) {
	writeManifest(t, "e2e-cni-ok.yaml", webPod("e2e-cni-ok", "unaffected", 0))
	okUnit := waitActive(t, "default", "e2e-cni-ok")
	okPID := unitProps(t, okUnit)["MainPID"].(uint32)
	okIP := getPod(t, "default", "e2e-cni-ok").Status.PodIP

	portmap := filepath.Join(cniBinDir, "portmap")
	saved := portmap + ".e2e-saved"
	if err := os.Rename(portmap, saved); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			os.Remove(portmap)
			if err := os.Rename(saved, portmap); err != nil {
				t.Errorf("restoring %s: %v", portmap, err)
			}
			restored = true
		}
	}
	t.Cleanup(restore)

	const name = "e2e-cni"
	unit := units.ServiceName("default", name)
	since := time.Now()
	writeManifest(t, name+".yaml", webPod(name, "after the fix", 0))
	// What the pod says: the runtime's words.
	why := `failed to find plugin \"portmap\"`
	if onCRIO() {
		why = "no CNI configuration file in /etc/cni/net.d/"
	}
	waitFor(t, "the journal to say the portmap plugin is missing", func() (bool, error) {
		return strings.Contains(journal(t, unit, since), why), nil
	})
	out, _ := podunitOut("describe", "pod", name)
	said := "portmap"
	if onCRIO() {
		said = why
	}
	if !strings.Contains(out, said) {
		t.Errorf("podunit describe pod %s does not say why it has no sandbox:\n%s", name, out)
	}
	t.Logf("missing plugin, describe says: %s", lineWith(out, said))
	if onCRIO() {
		out, _ := podunitOut("doctor")
		if !strings.Contains(out, `[fail] CNI: /etc/cni/net.d/10-podunit.conflist: [failed to find plugin "portmap"`) {
			t.Errorf("doctor does not name the missing plugin:\n%s", out)
		}
	}

	// Now present but failing, as a plugin does on a bad day.
	if err := os.WriteFile(portmap, []byte("#!/bin/sh\n"+
		`echo '{"cniVersion":"1.0.0","code":11,"msg":"e2e: portmap is broken"}'`+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	since = time.Now()
	waitFor(t, "the journal to carry the failing plugin's message", func() (bool, error) {
		if onCRIO() {
			out, _ := podunitOut("doctor")
			return strings.Contains(out, "e2e: portmap is broken"), nil
		}
		return strings.Contains(journal(t, unit, since), "e2e: portmap is broken"), nil
	})

	if p := unitProps(t, okUnit); p["ActiveState"] != "active" || p["MainPID"].(uint32) != okPID {
		t.Errorf("the running pod was disturbed: %v, podshim %v (was %d)", p["ActiveState"], p["MainPID"], okPID)
	}
	if code, body, err := get("http://" + okIP + "/"); err != nil || code != 200 || !strings.Contains(body, "unaffected") {
		t.Errorf("the running pod stopped serving: %d %v %q", code, err, body)
	}

	restore()
	fixed := time.Now()
	waitActive(t, "default", name)
	t.Logf("ready %s after the plugin came back", time.Since(fixed).Round(time.Millisecond))
	var ready int
	for _, sb := range sandboxes(t, "default", name) {
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			ready++
		} else {
			t.Errorf("a sandbox of a failed attempt is left: %s (%s)", sb.Id, sb.State)
		}
	}
	if ready != 1 {
		t.Errorf("%d ready sandboxes, want 1", ready)
	}
	if leaked := leakedAddresses(t); len(leaked) > 0 {
		t.Errorf("pod addresses held for no ready sandbox: %v", leaked)
	}
	if st := podState(t, "default", name); st == nil || st.Status.PodIP == "" {
		t.Errorf("no pod IP after recovery: %+v", st)
	}
}

// lineWith returns the first line of s containing sub.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
