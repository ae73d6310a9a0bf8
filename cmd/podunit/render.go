package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/podunit/podunit/generator"
)

func newRenderCommand() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "render FILE",
		Short: "print the systemd unit a manifest becomes",
		Long: `Prints the systemd unit(s) a manifest becomes, as unit-file text: the same
settings sync gives the transient unit over D-Bus. FILE "-" is standard input.`,
		Args: exactArgs(1, "one manifest file"),
	}
	cmd.Flags().StringVar(&configPath, "config", DefaultConfigPath, "configuration file")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := loadConfig(configPath, cmd.Flags().Changed("config"))
		if err != nil {
			return err
		}
		pods, err := decodeFile(args[0])
		if err != nil {
			return &exitError{exitInvalid, err}
		}
		return renderUnits(cmd.OutOrStdout(), cfg, pods)
	}
	return cmd
}

func renderUnits(stdout io.Writer, cfg Config, pods []*generator.Pod) error {
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
