package rules

import (
	"context"
	"fmt"
	"slices"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/podunit/podunit/cni/service"
)

// New is the knftables.Interface that Sync and Remove take on a real node:
// table podunit of family ip, through the nft binary (1.0.1 or later).
// Sync reads the sessionAffinity sets through it over netlink, in the
// network namespace of the thread that calls Sync.
func New() (knftables.Interface, error) {
	nft, err := knftables.New(knftables.IPv4Family, Table)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &netlinkNFT{nft}, nil
}

// Result is what a Sync wrote, for /metrics and the journal.
type Result struct {
	Stats
	// Affinity is how many sessionAffinity clients were carried over from
	// the table replaced.
	Affinity int
	// Duration is the whole Sync: plan, reading the affinity sets, and the
	// transaction.
	Duration time.Duration
	// Skipped is the Ruleset's (what got no rule, and why), and the
	// affinity clients that could not be read, if so.
	Skipped []string
}

// Sync makes table podunit of nft (an Interface for family ip, table
// podunit: New, or knftables.NewFake in tests) hold exactly the rules of
// snap on node, in one transaction: the table is deleted and written anew,
// so a packet sees either the old rules or the new ones, never a mix, and
// nothing of an earlier version of the table survives. Connections already
// established keep their endpoint (conntrack holds their NAT). The clients
// that sessionAffinity sets remember are read first and written back into
// the sets that remain, with what was left of their time (through New's
// Interface; through another, the timeout starts again); when they cannot
// be read, the rules are written all the same and Result.Skipped says so.
//
// Deleting the table rather than flushing and deleting chains one by one, as
// kube-proxy does, needs no memory between syncs: the kernel deletes a
// whole table whatever refers to what inside it (flush ruleset relies on
// that), while a chain deleted in the transaction that drops the map
// element naming it fails (EBUSY) on kernels before 6.2, kube-proxy's
// comments say, which is why kube-proxy deletes its stale chains a second
// later. kube-proxy also syncs only the Services that changed;
// measured here a full Sync of 100 Services x 10 endpoints takes about
// 0.12 s with nft 1.0.6 (1000 x 10: 1.9 s), so one node needs no partial
// syncs (benchmarks in bench_test.go).
//
// A Snapshot without any Service still gets the fixed chains; when the last
// Service goes, call Remove. Calls for one table must not overlap.
func Sync(ctx context.Context, nft knftables.Interface, snap *service.Snapshot, node Node) (Result, error) {
	start := time.Now()
	rs, err := Plan(snap, node)
	if err != nil {
		return Result{}, err
	}
	skipped := rs.Skipped
	kept, err := readAffinity(ctx, nft, rs.AffinitySets)
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	if err != nil {
		// The rules matter more than who was stuck to which pod.
		skipped = append(slices.Clip(skipped), fmt.Sprintf("sessionAffinity clients not carried over: %v", err))
	}
	tx := nft.NewTransaction()
	n := rs.replace(tx, kept)
	if err := nft.Run(ctx, tx); err != nil {
		return Result{}, fmt.Errorf("nftables: replace table ip %s (%d rules): %w", Table, rs.Stats.Rules, err)
	}
	return Result{Stats: rs.Stats, Affinity: n, Duration: time.Since(start), Skipped: skipped}, nil
}

// Remove deletes table podunit, and with it every rule podunit wrote (the
// last Service gone, the package removed); no table: nothing to do.
func Remove(ctx context.Context, nft knftables.Interface) error {
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables: delete table ip %s: %w", Table, err)
	}
	return nil
}

// replace fills tx with the replacement of the table by rs (adding it
// first, so that deleting it cannot fail), then the kept affinity clients of
// the sets rs still has; it returns how many clients it kept.
func (rs *Ruleset) replace(tx *knftables.Transaction, kept map[string][]affinityClient) int {
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	for _, obj := range rs.Objects {
		tx.Add(obj)
	}
	return addAffinity(tx, rs.AffinitySets, kept)
}
