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

Each manifest is checked as sync checks it; a unit whose manifest is not
valid is not written (exit status 3), the others are. Nothing of podman's is
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
		return importQuadlet(cmd.OutOrStdout(), dirs, quadlet.Convert(units, files), errs, dryRun, force)
	}
	return cmd
}

// importQuadlet writes (or, dry, prints) each unit's manifest into dirs[0]
// and reports what became of every key.
func importQuadlet(w io.Writer, dirs []string, imports []quadlet.Import, readErrs []error, dryRun, force bool) error {
	failed := slices.Clone(readErrs)
	var services, claims []string
	for _, im := range imports {
		if im.Err != nil {
			failed = append(failed, im.Err)
			continue
		}
		target := filepath.Join(dirs[0], im.File)
		if err := mayReplace(target, im.Unit, force); err != nil {
			failed = append(failed, err)
			continue
		}
		m, err := generator.DecodeManifest(target, im.Manifest)
		if err != nil {
			failed = append(failed, err) // Convert checked it: not expected
			continue
		}
		if err := checkNoOtherDefinition(dirs, target, m); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", im.Unit, err))
			continue
		}
		verb := "would be written"
		if !dryRun {
			if verb, err = writeManifest(target, im.Manifest, len(m.Secrets) > 0); err != nil {
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
		for _, p := range m.Pods {
			for _, v := range p.Spec.Spec.Volumes {
				if c := v.PersistentVolumeClaim; c != nil {
					claims = append(claims, fmt.Sprintf("podunit volume import %s --namespace %s", c.ClaimName, p.Namespace()))
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
