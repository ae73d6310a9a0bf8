package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"
	"sigs.k8s.io/knftables"

	"github.com/podunit/podunit/cni/names"
	"github.com/podunit/podunit/cni/rules"
	"github.com/podunit/podunit/cni/service"
	"github.com/podunit/podunit/podshim"
)

// The node's Services are served by two daemons, each a unit of its own
// (podunit-proxy.service, podunit-dns.service): they read the Service
// table the sync writes (service.DefaultTablePath) and the pods' states
// podshim writes (podshim.DefaultStateDir), and rebuild their view at
// each change (service.Watcher). Neither keeps state of its own: a
// restarted one rebuilds it from those files, and the kernel's rules
// carry the traffic meanwhile.

// snapshotOf is the node's Services with their endpoints now: the table
// joined with the pods' states. A missing table is no Service.
func snapshotOf(tablePath, stateDir string) (*service.Table, *service.Snapshot, error) {
	t, err := service.ReadTable(tablePath)
	if errors.Is(err, fs.ErrNotExist) {
		t, err = &service.Table{}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return t, t.Join(func(namespace, name string) (service.PodStatus, bool) {
		st, err := podshim.ReadState(stateDir, namespace, name)
		if err != nil {
			return service.PodStatus{}, false
		}
		return st.ServiceStatus(), true
	}), nil
}

// signalContext ends on SIGTERM or SIGINT.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

func newProxyCommand() *cobra.Command {
	var tablePath, stateDir, podInterface string
	var localhost bool
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "program the node's Service rules in nftables (podunit-proxy.service)",
		Long: `Programs podunit's own nftables table (ip podunit) from the node's Service
table and the pods' readiness, as kube-proxy's nftables mode does: each
Service's ClusterIP, node ports, LoadBalancer port on the node's addresses
and external IPs, spread over its ready endpoints. It rebuilds the table at
each change of a Service or a pod's readiness, and removes it when the last
Service goes. It never touches another table. Stopped, it leaves the rules
in place: established and new connections keep flowing until it is back.`,
		Args: exactArgs(0, "no arguments"),
	}
	f := cmd.Flags()
	f.StringVar(&tablePath, "table", service.DefaultTablePath, "the node's Service table (written by podunit sync)")
	f.StringVar(&stateDir, "state-dir", podshim.DefaultStateDir, "the pods' state files")
	f.StringVar(&podInterface, "pod-interface", "podunit0", "the bridge pods are reached through (the packaged CNI network's)")
	f.BoolVar(&localhost, "localhost", true, "NodePorts and LoadBalancer ports answer on 127.0.0.1 too")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := signalContext()
		defer cancel()
		log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
		nft, err := rules.New()
		if err != nil {
			return fmt.Errorf("nftables: %w (is the nftables package installed?)", err)
		}
		// had: a table an earlier run left is removed if there is no
		// Service now.
		p := &proxy{nft: nft, tablePath: tablePath, stateDir: stateDir, podInterface: podInterface, localhost: localhost, log: log, had: true}
		// br_netfilter: a pod's reply bridged to another pod is seen by
		// conntrack only with it (rules.Sysctls).
		if err := exec.CommandContext(ctx, "modprobe", "br_netfilter").Run(); err != nil {
			log.Warn("modprobe br_netfilter", "err", err)
		}
		w := &service.Watcher{Dirs: []string{filepath.Dir(tablePath), stateDir}, Changed: p.sync}
		daemon.SdNotify(false, daemon.SdNotifyReady)
		return w.Run(ctx)
	}
	return cmd
}

// proxy is podunit proxy's state between syncs: what it last wrote.
type proxy struct {
	nft                               knftables.Interface
	tablePath, stateDir, podInterface string
	localhost                         bool
	log                               *slog.Logger
	had                               bool   // the table may be there
	last                              string // the status last logged
}

func (p *proxy) sync(ctx context.Context) {
	t, snap, err := snapshotOf(p.tablePath, p.stateDir)
	if err != nil {
		p.log.Error("read the Service table", "err", err)
		return
	}
	if len(snap.Services) == 0 {
		if p.had {
			if err := rules.Remove(ctx, p.nft); err != nil {
				p.log.Error("remove the rules", "err", err)
				return
			}
			p.log.Info("no Service: podunit's nftables table removed")
		}
		p.had = false
		daemon.SdNotify(false, "STATUS=No Service")
		return
	}
	node := rules.Node{ServiceCIDR: t.ClusterIPRange, Localhost: p.localhost, PodInterface: p.podInterface}
	if len(t.PodNetwork) > 0 {
		node.PodCIDR = t.PodNetwork[0]
	}
	if err := rules.WriteSysctls("/proc/sys", rules.Sysctls(node)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.log.Warn("kernel settings", "err", err)
	}
	res, err := rules.Sync(ctx, p.nft, snap, node)
	if err != nil {
		p.log.Error("program the Service rules", "err", err)
		daemon.SdNotify(false, "STATUS=Failed to program the rules: "+err.Error())
		return
	}
	p.had = true
	p.ensureRoute(ctx, node)
	status := fmt.Sprintf("%d Services, %d endpoints, %d rules", len(snap.Services), res.Stats.Endpoints, res.Stats.Rules)
	if status != p.last {
		p.log.Info("rules written", "services", len(snap.Services), "endpoints", res.Stats.Endpoints, "rules", res.Stats.Rules, "duration", res.Duration)
		for _, s := range res.Skipped {
			p.log.Warn("not served", "what", s)
		}
		p.last = status
	}
	daemon.SdNotify(false, "STATUS="+status)
}

// ensureRoute makes the node itself able to connect to ClusterIPs on a
// machine with no route that covers the Service range (no default route:
// an isolated box). connect() needs a route to the address before the
// rules rewrite it; any route does, so one through the pods' bridge is
// added, and nothing when the node has one already.
func (p *proxy) ensureRoute(ctx context.Context, node rules.Node) {
	if !node.ServiceCIDR.IsValid() || node.PodInterface == "" {
		return
	}
	if exec.CommandContext(ctx, "ip", "-4", "route", "get", node.ServiceCIDR.Addr().Next().String()).Run() == nil {
		return
	}
	out, err := exec.CommandContext(ctx, "ip", "-4", "route", "replace", node.ServiceCIDR.String(), "dev", node.PodInterface).CombinedOutput()
	if err != nil {
		p.log.Warn("no route to the Service range: the node itself cannot reach ClusterIPs", "range", node.ServiceCIDR, "err", err, "ip", string(out))
		return
	}
	p.log.Info("no route covered the Service range: added one through the pods' bridge", "range", node.ServiceCIDR, "dev", node.PodInterface)
}

func newDNSCommand() *cobra.Command {
	var tablePath, stateDir, resolvConf, link string
	cmd := &cobra.Command{
		Use:   "dns",
		Short: "answer the pods' DNS queries as cluster DNS does (podunit-dns.service)",
		Long: `Answers DNS on the node's clusterDNS address (config.yaml; 10.96.0.10 by
default), which it puts on an interface of its own (podunit-dns): Services'
names (svc, svc.ns, svc.ns.svc.cluster.local), headless Services' ready
endpoints, StatefulSet pods' names, SRV records of named ports and
ExternalName CNAMEs, from the node's Service table and the pods' readiness;
every other name is forwarded to the node's own resolvers. It answers only
the pods' network and the node itself, on that one address.`,
		Args: exactArgs(0, "no arguments"),
	}
	f := cmd.Flags()
	f.StringVar(&tablePath, "table", service.DefaultTablePath, "the node's Service table (written by podunit sync)")
	f.StringVar(&stateDir, "state-dir", podshim.DefaultStateDir, "the pods' state files")
	f.StringVar(&resolvConf, "resolv-conf", "", "the node's resolvers (default: as the pods' Default DNS policy)")
	f.StringVar(&link, "link", names.DefaultLink, "the interface the resolver's address is put on")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := signalContext()
		defer cancel()
		log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
		t, _, err := snapshotOf(tablePath, stateDir)
		if err != nil {
			return err
		}
		if !t.ClusterDNS.IsValid() {
			// No table yet (no sync ran): the configuration's address.
			cfg, err := loadConfig(DefaultConfigPath, false)
			if err != nil {
				return err
			}
			sn, err := cfg.services()
			if err != nil {
				return err
			}
			t.ClusterDNS, t.ClusterDomain, t.ClusterIPRange = sn.ClusterDNS, sn.ClusterDomain, sn.ClusterIPRange
		}
		if resolvConf == "" {
			resolvConf = podshim.DefaultResolvConf()
		}
		upstreams, err := names.Upstreams(resolvConf)
		if err != nil {
			log.Warn("the node's resolvers", "file", resolvConf, "err", err)
		}
		if err := holdAddress(ctx, link, t.ClusterDNS, log); err != nil {
			return err
		}
		// The pods and the node itself: never another machine, even one
		// that routes clusterDNS here.
		pods := t.PodNetwork
		if len(pods) == 0 {
			pods = []netip.Prefix{defaultPodNetwork} // no sync told yet
		}
		clients := append([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.PrefixFrom(t.ClusterDNS, 32)}, pods...)
		s := names.New(names.Config{Domain: t.ClusterDomain, Upstreams: upstreams, Clients: clients, Log: log})
		// The sockets of the run before, from systemd's store (fdstore.go),
		// else new ones; stored for the next run.
		l := inheritedSockets(activation.Files(true), netip.AddrPortFrom(t.ClusterDNS, 53))
		if l == nil {
			if l, err = names.Listen(t.ClusterDNS.String()); err != nil {
				return err
			}
		} else {
			log.Info("answering on the sockets of the run before, kept by systemd", "address", t.ClusterDNS)
		}
		if err := storeSockets(l); err != nil {
			log.Warn("keep the resolver's sockets across a restart (questions asked meanwhile are refused)", "err", err)
		}
		update := func(context.Context) {
			_, snap, err := snapshotOf(tablePath, stateDir)
			if err != nil {
				log.Error("read the Service table", "err", err)
				return
			}
			s.Update(snap)
			daemon.SdNotify(false, fmt.Sprintf("STATUS=Answering for %d Services on %s", len(snap.Services), t.ClusterDNS))
		}
		update(ctx)
		w := &service.Watcher{Dirs: []string{filepath.Dir(tablePath), stateDir}, Changed: update}
		go func() {
			if err := w.Run(ctx); err != nil {
				log.Error("watch", "err", err)
			}
		}()
		daemon.SdNotify(false, daemon.SdNotifyReady)
		return s.Serve(ctx, l)
	}
	return cmd
}

// holdAddress puts addr on interface name, a dummy interface (as
// NodeLocal DNSCache's), or, on a kernel without the dummy driver, a
// bridge with no ports, which holds an address as well.
func holdAddress(ctx context.Context, name string, addr netip.Addr, log *slog.Logger) error {
	prefix := netip.PrefixFrom(addr, 32)
	err := (&names.Link{Name: name}).Ensure(ctx, prefix)
	if err == nil {
		return nil
	}
	if berr := (&names.Link{Name: name, Kind: "bridge"}).Ensure(ctx, prefix); berr == nil {
		log.Info("no dummy interface on this kernel: the resolver's address is on an empty bridge", "link", name, "err", err)
		return nil
	}
	return fmt.Errorf("put %s on %s: %w", addr, name, err)
}

// defaultPodNetwork is the packaged CNI network's subnet
// (packaging/cni/10-podunit.conflist).
var defaultPodNetwork = netip.MustParsePrefix("10.88.0.0/16")
