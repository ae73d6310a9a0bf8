package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"

	"github.com/podunit/podunit/units"
)

// runLogs is `podunit logs`: a pod's container output, which podshim
// forwards to the journal with the pod's and container's fields.
func runLogs(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("podunit logs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	namespace := fs.String("n", "default", "the pod's namespace")
	container := fs.String("c", "", "only this container (default: all of the pod's)")
	follow := fs.Bool("f", false, "follow")
	tail := fs.Int("tail", -1, "only the last N lines")
	since := fs.Duration("since", 0, "only lines newer than this, e.g. 10m")
	timestamps := fs.Bool("timestamps", false, "prefix each line with its time")
	previous := fs.Bool("previous", false, "the previous instance of the container (needs -c)")
	socket := fs.String("socket", DefaultStatusSocket, "the status API's socket (for --previous)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: podunit logs NAME [-n NAMESPACE] [-c CONTAINER] [-f] [--tail N] [--since D] [--timestamps] [--previous]\n\nReads the journal, where podshim writes every line with CONTAINER_NAME, POD_NAME\nand POD_NAMESPACE (journalctl POD_NAME=NAME shows the same).\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorderFlags(fs, args)); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return &exitError{exitUsage, errors.New("")}
	}
	name := fs.Arg(0)
	jargs, err := journalArgs(name, *namespace, *container, *follow, *tail, *since, *timestamps)
	if err != nil {
		return err
	}
	if *previous {
		if *container == "" {
			return &exitError{exitUsage, errors.New("--previous needs -c CONTAINER")}
		}
		n, err := restartCount(newStatusClient(*socket), *namespace, name, *container)
		if err != nil {
			return err
		}
		if n == 0 {
			return &exitError{exitFailure, fmt.Errorf("container %q of pod %s/%s has no previous instance (it never restarted)", *container, *namespace, name)}
		}
		jargs = append(jargs, "CONTAINER_RESTART_COUNT="+strconv.Itoa(int(n-1)))
	}
	cmd := exec.Command("journalctl", jargs...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("journalctl: %w", err)
	}
	return nil
}

// journalArgs are journalctl's arguments for a pod's container lines.
func journalArgs(name, namespace, container string, follow bool, tail int, since time.Duration, timestamps bool) ([]string, error) {
	if err := units.CheckPodName(namespace, name); err != nil {
		return nil, &exitError{exitUsage, err}
	}
	format := "cat"
	if timestamps {
		format = "short-iso-precise"
	}
	args := []string{"--no-pager", "-o", format, "POD_NAMESPACE=" + namespace, "POD_NAME=" + name}
	if container != "" {
		args = append(args, "CONTAINER_NAME="+container)
	}
	if tail >= 0 {
		args = append(args, "-n", strconv.Itoa(tail))
	}
	if since > 0 {
		args = append(args, "--since", fmt.Sprintf("-%ds", int(since.Seconds())))
	}
	if follow {
		args = append(args, "-f")
	}
	return args, nil
}

func restartCount(c *statusClient, namespace, name, container string) (int32, error) {
	pods, err := c.pods()
	if err != nil {
		return 0, err
	}
	for _, p := range pods {
		if p.Namespace != namespace || p.Name != name {
			continue
		}
		for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			if cs.Name == container {
				return cs.RestartCount, nil
			}
		}
		return 0, fmt.Errorf("pod %s/%s has no container %q", namespace, name, container)
	}
	return 0, fmt.Errorf("pod %s/%s not found", namespace, name)
}

// runRestart is `podunit restart NAME`: the pod's unit is restarted, so the
// pod is torn down (preStop hooks, grace period) and made anew.
func runRestart(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("podunit restart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	namespace := fs.String("n", "default", "the pod's namespace")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: podunit restart NAME [-n NAMESPACE]\n\nRestarts the pod's unit (systemctl restart pod-NAME.service): its containers\nstop within their grace period, then the pod starts again in a new sandbox.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorderFlags(fs, args)); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return &exitError{exitUsage, errors.New("")}
	}
	unit := units.ServiceName(*namespace, fs.Arg(0))
	ctx := context.Background()
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to systemd: %w", err)
	}
	defer conn.Close()
	loaded, err := units.List(ctx, conn)
	if err != nil {
		return err
	}
	if _, ok := loaded[unit]; !ok {
		return &exitError{exitFailure, fmt.Errorf("pod %s/%s has no unit (podunit get pods -A lists the pods)", *namespace, fs.Arg(0))}
	}
	done := make(chan string, 1)
	if _, err := conn.RestartUnitContext(ctx, unit, "replace", done); err != nil {
		return fmt.Errorf("restart %s: %w", unit, err)
	}
	if r := <-done; r != "done" {
		return fmt.Errorf("restart %s: %s (journalctl -u %s)", unit, r, unit)
	}
	fmt.Fprintf(stdout, "pod/%s restarted\n", fs.Arg(0))
	return nil
}
