package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/podunit/podunit/generator"
)

func runValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("podunit validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: podunit validate FILE...\n\nDecodes and validates manifests exactly as sync does. Exit status 3 when\nany is invalid.")
	}
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		fs.Usage()
		return &exitError{exitUsage, errors.New("")}
	}
	invalid := 0
	for _, file := range fs.Args() {
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
		return &exitError{exitInvalid, fmt.Errorf("%d of %d file(s) invalid", invalid, fs.NArg())}
	}
	return nil
}

// decodeFile reads one manifest ("-" for standard input) as sync would.
func decodeFile(file string) ([]*generator.Pod, error) {
	var (
		data []byte
		err  error
	)
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, generator.MaxManifestSize+1))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, err
	}
	return generator.Decode(file, data)
}
