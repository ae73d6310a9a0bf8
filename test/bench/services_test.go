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
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/google/nftables"
	"github.com/miekg/dns"

	"github.com/podunit/podunit/cni/service"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
)

// The Services' benchmarks in the test bed (docs/benchmarks.md,
// "Services"): what a request through a ClusterIP costs against the same
// request straight to the pod, how long a readiness change takes to reach
// the rules and the names, and the resolver's answers and memory. The pods
// run test/bench/echo (BENCH_ECHO: its path, which the test bed sees) from
// a hostPath mount, served through `podunit sync` from manifests, as a
// user's are.

const benchManifests = "/etc/podunit/manifests"

// echoBinary is the echo server's path, or a skip.
func echoBinary(b *testing.B) string {
	b.Helper()
	p := os.Getenv("BENCH_ECHO")
	if p == "" {
		b.Skip("BENCH_ECHO: the path of a static build of test/bench/echo (make bench builds it)")
	}
	p, err := filepath.Abs(p)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// echoPod is a pod labelled app: name running the echo server on 9000;
// with readyFlag, its readiness probe reads readyFlag/ready (a hostPath
// directory the benchmark writes to), every second, one failure enough.
func echoPod(name, echo, readyFlag string) string {
	probe, flagMount, flagVolume := "", "", ""
	if readyFlag != "" {
		probe = `
    readinessProbe:
      exec: {command: ["cat", "/flag/ready"]}
      periodSeconds: 1
      failureThreshold: 1`
		flagMount = "\n    - {name: flag, mountPath: /flag, readOnly: true}"
		flagVolume = fmt.Sprintf("\n  - {name: flag, hostPath: {path: %s, type: Directory}}", readyFlag)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %[1]s
  labels: {app: %[1]s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: %[2]s
    command: ["/echo/%[3]s", ":9000"]
    ports:
    - {containerPort: 9000}%[4]s
    volumeMounts:
    - {name: bin, mountPath: /echo, readOnly: true}%[5]s
  volumes:
  - {name: bin, hostPath: {path: %[6]s, type: Directory}}%[7]s
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  selector: {app: %[1]s}
  ports:
  - {port: 80, targetPort: 9000}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s-names}
spec:
  clusterIP: None
  selector: {app: %[1]s}
  ports:
  - {port: 9000}
`, name, image, filepath.Base(echo), probe, flagMount, filepath.Dir(echo), flagVolume)
}

// served writes the manifest of an echo pod and its Services, has the sync
// serve it (the benchmarks stopped podunit.path: see connect) and waits
// until a request through the ClusterIP is answered. It returns the
// ClusterIP and the pod's IP; the pod and its Services go when b ends.
func served(b *testing.B, conn *dbus.Conn, name, manifest string) (clusterIP, podIP string) {
	b.Helper()
	file := filepath.Join(benchManifests, name+".yaml")
	if err := os.WriteFile(file, []byte(manifest), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		os.Remove(file)
		syncOnce(b)
		unit := units.ServiceName("default", name)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if list, err := conn.ListUnitsByNamesContext(context.Background(), []string{unit}); err == nil && (len(list) == 0 || list[0].LoadState == "not-found") {
				return
			}
		}
	})
	syncOnce(b)
	deadline := time.Now().Add(2 * time.Minute)
	for ; time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		tab, err := service.ReadTable(service.DefaultTablePath)
		st, serr := podshim.ReadState(podshim.DefaultStateDir, "default", name)
		if err != nil || serr != nil || st.Status.PodIP == "" {
			continue
		}
		for _, s := range tab.Services {
			if s.Namespace == "default" && s.Name == name && s.ClusterIP.IsValid() {
				clusterIP = s.ClusterIP.String()
			}
		}
		if clusterIP != "" && echoOnce(net.JoinHostPort(clusterIP, "80")) == nil {
			return clusterIP, st.Status.PodIP
		}
	}
	b.Fatalf("%s not answering through its ClusterIP %q within 2 minutes", name, clusterIP)
	return "", ""
}

// syncOnce runs a sync (exit status 3, some manifest invalid, is a sync
// that ran too).
func syncOnce(b testing.TB) {
	exec.Command("systemctl", "start", "podunit-sync.service").Run()
}

// echoOnce is one request as a client makes it: connect, send a line,
// read it back, close.
func echoOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("%s answered %q", addr, line)
	}
	return nil
}

// quantile is the q-quantile of sorted durations, in milliseconds.
func quantile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := min(len(sorted)-1, int(math.Ceil(q*float64(len(sorted))))-1)
	return float64(sorted[max(i, 0)].Microseconds()) / 1000
}

func meanMs(ds []time.Duration) float64 {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return float64(sum.Microseconds()) / 1000 / float64(len(ds))
}

// BenchmarkClusterIPLatency measures a request (a new TCP connection, a
// line sent and echoed, the connection closed) through a Service's
// ClusterIP, whose rules DNAT it to the pod, against the same request
// straight to the pod's IP (the floor), taking turns in the same run: each
// iteration makes 200 pairs, in alternating order. Reported: the mean,
// p50 and p99 of each, in ms, and the ratios of the means and medians
// (clusterip/pod; the goal is at most 1.05).
func BenchmarkClusterIPLatency(b *testing.B) {
	conn, _ := connect(b)
	echo := echoBinary(b)
	clusterIP, podIP := served(b, conn, "bench-latency", echoPod("bench-latency", echo, ""))
	viaService, direct := net.JoinHostPort(clusterIP, "80"), net.JoinHostPort(podIP, "9000")
	var svc, pod []time.Duration
	timed := func(addr string, into *[]time.Duration) {
		start := time.Now()
		if err := echoOnce(addr); err != nil {
			b.Fatal(err)
		}
		*into = append(*into, time.Since(start))
	}
	// Warm both paths (ARP, the conntrack zone, the server's goroutines).
	for range 50 {
		timed(viaService, &svc)
		timed(direct, &pod)
	}
	svc, pod = svc[:0], pod[:0]
	const pairs = 200
	for i := 0; b.Loop(); i++ {
		for j := range pairs {
			if (i+j)%2 == 0 {
				timed(viaService, &svc)
				timed(direct, &pod)
			} else {
				timed(direct, &pod)
				timed(viaService, &svc)
			}
		}
	}
	slices.Sort(svc)
	slices.Sort(pod)
	b.ReportMetric(meanMs(svc), "clusterip-ms")
	b.ReportMetric(meanMs(pod), "pod-ms")
	b.ReportMetric(quantile(svc, 0.5), "clusterip-p50-ms")
	b.ReportMetric(quantile(pod, 0.5), "pod-p50-ms")
	b.ReportMetric(quantile(svc, 0.99), "clusterip-p99-ms")
	b.ReportMetric(quantile(pod, 0.99), "pod-p99-ms")
	b.ReportMetric(meanMs(svc)/meanMs(pod), "mean-ratio")
	b.ReportMetric(quantile(svc, 0.5)/quantile(pod, 0.5), "p50-ratio")
	b.ReportMetric(0, "ns/op")
}

// observe polls probe every interval from now until it returns true, and
// returns the time it first did (zero after timeout).
func observe(probe func() bool, interval, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if probe() {
			return time.Now()
		}
		time.Sleep(interval)
	}
	return time.Time{}
}

// BenchmarkReadinessToRulesAndName measures how long a pod's readiness
// change takes to reach the node's Service rules and its names: from the
// moment podshim's state file says the pod's Ready condition changed (the
// probe's result recorded) to the moment the ClusterIP Service's rules in
// table ip podunit gain or lose the pod's endpoint chain, and the moment
// the headless Service's name answers with or without the pod's address.
// Each iteration makes the pod unready (its probe's file removed) and
// ready again: two samples. The state file and the name are polled every
// 2 ms, the table's chains (over netlink) every 2 ms: that is the
// measurement's resolution.
// Reported: p50 and p99 of each delay in ms (the goal is a p99 of at most
// 1 s), and the probe's own delay from the file to the state (its period
// is 1 s) for reference.
func BenchmarkReadinessToRulesAndName(b *testing.B) {
	conn, _ := connect(b)
	echo := echoBinary(b)
	flag, err := os.MkdirTemp("/var/tmp", "bench-ready-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(flag) })
	if err := os.WriteFile(filepath.Join(flag, "ready"), []byte("ok\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	_, podIP := served(b, conn, "bench-ready", echoPod("bench-ready", echo, flag))
	tab, err := service.ReadTable(service.DefaultTablePath)
	if err != nil {
		b.Fatal(err)
	}
	resolver := net.JoinHostPort(tab.ClusterDNS.String(), "53")
	name := "bench-ready-names.default.svc." + tab.ClusterDomain + "."
	chain := "endpoint/default/bench-ready/tcp/80/" + podIP + "/"

	ready := func() bool {
		st, err := podshim.ReadState(podshim.DefaultStateDir, "default", "bench-ready")
		return err == nil && st.ServiceStatus().Ready
	}
	nl, err := nftables.New(nftables.AsLasting())
	if err != nil {
		b.Fatal(err)
	}
	defer nl.CloseLasting()
	inRules := func() bool {
		chains, err := nl.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
		if err != nil {
			b.Error(err)
			return false
		}
		return slices.ContainsFunc(chains, func(c *nftables.Chain) bool {
			return c.Table.Name == "podunit" && strings.HasPrefix(c.Name, chain)
		})
	}
	client := &dns.Client{Timeout: 500 * time.Millisecond}
	inName := func() bool {
		r, _, err := client.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), resolver)
		if err != nil {
			return false
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok && a.A.String() == podIP {
				return true
			}
		}
		return false
	}
	if !ready() || !inRules() || !inName() {
		b.Fatalf("bench-ready at the start: ready %v, in the rules %v, in the name %v", ready(), inRules(), inName())
	}
	var probeDelay, toRules, toName []time.Duration
	sample := func(want bool) {
		flip := time.Now()
		if want {
			err = os.WriteFile(filepath.Join(flag, "ready"), []byte("ok\n"), 0o644)
		} else {
			err = os.Remove(filepath.Join(flag, "ready"))
		}
		if err != nil {
			b.Fatal(err)
		}
		is := func(f func() bool) func() bool { return func() bool { return f() == want } }
		var wg sync.WaitGroup
		var atState, atRules, atName time.Time
		wg.Add(3)
		go func() { defer wg.Done(); atState = observe(is(ready), 2*time.Millisecond, 30*time.Second) }()
		go func() { defer wg.Done(); atRules = observe(is(inRules), 2*time.Millisecond, 30*time.Second) }()
		go func() { defer wg.Done(); atName = observe(is(inName), 2*time.Millisecond, 30*time.Second) }()
		wg.Wait()
		if atState.IsZero() || atRules.IsZero() || atName.IsZero() {
			b.Fatalf("readiness %v: state at %v, rules at %v, name at %v (zero: not within 30 s)", want, atState, atRules, atName)
		}
		probeDelay = append(probeDelay, atState.Sub(flip))
		toRules = append(toRules, max(0, atRules.Sub(atState)))
		toName = append(toName, max(0, atName.Sub(atState)))
	}
	for b.Loop() {
		sample(false)
		sample(true)
	}
	for _, ds := range [][]time.Duration{probeDelay, toRules, toName} {
		slices.Sort(ds)
	}
	b.ReportMetric(quantile(toRules, 0.5), "rules-p50-ms")
	b.ReportMetric(quantile(toRules, 0.99), "rules-p99-ms")
	b.ReportMetric(quantile(toName, 0.5), "name-p50-ms")
	b.ReportMetric(quantile(toName, 0.99), "name-p99-ms")
	b.ReportMetric(quantile(probeDelay, 0.5), "probe-p50-ms")
	b.ReportMetric(float64(len(toRules)), "samples")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkResolverInTestBed asks podunit-dns, the running daemon, for a
// Service's name over UDP from 8 clients at once (each one question at a
// time, as a pod's resolver asks) and reports its answers a second, then
// the memory of both daemons (Rss, Pss and Private_Dirty from
// smaps_rollup, in KiB) with the Services of the run.
func BenchmarkResolverInTestBed(b *testing.B) {
	conn, _ := connect(b)
	echo := echoBinary(b)
	served(b, conn, "bench-names", echoPod("bench-names", echo, ""))
	tab, err := service.ReadTable(service.DefaultTablePath)
	if err != nil {
		b.Fatal(err)
	}
	resolver := net.JoinHostPort(tab.ClusterDNS.String(), "53")
	name := "bench-names.default.svc." + tab.ClusterDomain + "."
	const clients = 8
	per := max(1, b.N*1000/clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("udp", resolver)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			co := &dns.Conn{Conn: c}
			client := &dns.Client{Timeout: time.Second}
			m := new(dns.Msg).SetQuestion(name, dns.TypeA)
			for range per {
				r, _, err := client.ExchangeWithConn(m, co)
				if err != nil || len(r.Answer) == 0 {
					errs <- fmt.Errorf("%s: %v %v", name, r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(per*clients)/took.Seconds(), "answers/s")
	for _, d := range []struct{ unit, metric string }{{"podunit-dns.service", "dns"}, {"podunit-proxy.service", "proxy"}} {
		p, err := conn.GetServicePropertyContext(context.Background(), d.unit, "MainPID")
		if err != nil {
			b.Fatal(err)
		}
		m, err := smapsRollup(int(p.Value.Value().(uint32)))
		if err != nil {
			b.Fatalf("%s: %v", d.unit, err)
		}
		b.ReportMetric(float64(m["Rss"]), d.metric+"-rss-KiB")
		b.ReportMetric(float64(m["Pss"]), d.metric+"-pss-KiB")
		b.ReportMetric(float64(m["Private_Dirty"]), d.metric+"-private-dirty-KiB")
	}
	b.ReportMetric(0, "ns/op")
}

// smapsRollup reads a process's /proc/PID/smaps_rollup: each figure in
// KiB by name (Rss, Pss, Private_Dirty, …).
func smapsRollup(pid int) (map[string]int64, error) {
	exec.Command("sync").Run() // pages written moments ago count as dirty until written back
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[2] == "kB" {
			v, _ := strconv.ParseInt(fields[1], 10, 64)
			out[strings.TrimSuffix(fields[0], ":")] = v
		}
	}
	return out, sc.Err()
}
