//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

// The reboot story, driven from outside the test bed by test/e2e/reboot.sh:
// TestReboot runs once before and after each reboot and power cut, told
// which by PODUNIT_E2E_REBOOT (prepare, check). The host removes a manifest
// while the test bed is off (PODUNIT_E2E_REMOVED names it to the check).
const (
	bootPrefix = "e2e-boot"
	// bootRecord keeps what the run before the reboot saw, on the test
	// bed's disk.
	bootRecord = "/var/lib/podunit-e2e/reboot.json"
	bootJobLog = "/var/lib/podunit-e2e/job-runs"
)

type rebootRecord struct {
	Sandboxes []string          // every sandbox podunit had before
	UIDs      map[string]string // pod name → UID
	Token     string            // what the claim held
	Starts    int               // how often the claim's pod started
	// Services are what each Service held: its ClusterIP and node
	// ports, by namespace/name.
	Services map[string]string
}

func TestReboot(t *testing.T) {
	switch phase := os.Getenv("PODUNIT_E2E_REBOOT"); phase {
	case "prepare":
		rebootPrepare(t)
	case "cut":
		rebootCut(t)
	case "check":
		rebootCheck(t, os.Getenv("PODUNIT_E2E_REMOVED"))
		if os.Getenv("PODUNIT_E2E_CUT") != "" {
			rebootCutCheck(t)
		}
	default:
		t.Skip("a phase of `make test-reboot` (PODUNIT_E2E_REBOOT=prepare|check)")
	}
}

func bootPod(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]
`, name)
}

// cutGate is a pod replaced when the power is cut (not of bootPrefix:
// after the cut it runs its last ready generation, not its manifest's).
const cutGate = "e2e-cutgate"

func cutGatePod(command string) string { return gatedPod(cutGate, "20s", "c", command) }

// rebootCut edits cutGate to a generation that crashes, and returns once
// its hand-off started it and holds it to its readiness: the power is cut
// then.
func rebootCut(t *testing.T) {
	unit := waitActive(t, "default", cutGate) // ready: a generation to come back to
	good := unitGeneration(t, unit)
	writeFile(t, cutGate+".yaml", cutGatePod("echo v2 is broken; sleep 1; exit 1"))
	waitFor(t, "the broken generation started by its hand-off, gated against the good one", func() (bool, error) {
		g := unitGeneration(t, unit)
		b, err := os.ReadFile("/var/lib/podunit/rollouts/default_" + cutGate + ".json")
		if err != nil {
			return false, err
		}
		var rec struct{ Phase, Previous string }
		if err := json.Unmarshal(b, &rec); err != nil {
			return false, err
		}
		if rec.Previous != good {
			return false, fmt.Errorf("the replacement's record: %s", b)
		}
		return g != good && g != "" && rec.Phase == "Starting" && activeState(units.HandoffName(unit)) == "activating", nil
	})
	if err := os.WriteFile(filepath.Join(filepath.Dir(bootRecord), "cutgate-good"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rebootCutCheck: "the power went while podunit replaced a pod with a
// broken version; when the machine is back, the pod runs the version that
// worked, and says it was rolled back" — the replacement was carried on
// from its record, gated, not started ungated by the boot's sync.
func rebootCutCheck(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(bootRecord), "cutgate-good"))
	if err != nil {
		t.Fatal(err)
	}
	good, unit := string(b), units.ServiceName("default", cutGate)
	if rec, err := os.ReadFile("/var/lib/podunit/rollouts/default_" + cutGate + ".json"); err == nil {
		t.Logf("the replacement's record after the boot: %s", rec)
	}
	waitStatusWord(t, cutGate, "RolledBack")
	waitFor(t, "the last ready generation back", func() (bool, error) {
		return unitGeneration(t, unit) == good && activeState(unit) == "active", nil
	})
}

// rebootPrepare writes the manifests: plain pods (two are removed while the
// test bed is off), a pod with a claim, and a Job that counts its runs.
func rebootPrepare(t *testing.T) {
	files := map[string]string{
		bootPrefix + "-web.yaml":   webPod(bootPrefix+"-web", "back after a reboot", 0),
		bootPrefix + "-gone1.yaml": bootPod(bootPrefix + "-gone1"),
		bootPrefix + "-gone2.yaml": bootPod(bootPrefix + "-gone2"),
		cutGate + ".yaml":          cutGatePod("echo v1; " + serveForever),
		// Services given their addresses and node ports by the sync, which
		// must keep them across reboots and power cuts.
		"e2e-bootsvc.yaml": `apiVersion: v1
kind: Service
metadata: {name: e2e-boot-web}
spec:
  type: NodePort
  selector: {app: e2e-boot-web}
  ports:
  - {port: 80}
---
apiVersion: v1
kind: Service
metadata: {name: e2e-boot-lb}
spec:
  type: LoadBalancer
  selector: {app: e2e-boot-web}
  ports:
  - {port: 8088, targetPort: 80}
`,
		bootPrefix + "-data.yaml": `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: e2e-boot-claim}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-boot-data}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c", "[ -f /data/token ] || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /data/token; echo start >> /data/starts; trap 'exit 0' TERM; sleep 86400 & wait"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: e2e-boot-claim}}]
`,
		// Not of the prefix: converged() wants every pod of it running.
		"e2e-bootjob.yaml": `apiVersion: batch/v1
kind: Job
metadata: {name: e2e-bootjob}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: once
        image: localhost/podunit/busybox:1.35
        command: ["sh", "-c", "echo ran >> /log/job-runs"]
        volumeMounts: [{name: log, mountPath: /log}]
      volumes: [{name: log, hostPath: {path: /var/lib/podunit-e2e, type: DirectoryOrCreate}}]
`,
	}
	for file, content := range files {
		if err := os.WriteFile(filepath.Join(manifestDir, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every pod ready", func() (bool, error) {
		if p := converged(t, bootPrefix); p != "" {
			return false, fmt.Errorf("%s", p)
		}
		return true, nil
	})
	waitActive(t, "default", cutGate)
	job := units.ServiceName("default", "e2e-bootjob")
	waitFor(t, "the Job completed", func() (bool, error) {
		p := unitProps(t, job)
		return p["ActiveState"] == "active" && p["SubState"] == "exited", nil
	})
	// No sync is asked for: podshim records the Job's end itself, so a
	// reboot right after it finished does not run it again.
	rec := rebootRecord{UIDs: map[string]string{}, Starts: 1}
	for _, name := range []string{"web", "gone1", "gone2", "data"} {
		rec.UIDs[bootPrefix+"-"+name] = podState(t, "default", bootPrefix+"-"+name).UID
	}
	rec.Token = mustExec(t, bootPrefix+"-data", "c", "cat", "/data/token")
	rec.Services = bootServices(t)
	saveBootRecord(t, rec)
}

// bootServices waits until the boot story's Services answer on what they
// hold, and returns that: each one's ClusterIP and node ports.
func bootServices(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	waitFor(t, "the Services served, answering", func() (bool, error) {
		table := serviceTable(t)
		for _, name := range []string{"e2e-boot-web", "e2e-boot-lb"} {
			s, ok := table["default/"+name]
			if !ok || !s.ClusterIP.IsValid() || len(s.Ports) != 1 || s.Ports[0].NodePort == 0 {
				return false, fmt.Errorf("%s: %+v", name, s)
			}
			out[s.Key()] = fmt.Sprintf("%s:%d nodePort %d", s.ClusterIP, s.Ports[0].Port, s.Ports[0].NodePort)
			for _, addr := range []string{fmt.Sprintf("%s:%d", s.ClusterIP, s.Ports[0].Port), fmt.Sprintf("127.0.0.1:%d", s.Ports[0].NodePort)} {
				if body, err := httpGet(addr, "/"); body != "back after a reboot" {
					return false, fmt.Errorf("%s via %s: %q %v", name, addr, body, err)
				}
			}
		}
		return true, nil
	})
	return out
}

// rebootCheck is what a user expects once the machine is back: every pod
// of a manifest running again, once; the removed manifest's pod gone with
// all it had; the completed Job not run again; the claim's data kept;
// nothing left of the sandboxes from before.
func rebootCheck(t *testing.T, removed string) {
	b, err := os.ReadFile(bootRecord)
	if err != nil {
		t.Fatal(err)
	}
	var rec rebootRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	booted := managerStarted(t)

	waitFor(t, "exactly the manifests' pods, nothing else", func() (bool, error) {
		if p := converged(t, bootPrefix); p != "" {
			runSync(t) // a pod directory is collected a minute after its pod went
			return false, fmt.Errorf("%s", p)
		}
		return true, nil
	})
	var last time.Time
	for _, name := range []string{"web", "data"} {
		p := unitProps(t, units.ServiceName("default", bootPrefix+"-"+name))
		if at := time.UnixMicro(int64(p["ActiveEnterTimestamp"].(uint64))); at.After(last) {
			last = at
		}
	}
	t.Logf("every pod ready %s after the manager started", last.Sub(booted).Round(time.Millisecond))

	// The removed manifest's pod: nothing of it (converged checked the
	// unit, slice, sandbox and files); its pod directory too.
	if removed != "" {
		if _, err := os.Stat(filepath.Join(manifestDir, removed+".yaml")); err == nil {
			t.Fatalf("%s.yaml is still in the manifest directory", removed)
		}
		dir := filepath.Join(podshim.DefaultPodRoot, rec.UIDs[removed])
		waitFor(t, "the removed pod's directory collected", func() (bool, error) {
			_, err := os.Stat(dir)
			if err == nil {
				runSync(t)
			}
			return os.IsNotExist(err), nil
		})
	}

	// No sandbox from before: not ready ones (containerd keeps them across
	// its restart) removed too.
	ctx := context.Background()
	waitFor(t, "no sandbox left from before", func() (bool, error) {
		var left []string
		for _, id := range rec.Sandboxes {
			list, err := cri.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{Id: id})
			if err != nil {
				return false, err
			}
			for _, sb := range list {
				left = append(left, sb.Metadata.Name+" "+sb.State.String())
			}
		}
		if len(left) > 0 {
			runSync(t)
			return false, fmt.Errorf("left: %v", left)
		}
		return true, nil
	})

	// Every Service keeps its ClusterIP and node ports, and answers there.
	if got := bootServices(t); fmt.Sprint(got) != fmt.Sprint(rec.Services) {
		t.Errorf("the Services hold %v, before the reboot %v", got, rec.Services)
	} else {
		t.Logf("the Services kept what they held, and answer there: %v", got)
	}

	// The completed Job stays completed.
	if s := activeState(units.ServiceName("default", "e2e-bootjob")); s == "activating" || s == "active" {
		t.Errorf("the completed Job runs again (%s)", s)
	}
	if b, err := os.ReadFile(bootJobLog); err != nil || strings.Count(string(b), "ran") != 1 {
		t.Errorf("the Job ran %d times (%v), want once", strings.Count(string(b), "ran"), err)
	}

	// The claim keeps its data, and its pod started once more, not twice.
	if got := mustExec(t, bootPrefix+"-data", "c", "cat", "/data/token"); got != rec.Token {
		t.Errorf("the claim's data: %q, before the reboot %q", got, rec.Token)
	}
	starts := strings.Count(mustExec(t, bootPrefix+"-data", "c", "cat", "/data/starts"), "start")
	if starts != rec.Starts+1 {
		t.Errorf("the claim's pod started %d times in all, want %d (once per boot)", starts, rec.Starts+1)
	}
	rec.Starts = starts
	saveBootRecord(t, rec)
}

// saveBootRecord writes rec, with every sandbox podunit has now.
func saveBootRecord(t *testing.T, rec rebootRecord) {
	t.Helper()
	list, err := cri.ListPodSandbox(context.Background(), &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{podshim.LabelManaged: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	rec.Sandboxes = nil
	for _, sb := range list {
		rec.Sandboxes = append(rec.Sandboxes, sb.Id)
	}
	b, _ := json.Marshal(rec)
	if err := os.MkdirAll(filepath.Dir(bootRecord), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bootRecord, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d sandboxes before the next reboot", len(rec.Sandboxes))
}

// managerStarted is when the test bed's systemd started (its boot).
func managerStarted(t *testing.T) time.Time {
	t.Helper()
	v, err := systemd.GetManagerProperty("UserspaceTimestamp")
	if err != nil {
		t.Fatal(err)
	}
	var us uint64
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "@t "), "%d", &us); err != nil {
		t.Fatalf("UserspaceTimestamp %q: %v", v, err)
	}
	return time.UnixMicro(int64(us))
}
