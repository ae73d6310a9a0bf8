package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/generator/quadlet"
)

// newImportCommand brings other tools' definitions over:
// 'podunit import quadlet FILE.kube… | DIR'.
func newImportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "turn podman's Quadlet .kube units into manifests",
		Args:  exactArgs(0, "a subcommand: quadlet"),
		RunE:  func(cmd *cobra.Command, _ []string) error { return usageError(cmd, "podunit import takes quadlet") },
	}
	cmd.AddCommand(newImportQuadletCommand())
	return cmd
}

func newImportQuadletCommand() *cobra.Command {
	var (
		md     manifestDirFlags
		dryRun bool
		force  bool
	)
	cmd := &cobra.Command{
		Use:   "quadlet FILE.kube... | DIR",
		Short: "turn Quadlet .kube units into manifests in the manifest directory",
		Long: `Reads podman's Quadlet .kube units (files, or directories such as
/etc/containers/systemd searched as Quadlet searches them, subdirectories
included), with their drop-ins (kube.d, NAME.kube.d), and writes each unit as one manifest, NAME.yaml, into
the manifest directory: its ConfigMap= files as ConfigMap documents, its
Yaml= documents, PublishPort= as host ports, AutoUpdate= as podman's
auto-update annotation (podunit auto-update reads it), Network=host and
UserNS=auto as hostNetwork and hostUsers: false, PodmanArgs' --annotation,
and [Unit] After= or Before= on another of the units as podunit.io/after
(Requires=, Wants= and the like do not order, as in systemd). Every key is reported: what it became, or why it
cannot be carried over and what to do instead.

Each manifest is checked as sync checks it, all of them together beside
the manifest directory's files; a unit whose manifest is not valid there is
not written (exit status 3), the others are. A ConfigMap, Secret or claim
two units (or a unit and a file of the directory) define the same is
written once; defined otherwise, it refuses the later unit: podunit has one
of a name per namespace, where podman gives each unit its own. Nothing of podman's is
changed or stopped: disable its units yourself (systemctl disable --now
NAME.service) before the pods start here, or they compete for ports.
Importing a unit again rewrites its manifest (or leaves it unchanged); a
file of that name that another import or a person wrote is refused unless
--force. --dry-run prints what would be written. With --manifest-dir DIR the
manifests go to DIR, to be checked (podunit validate) and applied later.`,
		Example: "  podunit import quadlet --dry-run /etc/containers/systemd\n  podunit import quadlet /etc/containers/systemd/web.kube",
		Args:    minArgs(1, "one or more .kube units or directories of them"),
	}
	md.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the manifests and the report; write nothing")
	cmd.Flags().BoolVar(&force, "force", false, "replace a manifest of the same name that is not an earlier import of the same unit")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		dirs, err := md.dirs(cmd)
		if err != nil {
			return err
		}
		units, files, errs := quadlet.Read(args)
		existing, err := existingManifests(dirs, units)
		if err != nil {
			return err
		}
		return importQuadlet(cmd.OutOrStdout(), dirs, quadlet.Convert(units, files, existing), errs, dryRun, force)
	}
	return cmd
}

// existingManifests are the manifests sync reads beside the ones the
// import writes, in its order: the manifest directories' files, but for
// those of dirs[0] the import replaces. One that cannot be read is left
// out, as sync leaves it out.
func existingManifests(dirs []string, units []*quadlet.Unit) ([]generator.File, error) {
	targets := map[string]bool{}
	for _, u := range units {
		targets[filepath.Join(dirs[0], u.ManifestFile())] = true
	}
	var out []generator.File
	for _, d := range dirs {
		paths, _, err := generator.ManifestFiles(d)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			if targets[p] {
				continue
			}
			if data, err := generator.ReadManifest(p); err == nil {
				out = append(out, generator.File{Path: p, Data: data})
			}
		}
	}
	return out, nil
}

// importQuadlet writes (or, dry, prints) each unit's manifest into dirs[0]
// and reports what became of every key. A manifest is written only when
// the manifests written together, read beside the manifest directories as
// sync reads them, are valid: each that is not, and each that leaves out an
// object a manifest that is not written holds (Import.Keepers), is not.
func importQuadlet(w io.Writer, dirs []string, imports []quadlet.Import, readErrs []error, dryRun, force bool) error {
	failed := slices.Clone(readErrs)
	type candidate struct {
		im     quadlet.Import
		target string
		m      *generator.Manifest
		err    error // why it is not written
	}
	var todo []*candidate
	for _, im := range imports {
		if im.Err != nil {
			failed = append(failed, im.Err)
			continue
		}
		c := &candidate{im: im, target: filepath.Join(dirs[0], im.File)}
		todo = append(todo, c)
		if c.err = mayReplace(c.target, im.Unit, force); c.err != nil {
			continue
		}
		m, err := generator.DecodeManifest(c.target, im.Manifest)
		if err != nil {
			c.err = err // Convert checked it: not expected
			continue
		}
		c.m = m
		if err := checkNoOtherDefinition(dirs, c.target, m); err != nil {
			c.err = fmt.Errorf("%s: %w", im.Unit, err)
		}
	}
	var sources []generator.Source
	for _, d := range dirs {
		sources = append(sources, generator.Source{Dir: d})
	}
	for changed := true; changed; {
		changed = false
		// A manifest that leaves out an object another holds needs that
		// one written.
		for _, c := range todo {
			if c.err != nil {
				continue
			}
			for _, k := range c.im.Keepers {
				for _, other := range todo {
					if other.im.Unit == k && other.err != nil {
						c.err = fmt.Errorf("%s: %s holds objects its pods use (see the notes), and it is not written (see there)", c.im.Unit, k)
						changed = true
					}
				}
			}
		}
		// The manifests together, as sync would read them.
		var files []generator.File
		byTarget := map[string]*candidate{}
		for _, c := range todo {
			if c.err == nil {
				files = append(files, generator.File{Path: c.target, Data: c.im.Manifest})
				byTarget[c.target] = c
			}
		}
		set, err := generator.Reader{}.Check(files, sources...)
		if err != nil {
			return err
		}
		for _, e := range set.Errors {
			for _, fe := range generator.Flatten(e) {
				var f *generator.FieldError
				if errors.As(fe, &f) && byTarget[f.File] != nil {
					c := byTarget[f.File]
					c.err = errors.Join(c.err, fmt.Errorf("%s: with the other manifests: %w", c.im.Unit, fe))
					changed = true
				}
			}
		}
	}
	var services, claims []string
	for _, c := range todo {
		im, target := c.im, c.target
		if c.err != nil {
			failed = append(failed, c.err)
			continue
		}
		verb := "would be written"
		if !dryRun {
			var err error
			if verb, err = writeManifest(target, im.Manifest, len(c.m.Secrets) > 0); err != nil {
				failed = append(failed, err)
				continue
			}
		}
		fmt.Fprintf(w, "%s -> %s: %s (pods %s)\n", im.Unit, target, verb, strings.Join(im.Pods, ", "))
		for _, n := range im.Notes {
			if n.From != im.Unit {
				fmt.Fprintf(w, "  %s (from %s)\n", n, n.From)
				continue
			}
			fmt.Fprintf(w, "  %s\n", n)
		}
		if dryRun {
			fmt.Fprintf(w, "--- %s\n%s", target, im.Manifest)
		}
		services = append(services, im.Service)
		for _, p := range c.m.Pods {
			for _, v := range p.Spec.Spec.Volumes {
				if cl := v.PersistentVolumeClaim; cl != nil {
					claims = append(claims, fmt.Sprintf("podunit volume import %s --namespace %s", cl.ClaimName, p.Namespace()))
				}
			}
		}
	}
	if len(services) > 0 {
		slices.Sort(claims)
		fmt.Fprintf(w, "\nNothing of podman's was changed. Stop and disable its units before the pods run here:\n  systemctl disable --now %s\n", strings.Join(services, " "))
		if claims = slices.Compact(claims); len(claims) > 0 {
			fmt.Fprintf(w, "and bring podman's named volumes' data over before the pods first start:\n  %s\n", strings.Join(claims, "\n  "))
		}
	}
	if len(failed) > 0 {
		for _, err := range failed {
			fmt.Fprintf(w, "error: %v\n", err)
		}
		return &exitError{exitInvalid, fmt.Errorf("%d of %d units not imported", len(failed), len(imports)+len(readErrs))}
	}
	return nil
}

// mayReplace refuses to overwrite a manifest that is not an earlier import
// of the same unit, unless forced.
func mayReplace(target, unit string, force bool) error {
	f, err := os.Open(target)
	if errors.Is(err, fs.ErrNotExist) || force {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	first, _ := bufio.NewReader(f).ReadString('\n')
	if first == quadlet.Header(unit) {
		return nil
	}
	by := "not written by podunit import quadlet"
	if from, ok := strings.CutPrefix(first, quadlet.HeaderPrefix); ok {
		by = "imported from " + strings.TrimSpace(from)
	}
	return fmt.Errorf("%s: %s exists, %s: rename the unit, or replace the file with --force", unit, target, by)
}
