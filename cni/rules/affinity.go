package rules

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	gnftables "github.com/google/nftables"
	"sigs.k8s.io/knftables"
)

// AffinitySet is a set that remembers the clients of one endpoint of a
// Service port with sessionAffinity ClientIP, each for Timeout after its
// last new connection.
type AffinitySet struct {
	Name    string
	Timeout time.Duration
}

// affinityClient is a client an affinity set remembers, and for how much
// longer (0: unknown; the set's timeout starts again).
type affinityClient struct {
	addr    string
	expires time.Duration
}

// affinityReader reads affinity sets faster than knftables can (it runs
// nft once a set, 13 ms each on the machines measured); New's Interface
// has one.
type affinityReader interface {
	readAffinity(ctx context.Context, sets []AffinitySet) (map[string][]affinityClient, error)
}

// readAffinity is the clients of those of sets that table podunit has now
// (none when it has no table yet): through nft's affinityReader if it has
// one, else knftables' List and ListElements.
func readAffinity(ctx context.Context, nft knftables.Interface, sets []AffinitySet) (map[string][]affinityClient, error) {
	if len(sets) == 0 {
		return nil, nil
	}
	if r, ok := nft.(affinityReader); ok {
		return r.readAffinity(ctx, sets)
	}
	existing, err := nft.List(ctx, "sets")
	if knftables.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("nftables: list the sets of table ip %s: %w", Table, err)
	}
	kept := map[string][]affinityClient{}
	for _, set := range sets {
		if !slices.Contains(existing, set.Name) {
			continue
		}
		elems, err := nft.ListElements(ctx, "set", set.Name)
		if knftables.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("nftables: list set %s: %w", set.Name, err)
		}
		for _, e := range elems {
			if len(e.Key) == 1 {
				kept[set.Name] = append(kept[set.Name], affinityClient{addr: e.Key[0]})
			}
		}
	}
	return kept, nil
}

// addAffinity adds the kept clients of sets to tx, each for what was left
// of its time (at most the set's timeout, which may have changed); it
// returns how many.
func addAffinity(tx *knftables.Transaction, sets []AffinitySet, kept map[string][]affinityClient) int {
	n := 0
	for _, set := range sets {
		for _, c := range kept[set.Name] {
			key := c.addr
			if c.expires > 0 {
				// knftables has no field for an element's expiry;
				// nft reads it after the key.
				key = fmt.Sprintf("%s expires %dms", c.addr, min(c.expires, set.Timeout).Milliseconds())
			}
			tx.Add(&knftables.Element{Set: set.Name, Key: []string{key}})
			n++
		}
	}
	return n
}

// netlinkNFT is New's Interface: knftables' for everything, and the
// affinity sets read over netlink (in the calling thread's network
// namespace), with what is left of each client's time.
type netlinkNFT struct {
	knftables.Interface
}

func (n *netlinkNFT) readAffinity(_ context.Context, sets []AffinitySet) (map[string][]affinityClient, error) {
	conn, err := gnftables.New(gnftables.AsLasting()) // one socket for every set
	if err != nil {
		return nil, fmt.Errorf("nftables netlink: %w", err)
	}
	defer conn.CloseLasting()
	tables, err := conn.ListTablesOfFamily(gnftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("nftables netlink: list tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *gnftables.Table) bool { return t.Name == Table }) {
		return nil, nil
	}
	table := &gnftables.Table{Name: Table, Family: gnftables.TableFamilyIPv4}
	existing, err := conn.GetSets(table)
	if err != nil {
		return nil, fmt.Errorf("nftables netlink: sets of table ip %s: %w", Table, err)
	}
	kept := map[string][]affinityClient{}
	for _, s := range existing {
		if !slices.ContainsFunc(sets, func(a AffinitySet) bool { return a.Name == s.Name }) {
			continue
		}
		elems, err := conn.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("nftables netlink: set %s: %w", s.Name, err)
		}
		for _, e := range elems {
			addr, ok := netip.AddrFromSlice(e.Key)
			if !ok || !addr.Is4() {
				continue
			}
			kept[s.Name] = append(kept[s.Name], affinityClient{addr: addr.String(), expires: e.Expires})
		}
	}
	return kept, nil
}
