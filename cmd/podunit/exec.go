package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/podunit/podunit/criclient"
)

func newExecCommand() *cobra.Command {
	var (
		pf         podFlags
		configPath string
		container  string
		timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "exec NAME [-c CONTAINER] -- COMMAND [ARG...]",
		Short: "run a command in a pod's container",
		Long: `Runs a command in a running container of the pod through the runtime's CRI
ExecSync, prints its output and exits with its exit status, as
'kubectl exec' does.

The command runs without standard input or a terminal: podunit does not
speak the runtime's streaming protocol. For an interactive shell, use the
container ID this command's error or 'podunit describe pod' shows with
'crictl exec -it ID sh'.`,
		Example: "  podunit exec web -- cat /etc/hostname\n  podunit exec web -c sidecar -- sh -c 'ls /data'",
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return usageError(cmd, "podunit exec takes a pod name, then -- and the command")
			}
			return nil
		},
	}
	pf.register(cmd)
	cmd.ValidArgsFunction = pf.completePods(1)
	f := cmd.Flags()
	f.StringVar(&configPath, "config", DefaultConfigPath, "configuration file (for criEndpoint)")
	f.StringVarP(&container, "container", "c", "", "the container (default: the pod's first)")
	cmd.RegisterFlagCompletionFunc("container", pf.completeContainers)
	f.DurationVar(&timeout, "timeout", time.Minute, "kill the command after this long")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		pod, err := pf.pod(args[0])
		if err != nil {
			return err
		}
		if container == "" {
			container = pod.Spec.Containers[0].Name
		}
		cs := containerStatus(pod, container)
		if cs == nil {
			return &exitError{exitFailure, fmt.Errorf("pod %s/%s has no container %q", pod.Namespace, pod.Name, container)}
		}
		if cs.State.Running == nil {
			return &exitError{exitFailure, fmt.Errorf("container %q of pod %s/%s is not running (%s)", container, pod.Namespace, pod.Name, podStatusWord(pod))}
		}
		_, id, _ := strings.Cut(cs.ContainerID, "://")
		cfg, err := loadConfig(configPath, f.Changed("config"))
		if err != nil {
			return err
		}
		rt, err := criclient.New(cfg.CRIEndpoint)
		if err != nil {
			return err
		}
		defer rt.Close()
		rt.Timeout = 10 * time.Second
		stdout, stderr, err := rt.ExecSync(context.Background(), id, args[1:], timeout)
		cmd.OutOrStdout().Write(stdout)
		cmd.ErrOrStderr().Write(stderr)
		var ee *criclient.ExitError
		if errors.As(err, &ee) {
			// kubectl's words and the command's own status.
			return &exitError{int(ee.Code), fmt.Errorf("command terminated with exit code %d", ee.Code)}
		}
		if err != nil {
			return fmt.Errorf("exec in container %s (%s): %w", container, id, err)
		}
		return nil
	}
	return cmd
}
