package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/podunit/podunit/generator"
)

func newValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "check manifests as sync would, without running anything",
		Long: `Decodes and validates manifests exactly as sync does: every error names the
file, line and field. Exit status 3 when any is invalid. FILE "-" is
standard input.`,
		Args: minArgs(1, "one or more manifest files"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return validateFiles(cmd.OutOrStdout(), cmd.ErrOrStderr(), args)
		},
	}
}

func validateFiles(stdout, stderr io.Writer, files []string) error {
	invalid := 0
	for _, file := range files {
		pods, err := decodeFile(file)
		if err != nil {
			fmt.Fprintln(stderr, err)
			invalid++
			continue
		}
		for _, p := range pods {
			fmt.Fprintf(stdout, "%s: pod %s is valid (config %s)\n", file, p.Key(), p.Hash)
		}
	}
	if invalid > 0 {
		return &exitError{exitInvalid, fmt.Errorf("%d of %d file(s) invalid", invalid, len(files))}
	}
	return nil
}

// decodeFile reads one manifest ("-" for standard input) as sync would.
func decodeFile(file string) ([]*generator.Pod, error) {
	data, err := readManifest(file)
	if err != nil {
		return nil, err
	}
	return generator.Decode(file, data)
}
