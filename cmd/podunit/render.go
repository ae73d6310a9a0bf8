package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/podunit/podunit/generator"
)

func runRender(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("podunit render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", DefaultConfigPath, "configuration file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: podunit render [flags] FILE\n\nPrints the systemd unit(s) a manifest becomes, as unit-file text: the same\nsettings sync gives the transient unit over D-Bus.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return &exitError{exitUsage, errors.New("")}
	}
	cfg, err := loadConfig(*configPath, flagSet(fs, "config"))
	if err != nil {
		return err
	}
	pods, err := decodeFile(fs.Arg(0))
	if err != nil {
		return &exitError{exitInvalid, err}
	}
	ucfg := cfg.unitConfig(DefaultSpecDir)
	for i, p := range pods {
		u, err := generator.Unit(ucfg, p)
		if err != nil {
			return err
		}
		text, err := u.Render()
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		io.WriteString(stdout, text)
	}
	return nil
}
