package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCommand writes the man pages, from the same definitions as the
// help and the decoder: the packages run it at build time.
func newManCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "write podunit's man pages into DIR/man8 and DIR/man5",
		Hidden: true,
		Args:   exactArgs(1, "a directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			man8, man5 := filepath.Join(args[0], "man8"), filepath.Join(args[0], "man5")
			for _, d := range []string{man8, man5} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return err
				}
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			header := &doc.GenManHeader{Title: "PODUNIT", Section: "8", Source: "podunit " + version, Manual: "podunit manual"}
			if err := doc.GenManTree(root, header, man8); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			f, err := os.Create(filepath.Join(man5, "podunit-manifest.5"))
			if err != nil {
				return err
			}
			if err := writeManifestPage(f); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
	}
}
