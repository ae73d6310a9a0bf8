package main

import (
	"context"
	"fmt"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"

	"github.com/podunit/podunit/criclient"
	"github.com/podunit/podunit/criclient/archive"
	"github.com/podunit/podunit/units/bus"
	"github.com/podunit/podunit/units/engine"
)

// newImagesCommand groups what podunit does with images itself.
func newImagesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "import image archives into the runtime",
	}
	cmd.AddCommand(newImagesImportCommand())
	return cmd
}

func newImagesImportCommand() *cobra.Command {
	var configPath, dir string
	cmd := &cobra.Command{
		Use:   "import",
		Short: "import the image archives of the images directory into the runtime",
		Long: `Imports every image archive in the images directory (imagesDir in
config.yaml, default /var/lib/podunit/images) that is new or changed since
its last import into the container runtime: the files 'docker save',
'podman save' and 'skopeo copy ... oci-archive:FILE:NAME' write (*.tar,
*.tar.gz, *.tgz, *.oci), each naming its images. A box is provisioned and
boots without any registry this way: podunit-images.service runs it at
boot, before the first sync starts the pods, and podunit-images.path
whenever a file is dropped into the directory. containerd's archives are
imported with ctr; into CRI-O each image is copied with skopeo into the
store CRI-O reports on its socket.

Exit status: 0 when every archive is imported, 1 otherwise (each failure
names its file).`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&configPath, "config", DefaultConfigPath, "configuration file")
	cmd.Flags().StringVar(&dir, "dir", "", "the images directory (default: imagesDir of config.yaml)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, _, err := loadConfigWithKubelet(configPath, cmd.Flags().Changed("config"), "")
		if err != nil {
			return err
		}
		if dir == "" {
			dir = cfg.ImagesDir
		}
		// Nothing to import (most boots): the runtime is not even asked.
		if names, err := archive.Archives(dir); err != nil {
			return err
		} else if len(names) == 0 {
			return nil
		}
		ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer cancel()
		rt, err := criclient.New(cfg.CRIEndpoint)
		if err != nil {
			return err
		}
		defer rt.Close()
		vctx, vcancel := context.WithTimeout(ctx, time.Minute)
		defer vcancel()
		v, err := rt.Version(vctx, "")
		if err != nil {
			return fmt.Errorf("CRI runtime at %s: %w", cfg.CRIEndpoint, err)
		}
		im := archive.Importer{Runtime: v.RuntimeName, Address: strings.TrimPrefix(cfg.CRIEndpoint, "unix://"), Images: rt}
		if v.RuntimeName == "cri-o" {
			// Into the store CRI-O runs with, wherever its crio.conf puts it.
			c, err := criclient.ReadCRIOConfig(vctx, cfg.CRIEndpoint)
			if err != nil {
				return err
			}
			if c.StorageDriver != "" && c.Root != "" && c.RunRoot != "" {
				im.Store = fmt.Sprintf("[%s@%s+%s]", c.StorageDriver, c.Root, c.RunRoot)
			}
		}
		results, err := im.ImportDir(ctx, dir)
		report := newReporter(cmd.ErrOrStderr(), false)
		imported, failed := 0, 0
		for _, r := range results {
			switch {
			case r.Err != nil:
				failed++
				report.Errorf("%v", r.Err)
			case r.Unchanged:
			default:
				imported++
				report.Infof("imported %s from %s", strings.Join(r.Images, ", "), r.File)
			}
		}
		if err != nil {
			return err
		}
		if imported > 0 {
			// Pods waiting for these images start at their next try; a
			// sync starts the new pods that need them at once.
			if conn, err := dbus.NewSystemConnectionContext(ctx); err == nil {
				_ = bus.QueueStart(ctx, conn, engine.SyncUnit)
				conn.Close()
			}
		}
		if failed > 0 {
			return &exitError{exitFailure, fmt.Errorf("%d image archive(s) not imported", failed)}
		}
		return nil
	}
	return cmd
}
