package rules

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/podunit/podunit/cni/service"
)

// bigSnapshot is services NodePort Services of one TCP port, each with
// endpoints ready pods of its own; with affinity, every Service has
// sessionAffinity ClientIP.
func bigSnapshot(services, endpoints int, affinity bool) *service.Snapshot {
	var svcs []service.Service
	var pods []service.Pod
	for s := range services {
		app := fmt.Sprintf("app%d", s)
		svcs = append(svcs, service.Service{Namespace: "default", Name: app, Type: service.NodePort,
			ClusterIP: netip.AddrFrom4([4]byte{10, 96, byte(1 + s/250), byte(s % 250)}),
			Selector:  map[string]string{"app": app}, SessionAffinity: affinity,
			Ports: []service.Port{{Name: "http", Protocol: service.TCP, Port: 80, TargetPort: 8080, NodePort: int32(30000 + s)}}})
		for e := range endpoints {
			i := s*endpoints + e
			pods = append(pods, service.Pod{Namespace: "default", Name: fmt.Sprintf("%s-%d", app, e),
				Labels: map[string]string{"app": app}, Ready: true,
				IP: netip.AddrFrom4([4]byte{10, 88, byte(i / 250), byte(2 + i%250)})})
		}
	}
	return service.Build(svcs, pods)
}

var benchSizes = []struct {
	services, endpoints int
	affinity            bool
}{{10, 3, false}, {100, 10, false}, {100, 10, true}, {1000, 10, false}}

func benchName(services, endpoints int, affinity bool) string {
	name := fmt.Sprintf("%dx%d", services, endpoints)
	if affinity {
		name += "-affinity"
	}
	return name
}

// Plan alone: the translation of a Snapshot into the table's objects.
func BenchmarkPlan(b *testing.B) {
	for _, size := range benchSizes {
		snap := bigSnapshot(size.services, size.endpoints, size.affinity)
		b.Run(benchName(size.services, size.endpoints, size.affinity), func(b *testing.B) {
			var rs *Ruleset
			for b.Loop() {
				var err error
				if rs, err = Plan(snap, testNode); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rs.Stats.Rules), "rules")
			b.ReportMetric(float64(rs.Stats.Elements), "elements")
		})
	}
}

// Sync into knftables.Fake: the plan, the transaction and the Fake's
// checks, no kernel.
func BenchmarkSyncFake(b *testing.B) {
	for _, size := range benchSizes {
		snap := bigSnapshot(size.services, size.endpoints, size.affinity)
		b.Run(benchName(size.services, size.endpoints, size.affinity), func(b *testing.B) {
			nft := knftables.NewFake(knftables.IPv4Family, Table)
			for b.Loop() {
				if _, err := Sync(context.Background(), nft, snap, testNode); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Sync with the real nft (root), in a network namespace of its own: a
// full resync of the table each time, the table already there (the
// steady state of a daemon). Its transaction size is reported too.
func BenchmarkSyncNFT(b *testing.B) {
	requireNetns(b)
	node := newNetns(b, "bench")
	var nft knftables.Interface
	if err := node.run(func() (err error) { nft, err = New(); return err }); err != nil {
		b.Fatal(err)
	}
	for _, size := range benchSizes {
		snap := bigSnapshot(size.services, size.endpoints, size.affinity)
		b.Run(benchName(size.services, size.endpoints, size.affinity), func(b *testing.B) {
			rs, err := Plan(snap, testNode)
			if err != nil {
				b.Fatal(err)
			}
			tx := nft.NewTransaction()
			rs.replace(tx, nil)
			err = node.run(func() error {
				if _, err := Sync(context.Background(), nft, snap, testNode); err != nil {
					return err
				}
				for b.Loop() {
					if _, err := Sync(context.Background(), nft, snap, testNode); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(tx.String())), "tx-bytes")
		})
	}
	if err := node.run(func() error { return Remove(context.Background(), nft) }); err != nil {
		b.Fatal(err)
	}
}

// The floor of BenchmarkSyncNFT, in the same kind of namespace: a
// transaction that holds nothing but the table (the nft process, its
// netlink round trip and the kernel's commit, no ruleset); and, beside
// the whole rewrite Sync does, what kube-proxy's nftables mode sends for
// one Service whose endpoints changed once its table exists: that
// Service's chains flushed and their rules written again (partial sync),
// in the 100 x 10 table.
func BenchmarkSyncNFTFloor(b *testing.B) {
	requireNetns(b)
	node := newNetns(b, "floor")
	var nft knftables.Interface
	if err := node.run(func() (err error) { nft, err = New(); return err }); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("empty-transaction", func(b *testing.B) {
		err := node.run(func() error {
			for b.Loop() {
				tx := nft.NewTransaction()
				tx.Add(&knftables.Table{})
				if err := nft.Run(ctx, tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	})
	b.Run("one-service-of-100x10", func(b *testing.B) {
		snap := bigSnapshot(100, 10, false)
		rs, err := Plan(snap, testNode)
		if err != nil {
			b.Fatal(err)
		}
		// app7's chains: its Service chain and its endpoints'.
		mine := func(chain string) bool {
			return strings.HasPrefix(chain, "service/default/app7/") || strings.HasPrefix(chain, "endpoint/default/app7/")
		}
		partial := nft.NewTransaction()
		for _, obj := range rs.Objects {
			switch o := obj.(type) {
			case *knftables.Chain:
				if mine(o.Name) {
					partial.Flush(&knftables.Chain{Name: o.Name})
				}
			case *knftables.Rule:
				if mine(o.Chain) {
					partial.Add(o)
				}
			}
		}
		err = node.run(func() error {
			if _, err := Sync(ctx, nft, snap, testNode); err != nil {
				return err
			}
			for b.Loop() {
				if err := nft.Run(ctx, partial); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(partial.String())), "tx-bytes")
	})
	if err := node.run(func() error { return Remove(ctx, nft) }); err != nil {
		b.Fatal(err)
	}
}
