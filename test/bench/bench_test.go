//go:build e2e

// Package bench measures podunit against its floor, inside the test bed
// (make bench): the time from starting a pod's unit to READY=1 against the
// raw CRI calls that bring up the same pod, and podshim's memory and idle CPU
// with many pods running. Results are reported, never asserted.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/test/crifloor"
	"github.com/podunit/podunit/test/procstat"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

const image = "localhost/podunit/busybox:1.35"

func pod(name string) []byte { return chattyPod(name, 0) }

// chattyPod is pod, with its container writing a line every 1/linesPerSec
// seconds (none for 0): a pod whose output podshim forwards to the journal.
func chattyPod(name string, linesPerSec int) []byte {
	loop := "sleep 1"
	if linesPerSec > 0 {
		loop = fmt.Sprintf("i=$((i+1)); echo line $i of pod %s; sleep %g", name, 1/float64(linesPerSec))
	}
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %s
    command: ["sh", "-c", "trap 'exit 0' TERM; i=0; while true; do %s; done"]
`, name, image, loop))
}

// The test bed's runtime (testbed.sh keeps its name where the test bed
// sees it): containerd, or CRI-O (make bench RUNTIME=crio), with its CRI
// socket and the per-pod processes it runs beside podshim, whose memory
// TestPodshimFootprint reports with podshim's.
var bedRuntime = testbedRuntime()

type runtimeInfo struct {
	endpoint string
	// monitor is the command name (/proc/PID/comm) of the runtime's
	// per-pod or per-container process: containerd's shim (one a pod,
	// containerd-shim-runc-v2 cut to 15 characters), CRI-O's conmon (one a
	// container).
	monitor string
	daemon  string
}

func testbedRuntime() runtimeInfo {
	if b, _ := os.ReadFile("/run/podunit-testbed/runtime"); strings.TrimSpace(string(b)) == "crio" {
		return runtimeInfo{endpoint: "unix:///run/crio/crio.sock", monitor: "conmon", daemon: "crio"}
	}
	return runtimeInfo{endpoint: criclient.DefaultEndpoint, monitor: "containerd-shim", daemon: "containerd"}
}

var unitConfig = generator.UnitConfig{
	PodshimPath:  "/usr/local/libexec/podunit/podshim",
	SpecDir:      "/run/podunit/specs",
	CRIEndpoint:  bedRuntime.endpoint,
	CgroupDriver: units.CgroupDriverSystemd,
}

func connect(b testing.TB) (*dbus.Conn, *criclient.Client) {
	b.Helper()
	if _, err := os.Stat("/run/podunit-testbed"); err != nil {
		b.Skip("run inside the test bed: make bench")
	}
	conn, err := dbus.NewSystemConnectionContext(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	// The benchmarks start units themselves; a sync would stop them (no
	// manifest asks for them): no new sync, and none still running (the
	// timer runs one as soon as it starts).
	for _, u := range []string{"podunit.path", "podunit-sync.timer", "podunit-sync.service"} {
		done := make(chan string, 1)
		if _, err := conn.StopUnitContext(context.Background(), u, "replace", done); err == nil {
			<-done
		}
	}
	rt, err := criclient.New(bedRuntime.endpoint)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(); rt.Close() })
	return conn, rt
}

// unitFor decodes a manifest, writes its spec file and returns its unit, as
// `podunit sync` does.
func unitFor(b testing.TB, name string, manifest []byte) *units.Unit {
	b.Helper()
	pods, err := generator.Decode("/etc/podunit/manifests/"+name+".yaml", manifest)
	if err != nil {
		b.Fatal(err)
	}
	p := pods[0]
	if err := podspec.WriteSpecFiles(generator.SpecPath(unitConfig, p.Namespace(), p.Name(), p.Hash), p.Spec, p.Objects); err != nil {
		b.Fatal(err)
	}
	u, err := generator.Unit(unitConfig, p)
	if err != nil {
		b.Fatal(err)
	}
	return u
}

// startAndWait starts a unit and waits for its start job: for Type=notify,
// until READY=1, which podshim sends when every container runs.
func startAndWait(b testing.TB, conn *dbus.Conn, u *units.Unit) {
	b.Helper()
	done := make(chan string, 1)
	if _, err := conn.StartTransientUnitContext(context.Background(), u.Name, "fail", bus.Properties(u), done); err != nil {
		b.Fatal(err)
	}
	if r := <-done; r != "done" {
		b.Fatalf("start %s: job %s", u.Name, r)
	}
}

func stopAndWait(b testing.TB, conn *dbus.Conn, name string) {
	b.Helper()
	done := make(chan string, 1)
	if _, err := conn.StopUnitContext(context.Background(), name, "replace", done); err != nil {
		b.Fatal(err)
	}
	<-done
}

// BenchmarkStartToReady measures podunit's start of a one-container pod on
// a local image against its floor, taking turns so that both see the same
// machine (on a shared 2-core machine the runtime's speed drifts within
// minutes; measured one after the other, the two drifted apart):
//
//   - floor: the CRI calls that bring up the same pod, made directly with
//     the configs podshim would make (test/crifloor: podshim/criconfig's,
//     built before the clock starts), in the same kind of pod slice:
//     RunPodSandbox, ImageStatus, CreateContainer, StartContainer;
//   - unit: StartTransientUnit of the pod's unit with the properties
//     `podunit sync` sends, until its start job completes, i.e. until
//     podshim sent READY=1.
//
// Each iteration starts one pod of each, in alternating order, and tears
// both down off the clock. Reported: the mean of each (floor-ms/pod,
// unit-ms/pod), podunit's overhead over the floor from the means, and where
// a unit's start goes, from systemd's own timestamps: until podshim is
// exec'ed (systemd makes the unit and its slice: spawn-ms/pod), podshim's
// run up to READY=1 (podshim-ms/pod: its start, the CRI calls, the pod's
// files), and from READY=1 until the job's completion reaches the caller
// (ready-ms/pod).
func BenchmarkStartToReady(b *testing.B) {
	conn, rt := connect(b)
	ctx := context.Background()
	var floor, unit, spawn, podshim, ready time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			floor += floorStart(b, ctx, rt, fmt.Sprintf("floor-%d", i))
		}
		u := unitStart(b, conn, fmt.Sprintf("ready-%d", i))
		unit += u.total
		spawn += u.spawn
		podshim += u.podshim
		ready += u.ready
		if i%2 == 1 {
			floor += floorStart(b, ctx, rt, fmt.Sprintf("floor-%d", i))
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(floor), "floor-ms/pod")
	b.ReportMetric(ms(unit), "unit-ms/pod")
	b.ReportMetric(100*(ms(unit)-ms(floor))/ms(floor), "overhead-%")
	b.ReportMetric(ms(spawn), "spawn-ms/pod")
	b.ReportMetric(ms(podshim), "podshim-ms/pod")
	b.ReportMetric(ms(ready), "ready-ms/pod")
	// ns/op would be both starts and both teardowns: suppressed.
	b.ReportMetric(0, "ns/op")
}

// floorConfigs decodes manifest as podunit does and makes the CRI configs
// the floor starts it with (test/crifloor).
func floorConfigs(b *testing.B, manifest []byte) (*corev1.Pod, *runtimeapi.PodSandboxConfig, *runtimeapi.ContainerConfig) {
	b.Helper()
	pods, err := generator.Decode("floor.yaml", manifest)
	if err != nil {
		b.Fatal(err)
	}
	sandbox, c, err := crifloor.Configs(pods[0].Spec, image)
	if err != nil {
		b.Fatal(err)
	}
	return pods[0].Spec, sandbox, c
}

// floorStart brings the pod up with raw CRI calls (test/crifloor), returns
// how long they took, and removes it.
func floorStart(b *testing.B, ctx context.Context, rt *criclient.Client, name string) time.Duration {
	b.Helper()
	spec, sandbox, c := floorConfigs(b, pod(name))
	start := time.Now()
	p, err := crifloor.Start(ctx, rt, spec, sandbox, c, image)
	took := time.Since(start)
	if p != nil {
		p.Remove(ctx, rt)
	}
	if err != nil {
		b.Fatal(err)
	}
	return took
}

// unitTimes is one unit's start, split at systemd's timestamps.
type unitTimes struct{ total, spawn, podshim, ready time.Duration }

// unitStart starts the pod's transient unit as sync does, measures its way
// to READY=1, and stops it.
func unitStart(b *testing.B, conn *dbus.Conn, name string) unitTimes {
	b.Helper()
	u := unitFor(b, name, pod(name))
	t0 := monotonic(b)
	startAndWait(b, conn, u)
	t3 := monotonic(b)
	at := func(p *dbus.Property, err error) time.Duration {
		if err != nil {
			b.Fatal(err)
		}
		v, ok := p.Value.Value().(uint64)
		if !ok || v == 0 {
			b.Fatalf("%s: no %s", u.Name, p.Name)
		}
		return time.Duration(v) * time.Microsecond
	}
	ctx := context.Background()
	t1 := at(conn.GetServicePropertyContext(ctx, u.Name, "ExecMainStartTimestampMonotonic"))
	t2 := at(conn.GetUnitPropertyContext(ctx, u.Name, "ActiveEnterTimestampMonotonic"))
	stopAndWait(b, conn, u.Name)
	stopAndWait(b, conn, u.Slice)
	return unitTimes{total: t3 - t0, spawn: t1 - t0, podshim: t2 - t1, ready: t3 - t2}
}

// monotonic is CLOCK_MONOTONIC, the clock of systemd's *TimestampMonotonic
// properties.
func monotonic(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// TestPodshimFootprint runs PODS pods (default 20) and reports podshim's
// private memory (Private_Dirty, and with Private_Clean, from smaps_rollup) and the CPU
// time the podshims use over IDLE_SECONDS (default 30) of quiet, or, with
// LINES_PER_SEC, while each container writes that many lines a second.
func TestPodshimFootprint(t *testing.T) {
	conn, _ := connect(t)
	n := envInt("PODS", 20)
	idle := time.Duration(envInt("IDLE_SECONDS", 30)) * time.Second
	lines := envInt("LINES_PER_SEC", 0)
	var names []string
	for i := range n {
		name := fmt.Sprintf("footprint-%d", i)
		u := unitFor(t, name, chattyPod(name, lines))
		startAndWait(t, conn, u)
		names = append(names, u.Name)
		defer stopAndWait(t, conn, u.Slice) // after the unit, as sync does
		defer stopAndWait(t, conn, u.Name)
	}
	var pids []int
	for _, name := range names {
		p, err := conn.GetServicePropertyContext(context.Background(), name, "MainPID")
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, int(p.Value.Value().(uint32)))
	}
	time.Sleep(3 * time.Second) // let the pods settle
	var private []procstat.Private
	cpu0 := map[int]int64{}
	for _, pid := range pids {
		private = append(private, smapsPrivate(t, pid))
		cpu0[pid] = cpuTicks(t, pid)
	}
	monitors := monitorsPrivate(t)
	lines0 := journalLines(t, names, lines)
	time.Sleep(idle)
	var ticks int64
	var afterIdle []procstat.Private
	for _, pid := range pids {
		ticks += cpuTicks(t, pid) - cpu0[pid]
		afterIdle = append(afterIdle, smapsPrivate(t, pid))
	}
	monitorsAfter := monitorsPrivate(t)
	forwarded := journalLines(t, names, lines) - lines0
	cpuMsPerPodMin := float64(ticks) * 10 / float64(n) * (float64(time.Minute) / float64(idle))
	t.Logf("pods: %d, each writing %d lines a second; runtime %s", n, lines, bedRuntime.daemon)
	for _, m := range []struct {
		when     string
		samples  []procstat.Private
		monitors []procstat.Private
	}{{"3 s after start", private, monitors}, {fmt.Sprintf("after %s more", idle), afterIdle, monitorsAfter}} {
		var dirty, both []float64
		for _, p := range m.samples {
			dirty = append(dirty, float64(p.Dirty))
			both = append(both, float64(p.Dirty+p.Clean))
		}
		t.Logf("podshim private memory %s: Private_Dirty %s; with Private_Clean %s", m.when, summary(dirty), summary(both))
		// Only the benchmark's pods run in the test bed: every monitor is
		// one of theirs.
		var mon float64
		for _, p := range m.monitors {
			mon += float64(p.Dirty)
		}
		perPod := mon / float64(n)
		t.Logf("%s private memory %s: %d processes, Private_Dirty %.0f KiB a pod; podshim + %s: %.0f + %.0f = %.0f KiB a pod (means)",
			bedRuntime.monitor, m.when, len(m.monitors), perPod, bedRuntime.monitor, mean(dirty), perPod, mean(dirty)+perPod)
	}
	if d := procstat.Named(bedRuntime.daemon); len(d) == 1 {
		t.Logf("%s itself, shared by every pod: Private_Dirty %d KiB", bedRuntime.daemon, smapsPrivate(t, d[0]).Dirty)
	}
	t.Logf("podshim CPU: %.1f ms per pod per minute (%d ticks of 10 ms over %s for %d pods)", cpuMsPerPodMin, ticks, idle, n)
	if forwarded > 0 {
		// A loaded machine runs the containers' loops slower than asked.
		t.Logf("lines forwarded to the journal: %d, %.1f a second a pod; podshim CPU %.2f ms a line",
			forwarded, float64(forwarded)/float64(n)/idle.Seconds(), float64(ticks)*10/float64(forwarded))
	}
}

// journalLines counts the container lines in the journal of the given
// units (none when the pods are quiet).
func journalLines(t *testing.T, units []string, linesPerSec int) int {
	if linesPerSec == 0 {
		return 0
	}
	total := 0
	for _, u := range units {
		out, err := exec.Command("journalctl", "-q", "-o", "cat", "-u", u, "CONTAINER_NAME=app").Output()
		if err != nil {
			t.Fatalf("journalctl -u %s: %v", u, err)
		}
		total += bytes.Count(out, []byte("\n"))
	}
	return total
}

// monitorsPrivate is the private memory of each of the runtime's per-pod
// or per-container processes (containerd's shims, CRI-O's conmons).
func monitorsPrivate(t *testing.T) []procstat.Private {
	var out []procstat.Private
	for _, pid := range procstat.Named(bedRuntime.monitor) {
		out = append(out, smapsPrivate(t, pid))
	}
	return out
}

func mean(kib []float64) float64 {
	sum := 0.0
	for _, k := range kib {
		sum += k
	}
	return sum / float64(len(kib))
}

// summary is the mean, median and maximum of KiB figures.
func summary(kib []float64) string {
	sort.Float64s(kib)
	sum := 0.0
	for _, k := range kib {
		sum += k
	}
	n := len(kib)
	return fmt.Sprintf("mean %.0f KiB, median %.0f KiB, max %.0f KiB", sum/float64(n), kib[n/2], kib[n-1])
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func smapsPrivate(t *testing.T, pid int) procstat.Private {
	m, err := procstat.ReadPrivate(pid)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func cpuTicks(t *testing.T, pid int) int64 {
	n, err := procstat.Ticks(pid, false)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
