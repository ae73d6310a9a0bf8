package podshim

import (
	"bufio"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/criconfig"
)

// Host is what podshim knows of the machine, for the downward API and the
// OOM score of Burstable pods.
type Host = criconfig.Host

// ReadHost describes this machine.
func ReadHost() Host {
	h := Host{CPUs: runtime.NumCPU(), Memory: memTotal(), IPs: hostIPs()}
	h.NodeName, _ = os.Hostname()
	return h
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// hostIPs are the host's addresses for status.hostIP: those of the
// interface with the default route, else of the first interface that is up
// and not a loopback or a container bridge.
func hostIPs() []string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	preferred := defaultRouteInterface()
	sort.SliceStable(ifaces, func(i, j int) bool { return ifaces[i].Name == preferred && ifaces[j].Name != preferred })
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 ||
			strings.HasPrefix(iface.Name, "veth") || strings.HasPrefix(iface.Name, "podunit") || strings.HasPrefix(iface.Name, "cni") {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		var ips []string
		for _, a := range addrs {
			if ipnet, ok := a.(*net.IPNet); ok && ipnet.IP.IsGlobalUnicast() {
				ips = append(ips, ipnet.IP.String())
			}
		}
		if len(ips) > 0 {
			return ips
		}
	}
	return nil
}

// defaultRouteInterface names the interface of the IPv4 default route.
func defaultRouteInterface() string {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "00000000" {
			return f[0]
		}
	}
	return ""
}

// Resolver configurations podunit reads for the host's DNS: systemd-resolved's
// upstream servers when it runs (its stub at 127.0.0.53 is unreachable from
// a pod's network namespace), else the classic file.
var resolvConfCandidates = []string{"/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"}

// DefaultResolvConf is the host's resolver configuration file.
func DefaultResolvConf() string {
	for _, p := range resolvConfCandidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// readHostDNS reads the host's resolver configuration file, which every
// pod's DNS starts from (criconfig.Input.HostDNS); nil when there is none.
func readHostDNS(path string, log *slog.Logger) *runtimeapi.DNSConfig {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		log.Warn("cannot read the host's resolver configuration; the pods get none from it", "file", path, "err", err)
		return nil
	}
	return criconfig.ParseResolvConf(b)
}
