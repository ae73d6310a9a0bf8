package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/criclient"
)

func newExecCommand() *cobra.Command {
	var (
		pf         podFlags
		configPath string
		container  string
		timeout    time.Duration
		stdin, tty bool
	)
	cmd := &cobra.Command{
		Use:   "exec NAME [-c CONTAINER] -- COMMAND [ARG...]",
		Short: "run a command in a pod's container",
		Long: `Runs a command in a running container of the pod and exits with its exit
status, as 'kubectl exec' does. Without -i and -t it runs through the
runtime's CRI ExecSync (bounded by --timeout); with them through the
runtime's streaming server (the kubelet's remotecommand protocol over a
WebSocket): -it gives the command your standard input and a terminal of
your terminal's size, in raw mode, for an interactive shell.

-i without -t passes standard input to the command and, at its end, closes
the command's, so that a command reading to the end of its input (cat, a
restore from a dump) finishes: 'podunit exec -i db -- psql < dump.sql'.`,
		Example: "  podunit exec web -- cat /etc/hostname\n  podunit exec -it web -- sh\n  podunit exec web -c sidecar -- sh -c 'ls /data'",
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
	f.DurationVar(&timeout, "timeout", time.Minute, "kill the command after this long (without -i and -t)")
	f.BoolVarP(&stdin, "stdin", "i", false, "pass standard input to the command")
	f.BoolVarP(&tty, "tty", "t", false, "give the command a terminal")
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
		cfg, _, err := loadConfigWithKubelet(configPath, f.Changed("config"), "")
		if err != nil {
			return err
		}
		rt, err := criclient.New(cfg.CRIEndpoint)
		if err != nil {
			return err
		}
		defer rt.Close()
		rt.Timeout = 10 * time.Second
		if stdin || tty {
			url, err := rt.Exec(context.Background(), &runtimeapi.ExecRequest{
				ContainerId: id, Cmd: args[1:], Stdin: stdin, Stdout: true, Stderr: !tty, Tty: tty,
			})
			if err != nil {
				return fmt.Errorf("exec in container %s (%s): %w", container, id, err)
			}
			var in io.Reader
			if stdin {
				in = cmd.InOrStdin()
			}
			// Standard input without a terminal goes over SPDY, whose
			// streams end one by one: the command sees the end of its
			// input. A terminal goes over a WebSocket.
			var code int
			if stdin && !tty {
				code, err = execSPDY(url, in, cmd.OutOrStdout(), cmd.ErrOrStderr())
			} else {
				code, err = streamExec(url, in, cmd.OutOrStdout(), cmd.ErrOrStderr(), tty)
			}
			if err != nil {
				return fmt.Errorf("exec in container %s (%s): %w", container, id, err)
			}
			if code != 0 {
				return &exitError{code, fmt.Errorf("command terminated with exit code %d", code)}
			}
			return nil
		}
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
