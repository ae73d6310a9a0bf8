package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
)

// runVolume manages the PersistentVolumeClaims' directories, which outlive
// pods and manifests: `podunit volume ls`, `podunit volume rm NS/NAME…`.
func runVolume(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("podunit volume", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("volume-root", podshim.DefaultVolumeRoot, "where the claims' directories are")
	specDir := fs.String("spec-dir", DefaultSpecDir, "the pods' spec files, to tell which claims are in use")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: podunit volume ls\n       podunit volume rm NAMESPACE/CLAIM...\n\nA PersistentVolumeClaim's data is the directory VOLUME_ROOT/NAMESPACE/CLAIM.\nIt stays when the claim's manifest or its pods go; rm removes it, unless a\npod uses it.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		fs.Usage()
		return &exitError{exitUsage, errors.New("")}
	}
	inUse, err := claimsInUse(*specDir)
	if err != nil {
		return err
	}
	switch cmd, names := fs.Arg(0), fs.Args()[1:]; {
	case cmd == "ls" && len(names) == 0:
		return listVolumes(stdout, *root, inUse)
	case cmd == "rm" && len(names) > 0:
		var errs []error
		for _, name := range names {
			if err := removeVolume(*root, name, inUse); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(stdout, "removed %s\n", name)
		}
		return errors.Join(errs...)
	}
	fs.Usage()
	return &exitError{exitUsage, errors.New("")}
}

// claimsInUse maps "namespace/claim" to the pods whose spec uses it.
func claimsInUse(specDir string) (map[string][]string, error) {
	paths, err := filepath.Glob(filepath.Join(specDir, "*.json"))
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, path := range paths {
		if strings.HasSuffix(path, ".data.json") {
			continue
		}
		p, err := generator.ReadSpecFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			return nil, err
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
