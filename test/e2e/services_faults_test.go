//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podunit/podunit/cni/service"
)

// Services under faults and through their lifecycle (#24): an edit of a
// Service's ports and its deletion, conflicts between manifests, the
// rules' daemon and the resolver killed while traffic flows. The reboot
// and the power cut are checked in the reboot story (reboot_test.go).

// twoPortPod is a pod labelled app: name whose httpd answers "<name> 80"
// on port 80 (named http) and "<name> 8080" on 8080 (named alt); hostPort,
// when not 0, maps port 80 on the node.
func twoPortPod(name string, hostPort int) string {
	host := ""
	if hostPort != 0 {
		host = fmt.Sprintf("\n      hostPort: %d", hostPort)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %[1]s
  labels: {app: %[1]s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: localhost/podunit/busybox:1.35
    command: ["sh", "-c"]
    args:
    - |
      mkdir -p /www80 /www8080 && echo "%[1]s 80" >/www80/index.html && echo "%[1]s 8080" >/www8080/index.html
      httpd -f -p 80 -h /www80 & httpd -f -p 8080 -h /www8080 & trap 'kill %%1 %%2; exit 0' TERM; wait
    ports:
    - name: http
      containerPort: 80%[2]s
    - name: alt
      containerPort: 8080
`, name, host)
}

// serviceTable is the node's Service table as the sync wrote it, by
// namespace/name.
func serviceTable(t *testing.T) map[string]service.Service {
	t.Helper()
	tab, err := service.ReadTable(service.DefaultTablePath)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]service.Service{}
	for _, s := range tab.Services {
		out[s.Key()] = s
	}
	return out
}

// waitServiceIP waits for the Service's ClusterIP in the node's table.
func waitServiceIP(t *testing.T, name string) string {
	t.Helper()
	var ip string
	waitFor(t, "a ClusterIP for "+name, func() (bool, error) {
		s, ok := serviceTable(t)["default/"+name]
		ip = s.ClusterIP.String()
		return ok && s.ClusterIP.IsValid(), nil
	})
	return ip
}

// lookupA asks the node's resolver (clusterDNS, as pods do) for name's A
// records: the addresses and the answer's rcode.
func lookupA(name string) ([]string, int, error) { return lookupWithin(name, time.Second) }

// lookupWithin is lookupA, waiting up to timeout for the answer.
func lookupWithin(name string, timeout time.Duration) ([]string, int, error) {
	server := "10.96.0.10"
	if tab, err := service.ReadTable(service.DefaultTablePath); err == nil && tab.ClusterDNS.IsValid() {
		server = tab.ClusterDNS.String()
	}
	c := &dns.Client{Timeout: timeout}
	r, _, err := c.Exchange(new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeA), net.JoinHostPort(server, "53"))
	if err != nil {
		return nil, 0, err
	}
	var addrs []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addrs = append(addrs, a.A.String())
		}
	}
	return addrs, r.Rcode, nil
}

// waitName waits until name answers exactly want.
func waitName(t *testing.T, name, want string) {
	t.Helper()
	waitFor(t, name+" answering "+want, func() (bool, error) {
		addrs, _, err := lookupA(name)
		return err == nil && len(addrs) == 1 && addrs[0] == want, fmt.Errorf("%v %v", addrs, err)
	})
}

// refused tells whether a connection to addr is refused at once (a TCP
// reset), as kube-proxy refuses what no Service serves, rather than
// answered or left to time out.
func refused(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s accepted the connection", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: %v, want the connection refused", addr, err)
	}
	return nil
}

// nftList is `nft list` of args (e.g. "table", "ip", "podunit").
func nftList(args ...string) string {
	out, _ := exec.Command("nft", append([]string{"list"}, args...)...).CombinedOutput()
	return string(out)
}

// foreignTable makes a table of another tool (a firewall's), with a
// chain and a rule, and returns how nft lists it; it goes when the test
// ends.
func foreignTable(t *testing.T) string {
	t.Helper()
	for _, c := range [][]string{
		{"add", "table", "ip", "e2e-foreign"},
		{"add", "chain", "ip", "e2e-foreign", "input", "{ type filter hook input priority 0 ; }"},
		{"add", "rule", "ip", "e2e-foreign", "input", "tcp", "dport", "9", "counter", "accept"},
	} {
		if out, err := exec.Command("nft", c...).CombinedOutput(); err != nil {
			t.Fatalf("nft %v: %v\n%s", c, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("nft", "delete", "table", "ip", "e2e-foreign").Run() })
	return nftList("table", "ip", "e2e-foreign")
}

// syncError waits for an error of the sync, in its journal since since,
// that names every one of files.
func syncError(t *testing.T, since time.Time, files ...string) string {
	t.Helper()
	var found string
	waitFor(t, "the sync's error naming "+strings.Join(files, " and "), func() (bool, error) {
		for _, line := range strings.Split(journal(t, "podunit-sync.service", since), "\n") {
			all := true
			for _, f := range files {
				all = all && strings.Contains(line, f)
			}
			if all {
				found = line
				return true, nil
			}
		}
		runSync(t)
		return false, nil
	})
	t.Logf("the sync says: %s", found)
	return found
}

// User story (#24): "I change the port of my Service and later remove the
// Service. The new port answers at once and the old one is refused; once
// removed, its address, its name and its rules are gone — and my other
// Service and my firewall's table are as they were."
func TestServiceEditAndDeletion(t *testing.T) {
	foreign := foreignTable(t)
	pod := twoPortPod("svcf-edit", 0)
	svc := func(port, target string) string {
		return fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata: {name: svcf-edit}
spec:
  selector: {app: svcf-edit}
  ports:
  - {name: web, port: %s, targetPort: %s}
`, port, target)
	}
	writeManifest(t, "e2e-svcf-edit.yaml", pod+svc("80", "http"))
	writeManifest(t, "e2e-svcf-other.yaml", `apiVersion: v1
kind: Service
metadata: {name: svcf-other}
spec:
  selector: {app: svcf-edit}
  ports:
  - {port: 81, targetPort: 8080}
`)
	unit := waitActive(t, "default", "svcf-edit")
	invocation := unitProps(t, unit)["InvocationID"]
	ip, other := waitServiceIP(t, "svcf-edit"), waitServiceIP(t, "svcf-other")
	answers := func(addr, want string) {
		t.Helper()
		waitFor(t, addr+" answering "+want, func() (bool, error) {
			body, err := httpGet(addr, "/")
			return body == want, fmt.Errorf("%q %v", body, err)
		})
	}
	answers(ip+":80", "svcf-edit 80")
	answers(other+":81", "svcf-edit 8080")
	waitName(t, "svcf-edit.default.svc.cluster.local", ip)
	waitName(t, "svcf-other.default.svc.cluster.local", other)

	// The port edited: 8081 to the pod's alt port.
	writeFile(t, "e2e-svcf-edit.yaml", pod+svc("8081", "alt"))
	answers(ip+":8081", "svcf-edit 8080")
	// One transaction: the rules that answer 8081 no longer have 80.
	if err := refused(ip + ":80"); err != nil {
		t.Errorf("the edited Service's old port: %v", err)
	}
	if got := serviceTable(t)["default/svcf-edit"].ClusterIP.String(); got != ip {
		t.Errorf("the edit moved the ClusterIP from %s to %s", ip, got)
	}
	if got := unitProps(t, unit)["InvocationID"]; fmt.Sprint(got) != fmt.Sprint(invocation) {
		t.Errorf("the Service's edit restarted its pod")
	}

	// The Service removed, its pod kept.
	writeFile(t, "e2e-svcf-edit.yaml", pod)
	waitFor(t, "svcf-edit gone from the node's Service table", func() (bool, error) {
		_, ok := serviceTable(t)["default/svcf-edit"]
		return !ok, nil
	})
	waitFor(t, "svcf-edit's rules gone", func() (bool, error) {
		rules := nftList("table", "ip", "podunit")
		return !strings.Contains(rules, "default/svcf-edit") && !strings.Contains(rules, ip+" "), fmt.Errorf("%s", rules)
	})
	waitFor(t, "svcf-edit's name gone", func() (bool, error) {
		addrs, rcode, err := lookupA("svcf-edit.default.svc.cluster.local")
		return err == nil && rcode == dns.RcodeNameError, fmt.Errorf("%v rcode %d %v", addrs, rcode, err)
	})
	if err := refused(ip + ":8081"); err != nil {
		t.Errorf("the removed Service's address: %v", err)
	}

	// Nothing else touched.
	answers(other+":81", "svcf-edit 8080")
	waitName(t, "svcf-other.default.svc.cluster.local", other)
	if got := nftList("table", "ip", "e2e-foreign"); got != foreign {
		t.Errorf("another tool's table changed:\nbefore:\n%s\nafter:\n%s", foreign, got)
	}
	if got := unitProps(t, unit)["InvocationID"]; fmt.Sprint(got) != fmt.Sprint(invocation) {
		t.Errorf("the Service's removal restarted its pod")
	}
}

// User story (#24): "I add a manifest that asks for an address or a port
// that a running Service or pod already holds, or that my node port range
// has no room for. podunit tells me which two files clash and which one
// keeps it; what ran keeps running."
func TestServiceConflicts(t *testing.T) {
	const (
		clusterIP = "10.96.0.190"
		nodePort  = 30190
		hostPort  = 30290 // outside the node port range: the pod's own
	)
	// The running app: its pod maps a hostPort, its Service has an explicit
	// ClusterIP and node port. Files are read in name order: c2 comes after
	// c0 and c1, before c3 and c5.
	writeManifest(t, "e2e-svcf-c2-run.yaml", twoPortPod("svcf-run", hostPort)+fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata: {name: svcf-run}
spec:
  type: NodePort
  clusterIP: %s
  selector: {app: svcf-run}
  ports:
  - {port: 80, targetPort: 80, nodePort: %d}
`, clusterIP, nodePort))
	waitActive(t, "default", "svcf-run")
	running := func(when string) {
		t.Helper()
		for _, addr := range []string{fmt.Sprintf("%s:80", clusterIP), fmt.Sprintf("127.0.0.1:%d", nodePort), net.JoinHostPort(hostPortAddr(), strconv.Itoa(hostPort))} {
			var body string
			waitFor(t, addr+" answering "+when, func() (bool, error) {
				var err error
				body, err = httpGet(addr, "/")
				return body == "svcf-run 80", fmt.Errorf("%q %v", body, err)
			})
		}
		if s := serviceTable(t)["default/svcf-run"]; s.ClusterIP.String() != clusterIP || len(s.Ports) != 1 || s.Ports[0].NodePort != nodePort {
			t.Errorf("%s: the running Service holds %v %v, want %s and node port %d", when, s.ClusterIP, s.Ports, clusterIP, nodePort)
		}
	}
	running("at first")
	notServed := func(name string) {
		t.Helper()
		runSync(t)
		if _, ok := serviceTable(t)["default/"+name]; ok {
			t.Errorf("%s is served, though what it asks for is taken", name)
		}
	}
	const runFile = "e2e-svcf-c2-run.yaml"

	t.Run("same nodePort", func(t *testing.T) {
		since := time.Now()
		writeManifest(t, "e2e-svcf-c3-np.yaml", fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: svcf-np}
spec:
  type: NodePort
  selector: {app: svcf-run}
  ports:
  - {port: 80, nodePort: %d}
`, nodePort))
		line := syncError(t, since, "e2e-svcf-c3-np.yaml", runFile)
		if !strings.Contains(line, strconv.Itoa(nodePort)) {
			t.Errorf("the error does not say which port: %s", line)
		}
		notServed("svcf-np")
		running("with a second Service asking for its node port")
	})

	t.Run("clusterIP given twice, the newcomer first in read order", func(t *testing.T) {
		since := time.Now()
		writeManifest(t, "e2e-svcf-c1-ip.yaml", fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: svcf-ip}
spec:
  clusterIP: %s
  selector: {app: svcf-run}
  ports:
  - {port: 80}
`, clusterIP))
		line := syncError(t, since, "e2e-svcf-c1-ip.yaml", runFile)
		if !strings.Contains(line, clusterIP) {
			t.Errorf("the error does not say which address: %s", line)
		}
		// The Service that held it first keeps it, sync after sync.
		for range 2 {
			notServed("svcf-ip")
			running("with a Service earlier in read order asking for its ClusterIP")
		}
		// Its own file is not blamed: an edit of it still applies.
		if j := journal(t, "podunit-sync.service", since); strings.Contains(j, runFile+" is invalid") {
			t.Errorf("the running Service's file is called invalid, though it held the address first:\n%s", j)
		}
	})

	t.Run("a LoadBalancer's port is a running pod's hostPort, the newcomer first in read order", func(t *testing.T) {
		since := time.Now()
		writeManifest(t, "e2e-svcf-c0-lb.yaml", fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: svcf-lb}
spec:
  type: LoadBalancer
  selector: {app: svcf-run}
  ports:
  - {port: %d, targetPort: 8080}
`, hostPort))
		line := syncError(t, since, "e2e-svcf-c0-lb.yaml", runFile)
		if !strings.Contains(line, "hostPort") {
			t.Errorf("the error does not say it is a hostPort: %s", line)
		}
		notServed("svcf-lb")
		running("with a LoadBalancer asking for its pod's hostPort")
		if j := journal(t, "podunit-sync.service", since); strings.Contains(j, runFile+" is invalid") {
			t.Errorf("the running pod's file is called invalid, though it held the port first:\n%s", j)
		}
	})

	t.Run("node port range exhausted", func(t *testing.T) {
		withConfig(t, fmt.Sprintf("serviceNodePortRange: %d-%d", nodePort, nodePort+1))
		since := time.Now()
		writeManifest(t, "e2e-svcf-c5-full.yaml", `apiVersion: v1
kind: Service
metadata: {name: svcf-full}
spec:
  type: NodePort
  selector: {app: svcf-run}
  ports:
  - {name: a, port: 80}
  - {name: b, port: 8080}
`)
		syncError(t, since, "e2e-svcf-c5-full.yaml", "serviceNodePortRange")
		notServed("svcf-full")
		running("with the node port range exhausted")
	})
	running("at the end")
}

// User story (#24): "The unit that programs the rules and the resolver
// crash (killed with SIGKILL) while my app serves. No request through the
// rules fails; names answer again as soon as the resolver is back; the
// rules after the restart are the rules before, not twice."
func TestProxyAndResolverKilled(t *testing.T) { killedUnderTraffic(t, 1) }

// The same, ten times over in one run (about a minute): only with
// PODUNIT_E2E_SLOW=1 (make test-e2e-slow).
func TestProxyAndResolverKilledRepeatedly(t *testing.T) {
	if os.Getenv("PODUNIT_E2E_SLOW") == "" {
		t.Skip("slow: PODUNIT_E2E_SLOW=1 (make test-e2e-slow)")
	}
	killedUnderTraffic(t, 10)
}

// killedUnderTraffic kills the rules' daemon and the resolver rounds
// times each, while a client connects through a ClusterIP and asks a name.
func killedUnderTraffic(t *testing.T, rounds int) {
	writeManifest(t, "e2e-svcf-kill.yaml", twoPortPod("svcf-kill", 0)+`---
apiVersion: v1
kind: Service
metadata: {name: svcf-kill}
spec:
  selector: {app: svcf-kill}
  ports:
  - {port: 80}
`)
	waitActive(t, "default", "svcf-kill")
	ip := waitServiceIP(t, "svcf-kill")
	name := "svcf-kill.default.svc.cluster.local"
	waitFor(t, ip+":80 answering", func() (bool, error) {
		body, err := httpGet(ip+":80", "/")
		return body == "svcf-kill 80", fmt.Errorf("%q %v", body, err)
	})
	waitName(t, name, ip)
	rulesBefore := nftList("table", "ip", "podunit")

	// A client: a new connection through the ClusterIP every 10 ms; a
	// name asked every 20 ms.
	var (
		mu             sync.Mutex
		requests, lost int
		lostWhy        []string
		answered       []time.Time // when a question the name answered was asked
		questions      int
		unanswered     []string
		slowest        time.Duration // the longest wait for an answer
		retried        []string      // when a question asked twice was asked
		kills          []string      // when a daemon was killed
		stop           = make(chan struct{})
		wg             sync.WaitGroup
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			body, err := httpGet(ip+":80", "/")
			mu.Lock()
			requests++
			if body != "svcf-kill 80" {
				lost++
				lostWhy = append(lostWhy, fmt.Sprintf("%s: %q %v", time.Now().Format("15:04:05.000"), body, err))
			}
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			// As a pod's resolver asks: 5 s for an answer, twice.
			asked := time.Now()
			var (
				addrs []string
				err   error
			)
			tries := 0
			for tries < 2 {
				tries++
				if addrs, _, err = lookupWithin(name, 5*time.Second); err == nil {
					break
				}
			}
			took := time.Since(asked)
			mu.Lock()
			questions++
			if tries > 1 {
				retried = append(retried, asked.Format("15:04:05.000"))
			}
			if err == nil && len(addrs) == 1 && addrs[0] == ip {
				answered = append(answered, asked)
				slowest = max(slowest, took)
			} else {
				unanswered = append(unanswered, fmt.Sprintf("%s: %v %v", asked.Format("15:04:05.000"), addrs, err))
			}
			mu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	kill := func(unit string) (killed time.Time, restartDelay time.Duration) {
		t.Helper()
		p := unitProps(t, unit)
		pid, _ := p["MainPID"].(uint32)
		if pid == 0 || p["ActiveState"] != "active" {
			t.Fatalf("%s: %v, MainPID %v", unit, p["ActiveState"], p["MainPID"])
		}
		restartDelay = time.Duration(p["RestartUSec"].(uint64)) * time.Microsecond
		if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed = time.Now()
		mu.Lock()
		kills = append(kills, unit+" "+killed.Format("15:04:05.000"))
		mu.Unlock()
		waitFor(t, unit+" restarted", func() (bool, error) {
			p := unitProps(t, unit)
			again, _ := p["MainPID"].(uint32)
			return p["ActiveState"] == "active" && again != 0 && again != pid, nil
		})
		t.Logf("%s killed (pid %d), active again after %s", unit, pid, time.Since(killed).Round(time.Millisecond))
		return killed, restartDelay
	}

	for round := range rounds {
		if rounds > 1 {
			t.Logf("round %d", round+1)
		}
		// The rules' daemon: the kernel's rules carry on without it.
		kill("podunit-proxy.service")
		time.Sleep(2 * time.Second) // its rebuild, with traffic flowing
		waitFor(t, "the rules rebuilt as they were", func() (bool, error) {
			return nftList("table", "ip", "podunit") == rulesBefore, nil
		})
		if n := strings.Count(nftList("tables"), "table ip podunit"); n != 1 {
			t.Errorf("%d tables ip podunit after the restart, want 1", n)
		}

		// The resolver: systemd keeps its sockets while it restarts, so a
		// question asked meanwhile waits and is answered once it is back,
		// within a pod resolver's timeout, rather than refused.
		killed, delay := kill("podunit-dns.service")
		waitFor(t, name+" answering again", func() (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return len(answered) > 0 && answered[len(answered)-1].After(killed), nil
		})
		t.Logf("the resolver restarted (RestartSec %s)", delay)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d requests through the ClusterIP while both were killed and restarted, %d lost", requests, lost)
	if lost > 0 || requests < 100 {
		t.Errorf("%d of %d requests through the ClusterIP failed: %s", lost, requests, strings.Join(lostWhy, "; "))
	}
	t.Logf("%d questions for %s, %d unanswered; the longest wait for an answer %s", questions, name, len(unanswered), slowest.Round(time.Millisecond))
	if len(unanswered) > 0 {
		t.Errorf("questions not answered (as a pod's resolver asks, twice, 5 s each): %s", strings.Join(unanswered, "; "))
	}
	// A question the killed resolver had read but not answered is lost
	// with it (the client asks again after 5 s): at most one a kill; the
	// others wait in the kept socket.
	t.Logf("questions asked a second time: %v; kills: %v", retried, kills)
	if len(retried) > rounds {
		t.Errorf("%d questions needed a second try over %d kills of the resolver: more than the one each kill can take with it", len(retried), rounds)
	}
	if got := nftList("table", "ip", "podunit"); got != rulesBefore {
		t.Errorf("the rules changed across the restarts:\nbefore:\n%s\nafter:\n%s", rulesBefore, got)
	}
	if out, err := exec.Command("ip", "-o", "link", "show", "podunit-dns").CombinedOutput(); err != nil || strings.Count(string(out), "\n") != 1 {
		t.Errorf("the resolver's interface after its restart: %v\n%s", err, out)
	}
}
