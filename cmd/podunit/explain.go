package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/podunit/podunit/generator"
)

func newExplainCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "explain KIND[.FIELD…]",
		Short: "what podunit does with a manifest field",
		Long: `Prints a field of a kind podunit reads, in kubectl explain's form: what it
is in Kubernetes (DESCRIPTION, from the API's own documentation), then what
podunit does with it (IN PODUNIT) and its class: honoured (mapped to the runtime and systemd as the kubelet maps it),
dropped (written by a server; removed without a word), notice (accepted
with a notice; only a scheduler or API server acts on it), admission
(matched against this node) or rejected (a manifest that sets it is
invalid). Below it, every field of its type with its class.

  podunit explain pod.spec.containers.ports
  podunit explain deployment.spec.strategy
  podunit explain pod.spec.tolerations
  podunit explain pod.spec.containers.readinessProbe
  podunit explain pod.metadata.annotations      (podman's annotations too)`,
		Args: exactArgs(1, "one KIND or KIND.FIELD path, e.g. pod.spec.containers"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := generator.Explain(args[0])
			if err != nil {
				return &exitError{exitFailure, err}
			}
			return printExplanation(cmd.OutOrStdout(), e)
		},
	}
}

// printExplanation prints as kubectl explain does, Kubernetes' description
// first, then what podunit does with the field.
func printExplanation(w io.Writer, e *generator.Explanation) error {
	fmt.Fprintf(w, "KIND:     %s\nVERSION:  %s\n\n", e.Kind, e.APIVersion)
	if e.Path != "" {
		last := e.Path[strings.LastIndex(e.Path, ".")+1:]
		fmt.Fprintf(w, "FIELD:    %s <%s>\nCLASS:    %s\n\n", last, e.Type, e.Class)
	}
	if e.Description != "" {
		fmt.Fprintf(w, "DESCRIPTION:\n%s\n\n", indentWrap(e.Description, "    ", 76))
	}
	if e.Path != "" && e.Doc != "" {
		fmt.Fprintf(w, "IN PODUNIT:\n%s\n\n", indentWrap(e.Doc, "    ", 76))
	}
	if len(e.Fields) == 0 {
		return nil
	}
	fmt.Fprintln(w, "FIELDS:")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, f := range e.Fields {
		fmt.Fprintf(tw, "  %s\t<%s>\t%s\t%s\n", f.Name, f.Type, f.Class, f.Doc)
	}
	return tw.Flush()
}

// indentWrap wraps text at width columns, each line indented.
func indentWrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line)
	return b.String()
}
