package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

func newLogsCommand() *cobra.Command {
	var (
		pf                           podFlags
		container                    string
		follow, timestamps, previous bool
		tail                         int
		since                        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "a pod's container output, from the journal",
		Long: `Shows what a pod's containers wrote, from the journal, where podshim writes
every line with CONTAINER_NAME, POD_NAME, POD_NAMESPACE and STREAM
(journalctl POD_NAME=NAME and journalctl -u pod-NAME show the same).`,
		Example: "  podunit logs web\n  podunit logs web -c nginx -f --tail 20\n  podunit logs web -c nginx --previous",
		Args:    exactArgs(1, "one pod name"),
	}
	pf.register(cmd)
	cmd.ValidArgsFunction = pf.completePods(1)
	f := cmd.Flags()
	f.StringVarP(&container, "container", "c", "", "only this container (default: all of the pod's)")
	cmd.RegisterFlagCompletionFunc("container", pf.completeContainers)
	f.BoolVarP(&follow, "follow", "f", false, "follow")
	f.IntVar(&tail, "tail", -1, "only the last N lines")
	f.DurationVar(&since, "since", 0, "only lines newer than this, e.g. 10m")
	f.BoolVar(&timestamps, "timestamps", false, "prefix each line with its time")
	f.BoolVarP(&previous, "previous", "p", false, "the previous instance of the container (needs -c)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name := args[0]
		jargs, err := journalArgs(name, pf.namespace, container, follow, tail, since, timestamps)
		if err != nil {
			return err
		}
		if previous {
			if container == "" {
				return usageError(cmd, "--previous needs -c CONTAINER")
			}
			pod, err := pf.pod(name)
			if err != nil {
				return err
			}
			cs := containerStatus(pod, container)
			if cs == nil {
				return &exitError{exitFailure, fmt.Errorf("pod %s/%s has no container %q", pf.namespace, name, container)}
			}
			if cs.RestartCount == 0 {
				return &exitError{exitFailure, fmt.Errorf("container %q of pod %s/%s has no previous instance (it never restarted)", container, pf.namespace, name)}
			}
			jargs = append(jargs, "CONTAINER_RESTART_COUNT="+strconv.Itoa(int(cs.RestartCount-1)))
		}
		journal := exec.Command("journalctl", jargs...)
		out := &countingWriter{w: cmd.OutOrStdout()}
		journal.Stdout, journal.Stderr = out, cmd.ErrOrStderr()
		if err := journal.Run(); err != nil {
			return fmt.Errorf("journalctl: %w", err)
		}
		if out.n > 0 || follow {
			return nil
		}
		// Nothing in the journal (a volatile journal after a reboot, or one
		// rotated away): the runtime's own log files, as the kubelet reads.
		pod, err := pf.pod(name)
		if err != nil {
			return nil // no pod, no lines: as the journal said
		}
		return printCRILogs(cmd.OutOrStdout(), podshim.DefaultLogRoot, pod, container, tail, since, timestamps, time.Now())
	}
	return cmd
}

// printCRILogs prints the current log file of each container of the pod
// (or of one) from the kubelet's layout: ROOT/NS_NAME_UID/CONTAINER/N.log.
func printCRILogs(w io.Writer, root string, pod *corev1.Pod, container string, tail int, since time.Duration, timestamps bool, now time.Time) error {
	dir := filepath.Join(root, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
	var lines []podshim.LogLine
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if container != "" && c.Name != container {
			continue
		}
		cs := containerStatus(pod, c.Name)
		if cs == nil {
			continue
		}
		ls, err := podshim.ReadCRILog(filepath.Join(dir, c.Name, fmt.Sprintf("%d.log", cs.RestartCount)))
		if err != nil {
			continue
		}
		lines = append(lines, ls...)
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
	if since > 0 {
		lines = slices.DeleteFunc(lines, func(l podshim.LogLine) bool { return l.Time.Before(now.Add(-since)) })
	}
	if tail >= 0 && len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	for _, l := range lines {
		if timestamps {
			fmt.Fprintf(w, "%s %s\n", l.Time.Format(time.RFC3339Nano), l.Message)
		} else {
			fmt.Fprintln(w, l.Message)
		}
	}
	return nil
}

// containerStatus is the status of the pod's (init) container name.
func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// completeContainers completes -c with the containers of the pod named
// first on the command line.
func (p *podFlags) completeContainers(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	pod, err := p.pod(args[0])
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		out = append(out, c.Name)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
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

func newRestartCommand() *cobra.Command {
	var pf podFlags
	cmd := &cobra.Command{
		Use:   "restart NAME",
		Short: "restart a pod's unit",
		Long: `Restarts the pod's unit (systemctl restart pod-NAME.service): its containers
stop within their grace period, then the pod starts again in a new sandbox.`,
		Args: exactArgs(1, "one pod name"),
	}
	pf.register(cmd)
	cmd.ValidArgsFunction = pf.completePods(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return restartPod(cmd.OutOrStdout(), pf.namespace, args[0])
	}
	return cmd
}

func restartPod(stdout io.Writer, namespace, name string) error {
	unit := units.ServiceName(namespace, name)
	ctx := context.Background()
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to systemd: %w", err)
	}
	defer conn.Close()
	loaded, err := bus.List(ctx, conn)
	if err != nil {
		return err
	}
	if _, ok := loaded[unit]; !ok {
		return &exitError{exitFailure, fmt.Errorf("pod %s/%s has no unit (podunit get pods -A lists the pods)", namespace, name)}
	}
	if err := bus.Restart(ctx, conn, unit); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pod/%s restarted\n", name)
	return nil
}

// countingWriter passes writes on and counts their bytes.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
