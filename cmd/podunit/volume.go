package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

// newVolumeCommand manages the PersistentVolumeClaims' directories, which
// outlive pods and manifests: 'podunit volume ls', 'podunit volume rm NS/NAME…',
// 'podunit volume import NAME' (a podman named volume's data).
func newVolumeCommand() *cobra.Command {
	var root, specDir string
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "list, remove or import the PersistentVolumeClaims' directories",
		Long: `A PersistentVolumeClaim's data is the directory VOLUME_ROOT/NAMESPACE/CLAIM.
It stays when the claim's manifest or its pods go; rm removes it, unless a
pod uses it; import fills it with a podman named volume's data.`,
		Args: exactArgs(0, "a subcommand: ls, rm or import"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError(cmd, "podunit volume takes ls, rm or import")
		},
	}
	cmd.PersistentFlags().StringVar(&root, "volume-root", podshim.DefaultVolumeRoot, "where the claims' directories are")
	cmd.PersistentFlags().StringVar(&specDir, "spec-dir", DefaultSpecDir, "the pods' spec files, to tell which claims are in use")
	cmd.AddCommand(&cobra.Command{
		Use:   "ls",
		Short: "list the claims' directories, their size and the pods using them",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			inUse, err := claimsInUse(cmd.Context(), specDir)
			if err != nil {
				return err
			}
			return listVolumes(cmd.OutOrStdout(), root, inUse)
		},
	}, &cobra.Command{
		Use:   "rm NAMESPACE/CLAIM...",
		Short: "remove claims' directories that no pod uses",
		Args:  minArgs(1, "one or more NAMESPACE/CLAIM"),
		RunE: func(cmd *cobra.Command, names []string) error {
			inUse, err := claimsInUse(cmd.Context(), specDir)
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range names {
				if err := removeVolume(root, name, inUse); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", name)
			}
			return errors.Join(errs...)
		},
	}, newVolumeImportCommand(&root, &specDir))
	return cmd
}

// claimsInUse maps "namespace/claim" to the pods whose spec uses it: a pod
// whose unit runs that spec, or whose manifest is still there (it may not
// run yet). A spec left behind by a pod that is gone (the next sync removes
// it) does not count. Without systemd to ask, every spec counts.
func claimsInUse(ctx context.Context, specDir string) (map[string][]string, error) {
	paths, err := filepath.Glob(filepath.Join(specDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var loaded map[string]bus.Running
	if conn, err := dbus.NewSystemConnectionContext(ctx); err == nil {
		loaded, _ = bus.List(ctx, conn)
		conn.Close()
	}
	out := map[string][]string{}
	for _, path := range paths {
		if strings.HasSuffix(path, ".data.json") {
			continue
		}
		p, err := generator.FromSpec(podspec.ReadSpec(path))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			return nil, err
		}
		if loaded != nil && !specInUse(p, loaded) {
			continue
		}
		for _, v := range p.Spec.Spec.Volumes {
			if c := v.PersistentVolumeClaim; c != nil {
				key := p.Namespace() + "/" + c.ClaimName
				out[key] = append(out[key], p.Key())
			}
		}
	}
	return out, nil
}

// specInUse tells whether a pod's spec is what its unit runs, or what its
// manifest still asks for.
func specInUse(p *generator.Pod, loaded map[string]bus.Running) bool {
	if r, ok := loaded[units.ServiceName(p.Namespace(), p.Name())]; ok && r.ConfigHash == p.Hash {
		return true
	}
	_, err := os.Stat(p.Source)
	return err == nil || !filepath.IsAbs(p.Source) // a URL's pod: its cache decides at the next sync
}

func listVolumes(w io.Writer, root string, inUse map[string][]string) error {
	namespaces, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var rows []string
	for _, ns := range namespaces {
		claims, err := os.ReadDir(filepath.Join(root, ns.Name()))
		if err != nil {
			continue
		}
		for _, c := range claims {
			key := ns.Name() + "/" + c.Name()
			users := "-"
			if pods := inUse[key]; len(pods) > 0 {
				users = strings.Join(pods, ",")
			}
			rows = append(rows, fmt.Sprintf("%s\t%s\t%s", key, filepath.Join(root, key), users))
		}
	}
	sort.Strings(rows)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLAIM\tDIRECTORY\tUSED BY")
	for _, r := range rows {
		fmt.Fprintln(tw, r)
	}
	return tw.Flush()
}

func removeVolume(root, name string, inUse map[string][]string) error {
	ns, claim, ok := strings.Cut(name, "/")
	if !ok || ns == "" || claim == "" || strings.Contains(claim, "/") || ns == ".." || claim == ".." || ns == "." || claim == "." {
		return fmt.Errorf("%q: name a claim as NAMESPACE/CLAIM (podunit volume ls lists them)", name)
	}
	if pods := inUse[name]; len(pods) > 0 {
		return fmt.Errorf("%s is used by pod %s: delete the pod's manifest first", name, strings.Join(pods, ", "))
	}
	dir := podshim.ClaimDir(root, ns, claim)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return os.RemoveAll(dir)
}
