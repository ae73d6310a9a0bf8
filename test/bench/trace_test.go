//go:build e2e

package bench

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/test/crifloor"
	"github.com/podunit/podunit/units"
)

// The start trace (docs/benchmarks.md, "Where the start goes"): a pod's way
// from its manifest written to its server answering, stage by stage, on
// CLOCK_MONOTONIC, from what systemd and podunit record anyway:
//
//   - the bench's own clock: the manifest written, the first TCP connect
//     the pod's server accepts;
//   - systemd's timestamps of podunit-sync.service (its start job ran: the
//     path unit fired; its process forked) and of the pod's unit (its start
//     job ran: StartTransientUnit arrived; podshim forked; READY=1 came);
//   - the sync's timings line (the pass's start on CLOCK_MONOTONIC, then
//     settled, read, planned, units changed) and podshim's "start timings"
//     line (its main on CLOCK_MONOTONIC, then each CRI call's offset and
//     duration).

// tracePort is where the traced pod's server (busybox httpd) listens.
const tracePort = "9000"

func tracePod(name string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: %s
    command: ["httpd", "-f", "-p", "%s", "-h", "/etc"]
`, name, image, tracePort))
}

// traceVariant is a way of starting: podunit as it is, podunit with the
// start path as it was before issue #26 (PODUNIT_BENCH_BEFORE in the
// manager's environment, which every unit it starts inherits), or the raw
// CRI floor with an OCI runtime handler.
type traceVariant struct {
	name    string
	before  string // PODUNIT_BENCH_BEFORE; "" for podunit as it is
	floor   bool
	handler string // the floor's runtime handler ("": the default, runc)
}

// A traced start: each stage's moment, µs on CLOCK_MONOTONIC.
type startTrace struct {
	stages []stageAt
	calls  []criCall
}

type stageAt struct {
	name string
	at   int64
}

type criCall struct {
	name       string
	begin, end int64
}

// BenchmarkStartTrace traces b.N rounds; each round starts a pod once per
// variant, in an order that turns, with the pod torn down off the clock.
// It prints a table per variant: the median and the spread (min–max) of
// each stage, and the ratios of podunit's manifest → serving to the floor's
// start → serving of the same rounds.
func BenchmarkStartTrace(b *testing.B) {
	conn, rt := connect(b)
	ctx := context.Background()
	// connect stopped the path unit and the timer: the trace starts at
	// the path unit, and no periodic sync may run in between.
	startUnit(b, conn, "podunit.path")
	b.Cleanup(func() { stopAndWait(b, conn, "podunit.path") })
	b.Cleanup(func() { exec.Command("systemctl", "unset-environment", "PODUNIT_BENCH_BEFORE").Run() })

	variants := []traceVariant{
		{name: "podunit"},
		{name: "podunit as before #26 (settle, serial podshim start)", before: "settle,podshim"},
		{name: "floor (raw CRI calls), runc", floor: true},
	}
	if bedRuntime.daemon == "containerd" {
		if _, err := os.Stat("/usr/bin/crun"); err == nil {
			variants = append(variants, traceVariant{name: "floor (raw CRI calls), crun", floor: true, handler: "crun"})
		}
	}
	traces := make([][]startTrace, len(variants))
	for i := 0; b.Loop(); i++ {
		for k := range variants {
			j := (k + i) % len(variants) // each variant goes first in turn
			v := variants[j]
			name := fmt.Sprintf("trace-%d-%d", i, j)
			var tr startTrace
			if v.floor {
				tr = floorTrace(b, ctx, rt, name, v.handler)
			} else {
				tr = unitTrace(b, conn, name, v.before)
			}
			traces[j] = append(traces[j], tr)
		}
	}
	fmt.Printf("\n--- start trace: %d rounds, runtime %s; ms, median [min–max] ---\n", b.N, bedRuntime.daemon)
	for j, v := range variants {
		printTrace(v.name, traces[j])
	}
	floorServing := totals(traces[2])
	for j, v := range variants {
		if j == 2 {
			continue
		}
		fmt.Printf("%s, start → serving: median %.1f ms, %.2f× the runc floor's (median of the rounds' ratios %.2f×)\n",
			v.name, median(totals(traces[j])), median(totals(traces[j]))/median(floorServing), median(ratios(totals(traces[j]), floorServing)))
	}
	b.ReportMetric(0, "ns/op")
}

// unitTrace writes the pod's manifest, waits for its server to answer and
// gathers the trace, then removes the manifest and waits for the pod and
// the sync to be gone.
func unitTrace(b *testing.B, conn *dbus.Conn, name, before string) startTrace {
	b.Helper()
	ctx := context.Background()
	if before != "" {
		run(b, "systemctl", "set-environment", "PODUNIT_BENCH_BEFORE="+before)
	} else {
		run(b, "systemctl", "unset-environment", "PODUNIT_BENCH_BEFORE")
	}
	unit := units.ServiceName("default", name)
	file := filepath.Join(benchManifests, name+".yaml")
	waitSyncIdle(b, conn)

	written := monotonicMicros(b)
	if err := os.WriteFile(file, tracePod(name), 0o644); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Millisecond) {
		p, err := conn.GetUnitPropertyContext(ctx, unit, "ActiveState")
		if err == nil && p.Value.Value() == "active" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not active within 2 minutes", unit)
		}
	}
	st, err := podshim.ReadState(podshim.DefaultStateDir, "default", name)
	if err != nil || st.Status.PodIP == "" {
		b.Fatalf("%s: no pod IP in its state: %v", unit, err)
	}
	serving := waitServing(b, st.Status.PodIP)

	syncProps, err := conn.GetAllPropertiesContext(ctx, "podunit-sync.service")
	if err != nil {
		b.Fatal(err)
	}
	podProps, err := conn.GetAllPropertiesContext(ctx, unit)
	if err != nil {
		b.Fatal(err)
	}
	tr := startTrace{stages: []stageAt{{"manifest written", written}}}
	pass := syncTimings(b, written)
	// systemd stamps a service's start when it forks its process (its
	// InactiveExit comes a few µs later): the path unit fired, its start
	// job ran. A sync forked after the pass began is a later one (the
	// path unit fired again), whose stamp replaced this one's: not known.
	if forked := prop(b, syncProps, "ExecMainStartTimestampMonotonic"); forked <= pass[4] {
		tr.add("podunit.path fired, sync forked", forked)
	} else {
		tr.add("podunit.path fired, sync forked", 0)
	}
	tr.add("sync's main (Go runtime, package init)", pass[4])
	tr.add("sync's pass begins (config, D-Bus, CRI version)", pass[0])
	tr.add("directory settled", pass[1])
	tr.add("manifests read", pass[2])
	tr.add("units planned, spec files written", pass[3])
	tr.add("StartTransientUnit; systemd forked podshim", prop(b, podProps, "ExecMainStartTimestampMonotonic"))
	main, calls := podshimTimings(b, unit)
	tr.add("podshim's main (Go runtime, package init)", main)
	tr.calls = calls
	if len(calls) > 0 {
		tr.add("first CRI call begins (config, spec, dial)", calls[0].begin)
		last := slices.MaxFunc(calls, func(x, y criCall) int { return int(x.end - y.end) })
		tr.add("last CRI call ends", last.end)
	}
	tr.add("READY=1 reached systemd", prop(b, podProps, "ActiveEnterTimestampMonotonic"))
	tr.add("server answers a TCP connect", serving)

	os.Remove(file)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if list, err := conn.ListUnitsByNamesContext(ctx, []string{unit}); err == nil && (len(list) == 0 || list[0].LoadState == "not-found" || list[0].ActiveState == "inactive") {
			break
		}
	}
	waitSyncIdle(b, conn)
	return tr
}

// floorTrace starts the same pod with raw CRI calls (test/crifloor) and
// waits for its server to answer.
func floorTrace(b *testing.B, ctx context.Context, rt *criclient.Client, name, handler string) startTrace {
	b.Helper()
	spec, sandbox, c := floorConfigs(b, tracePod(name))
	begin := monotonicMicros(b)
	p, err := crifloor.StartOn(ctx, rt, handler, spec, sandbox, c, image)
	if p != nil {
		defer p.Remove(ctx, rt)
	}
	if err != nil {
		b.Fatal(err)
	}
	started := monotonicMicros(b)
	st, err := rt.PodSandboxStatus(ctx, p.Sandbox, false)
	if err != nil || st.GetStatus().GetNetwork().GetIp() == "" {
		b.Fatalf("floor sandbox %s: no IP: %v", p.Sandbox, err)
	}
	serving := waitServing(b, st.Status.Network.Ip)
	return startTrace{stages: []stageAt{{"CRI calls begin", begin}, {"StartContainer returned", started}, {"server answers a TCP connect", serving}}}
}

// callsBusy is how long at least one of the calls was under way, µs.
func callsBusy(calls []criCall) int64 {
	sorted := slices.Clone(calls)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].begin < sorted[j].begin })
	var busy, end int64
	for _, c := range sorted {
		begin := max(c.begin, end)
		if c.end > begin {
			busy += c.end - begin
			end = c.end
		}
	}
	return busy
}

func (t *startTrace) add(name string, at int64) { t.stages = append(t.stages, stageAt{name, at}) }

// total is the trace's first stage to its last, in ms.
func (t startTrace) total() float64 {
	return float64(t.stages[len(t.stages)-1].at-t.stages[0].at) / 1000
}

func totals(ts []startTrace) []float64 {
	var out []float64
	for _, t := range ts {
		out = append(out, t.total())
	}
	return out
}

func ratios(a, floor []float64) []float64 {
	var out []float64
	for i := range min(len(a), len(floor)) {
		out = append(out, a[i]/floor[i])
	}
	return out
}

// printTrace prints one variant's table: each stage's time from the stage
// before it and from the first, then the CRI calls' durations.
func printTrace(name string, ts []startTrace) {
	if len(ts) == 0 {
		return
	}
	fmt.Printf("\n%s\n", name)
	fmt.Printf("  %-62s %24s %24s\n", "stage", "from the stage before", "from the first")
	for s := range ts[0].stages {
		var step, cum []float64
		for _, t := range ts {
			if s >= len(t.stages) || t.stages[s].at == 0 { // not known this round
				continue
			}
			cum = append(cum, float64(t.stages[s].at-t.stages[0].at)/1000)
			if s > 0 && t.stages[s-1].at != 0 {
				step = append(step, float64(t.stages[s].at-t.stages[s-1].at)/1000)
			}
		}
		fmt.Printf("  %-62s %24s %24s\n", ts[0].stages[s].name, spread(step), spread(cum))
	}
	if len(ts[0].calls) > 0 {
		var own, cri []float64
		for _, t := range ts {
			busy := float64(callsBusy(t.calls)) / 1000
			cri = append(cri, busy)
			own = append(own, t.total()-busy)
		}
		fmt.Printf("  %-62s %24s\n", "the CRI calls (podshim's, overlaps counted once)", spread(cri))
		fmt.Printf("  %-62s %24s\n", "podunit's own: manifest → serving less the CRI calls", spread(own))
	}
	byName := map[string][]float64{}
	var names []string
	for _, t := range ts {
		sums := map[string]float64{}
		for _, c := range t.calls {
			sums[c.name] += float64(c.end-c.begin) / 1000
		}
		for n, d := range sums {
			if byName[n] == nil {
				names = append(names, n)
			}
			byName[n] = append(byName[n], d)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("    %-60s %24s\n", "podshim's "+n+" (all calls of a start)", spread(byName[n]))
	}
}

// spread is "median [min–max]" of ms figures.
func spread(ms []float64) string {
	if len(ms) == 0 {
		return ""
	}
	s := slices.Clone(ms)
	sort.Float64s(s)
	return fmt.Sprintf("%.1f [%.1f–%.1f]", median(s), s[0], s[len(s)-1])
}

func median(ms []float64) float64 {
	if len(ms) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ms)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// waitServing connects to the pod's server every millisecond until one
// connection is accepted, and returns when (µs, CLOCK_MONOTONIC).
func waitServing(b *testing.B, ip string) int64 {
	b.Helper()
	addr := net.JoinHostPort(ip, tracePort)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			at := monotonicMicros(b)
			c.Close()
			return at
		}
	}
	b.Fatalf("%s not answering within a minute", addr)
	return 0
}

// waitSyncIdle waits until no sync runs or is queued.
func waitSyncIdle(b *testing.B, conn *dbus.Conn) {
	b.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		p, err := conn.GetUnitPropertyContext(context.Background(), "podunit-sync.service", "ActiveState")
		if err == nil && (p.Value.Value() == "inactive" || p.Value.Value() == "failed") {
			if jobs, err := conn.ListJobsContext(context.Background()); err == nil && !slices.ContainsFunc(jobs, func(j dbus.JobStatus) bool { return j.Unit == "podunit-sync.service" }) {
				return
			}
		}
	}
	b.Fatal("podunit-sync.service still busy after 2 minutes")
}

var syncTimingsLine = regexp.MustCompile(`into the pass: settled ([\d.]+) ms, read ([\d.]+) ms, planned ([\d.]+) ms, units changed [\d.]+ ms \(the pass began at CLOCK_MONOTONIC (\d+) µs, ([\d.]+) ms after the process's main\)`)

// syncTimings finds the timings line of the sync pass that began after
// the manifest was written and returns its moments: the pass's start,
// settled, read, planned, and the process's main (µs, CLOCK_MONOTONIC).
func syncTimings(b *testing.B, after int64) [5]int64 {
	b.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out, _ := exec.Command("journalctl", "-q", "-o", "cat", "-u", "podunit-sync.service", "-n", "200", "--no-pager").Output()
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			m := syncTimingsLine.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			began, _ := strconv.ParseInt(m[4], 10, 64)
			if began < after {
				continue
			}
			at := func(ms string) int64 { f, _ := strconv.ParseFloat(ms, 64); return began + int64(f*1000) }
			f, _ := strconv.ParseFloat(m[5], 64)
			return [5]int64{began, at(m[1]), at(m[2]), at(m[3]), began - int64(f*1000)}
		}
	}
	b.Fatal("no timings line of a sync after the manifest was written")
	return [5]int64{}
}

var callTiming = regexp.MustCompile(`(\w+)=(\d+\.\d+)\+(\d+\.\d+)`)

// podshimTimings reads podshim's "start timings" line in the unit's
// journal: its main (µs, CLOCK_MONOTONIC) and its CRI calls, in the order
// they began (its own steps, config, spec and dial, are left out).
func podshimTimings(b *testing.B, unit string) (int64, []criCall) {
	b.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out, _ := exec.Command("journalctl", "-q", "-o", "cat", "-u", unit, "--no-pager").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.Contains(line, `msg="start timings"`) {
				continue
			}
			_, rest, _ := strings.Cut(line, "mainMonotonicUs=")
			main, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				b.Fatalf("%s: %q", unit, line)
			}
			var calls []criCall
			for _, m := range callTiming.FindAllStringSubmatch(line, -1) {
				if m[1] == "config" || m[1] == "spec" || m[1] == "dial" || m[1] == "readyAt" {
					continue
				}
				off, _ := strconv.ParseFloat(m[2], 64)
				d, _ := strconv.ParseFloat(m[3], 64)
				begin := main + int64(off*1000)
				calls = append(calls, criCall{name: m[1], begin: begin, end: begin + int64(d*1000)})
			}
			return main, calls
		}
	}
	b.Fatalf("%s: no start timings in its journal", unit)
	return 0, nil
}

func prop(b *testing.B, props map[string]any, name string) int64 {
	b.Helper()
	v, ok := props[name].(uint64)
	if !ok || v == 0 {
		b.Fatalf("no %s", name)
	}
	return int64(v)
}

func monotonicMicros(b *testing.B) int64 { return monotonic(b).Microseconds() }

func startUnit(b *testing.B, conn *dbus.Conn, name string) {
	b.Helper()
	done := make(chan string, 1)
	if _, err := conn.StartUnitContext(context.Background(), name, "replace", done); err != nil {
		b.Fatal(err)
	}
	if r := <-done; r != "done" {
		b.Fatalf("start %s: %s", name, r)
	}
}

func run(b *testing.B, name string, args ...string) {
	b.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}
