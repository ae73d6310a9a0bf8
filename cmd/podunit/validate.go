package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podunit/podunit/generator"
)

func newValidateCommand() *cobra.Command {
	var (
		configPath string
		strict     bool
	)
	cmd := &cobra.Command{
		Use:   "validate FILE|DIR...",
		Short: "check manifests as sync would, without running anything",
		Long: `Decodes and validates manifests exactly as sync does: every error names the
file, line and field. References to ConfigMaps, Secrets and claims are
resolved across all the files given and then the configured manifest
sources, as sync resolves them; pods are matched against this node
(nodeSelector, node affinity) as sync matches them.

Services are checked against the node's ClusterIP and node port ranges
and against each other and the pods' hostPorts, as sync checks them.

Notices (fields that only a scheduler or an API server acts on, kinds that
are skipped) are printed but do not fail, unless config.yaml says
strict: true or --strict is given. Exit status 3 when any file is invalid.
FILE "-" is standard input. A directory DIR is read as sync reads a
manifest directory, as kubectl reads one: its .yaml, .yml and .json files
in name order, not recursively, skipping (and naming) editors' backups and
hidden files. 'podunit explain' tells what podunit does with each field.`,
		Args: minArgs(1, "one or more manifest files or directories"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := loadConfigWithKubelet(configPath, cmd.Flags().Changed("config"), "")
			if err != nil {
				return err
			}
			if strict {
				cfg.Strict = true
			}
			return validateFiles(cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg, args)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", DefaultConfigPath, "configuration file (sources, strict, nodeName, nodeLabels)")
	cmd.Flags().BoolVar(&strict, "strict", false, "make every notice an error, as strict: true in config.yaml")
	return cmd
}

// validateFiles checks files as sync would read them beside cfg's sources
// and prints, per file, what it defines, its notices and its errors.
func validateFiles(stdout, stderr io.Writer, cfg Config, args []string) error {
	files, skipped, err := manifestArgs(args)
	if err != nil {
		return err
	}
	for _, sk := range skipped {
		fmt.Fprintf(stdout, "%s: skipped: %s\n", sk.Path, sk.Reason)
	}
	var given []generator.File
	var errs []error
	for _, file := range files {
		data, err := readManifest(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		given = append(given, generator.File{Path: file, Data: data})
	}
	set, err := cfg.reader().Check(given, cfg.sources(DefaultURLCache)...)
	if err != nil {
		return err
	}
	for _, n := range set.Notices {
		fmt.Fprintln(stdout, n)
	}
	for _, p := range set.Pods {
		fmt.Fprintf(stdout, "%s: pod %s is valid (config %s)\n", p.Source, p.Key(), p.Hash)
	}
	for _, p := range set.CronJobs {
		fmt.Fprintf(stdout, "%s: CronJob %s is valid (config %s): %s\n", p.Source, p.Key(), p.Hash, describeSchedule(p.Cron))
	}
	for _, s := range set.Services {
		fmt.Fprintf(stdout, "%s: Service %s is valid: %s\n", s.Source, s.Key(), s.Summary())
	}
	for _, p := range set.NotAdmitted {
		what := "pod"
		if p.Cron != nil {
			what = "CronJob"
		}
		fmt.Fprintf(stdout, "%s: %s %s is valid (config %s) but is not started on this node: %s\n", p.Source, what, p.Key(), p.Hash, p.Rejected)
	}
	for _, d := range set.Defined {
		fmt.Fprintf(stdout, "%s: defines %s %s/%s\n", d.File, d.Kind, d.Namespace, d.Name)
	}
	for _, e := range append(errs, set.Errors...) {
		for _, fe := range generator.Flatten(e) {
			fmt.Fprintln(stderr, fe)
		}
	}
	if n := invalidFiles(errs, set.Errors); n > 0 {
		return &exitError{exitInvalid, fmt.Errorf("%d of %d file(s) invalid", n, len(files))}
	}
	return nil
}

// describeSchedule says when a CronJob runs: its schedule and the timer's
// calendar expressions.
func describeSchedule(c *generator.CronJob) string {
	if c.Suspend {
		return "suspended: no runs until spec.suspend is false"
	}
	cal, err := c.OnCalendar()
	if err != nil {
		return err.Error()
	}
	tz := ""
	if c.TimeZone != "" {
		tz = " in " + c.TimeZone
	}
	return fmt.Sprintf("runs at %q%s (OnCalendar=%s), concurrencyPolicy %s", c.Schedule, tz, strings.Join(cal, " and OnCalendar="), c.Concurrency)
}

// invalidFiles counts the files with at least one error.
func invalidFiles(readErrs, errs []error) int {
	files := map[string]bool{}
	for _, e := range errs {
		for _, fe := range generator.Flatten(e) {
			var f *generator.FieldError
			if errors.As(fe, &f) {
				files[f.File] = true
			}
		}
	}
	return len(files) + len(readErrs)
}

// decodeFile reads one manifest ("-" for standard input) as sync would,
// on its own.
func decodeFile(file string) ([]*generator.Pod, error) {
	data, err := readManifest(file)
	if err != nil {
		return nil, err
	}
	return generator.Decode(file, data)
}

// manifestArgs are the manifest files that args name: a file as it is ("-"
// too), a directory's manifests as sync reads a manifest directory, with
// the entries it skips.
func manifestArgs(args []string) (files []string, skipped []generator.Skipped, err error) {
	for _, arg := range args {
		if info, serr := os.Stat(arg); arg == "-" || serr != nil || !info.IsDir() {
			files = append(files, arg) // reading it says what is wrong
			continue
		}
		paths, sk, err := generator.ManifestFiles(arg)
		if err != nil {
			return nil, nil, err
		}
		if len(paths) == 0 {
			return nil, nil, &exitError{exitInvalid, fmt.Errorf("%s: no manifest (.yaml, .yml or .json file) in the directory", arg)}
		}
		files = append(files, paths...)
		skipped = append(skipped, sk...)
	}
	return files, skipped, nil
}
