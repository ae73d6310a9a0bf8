package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/units/status"
)

func newDescribeCommand() *cobra.Command {
	var (
		pf     podFlags
		events int
	)
	cmd := &cobra.Command{
		Use:   "describe pod|service NAME",
		Short: "show a pod or a Service in detail, with recent events",
		Long: `Shows a pod as 'kubectl describe pod' does: its manifest, unit, conditions,
containers with their states, volumes, and its recent events from the
journal (podshim's: container started, killed, probe failed, back-off; and
systemd's: unit started, stopped, restarted).

'describe service' shows a Service as 'kubectl describe service' does: its
manifest, labels, selector, type, ClusterIP, each port with its target
port, node port and endpoints (ready ones under Endpoints, the others under
Not Ready Endpoints), session affinity, a problem when it is served as
its last good definition, and the sync's journal entries about it. For a
Service that is not served it says why.`,
		Example: "  podunit describe pod web\n  podunit describe pod web -n edge\n  podunit describe service frontend",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 || !slices.Contains(append([]string{"pod", "pods", "po"}, serviceWords...), args[0]) {
				return usageError(cmd, "podunit describe takes 'pod' or 'service' and a name")
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, s string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []string{"pod", "service"}, cobra.ShellCompDirectiveNoFileComp
			}
			if slices.Contains(serviceWords, args[0]) {
				if len(args) > 1 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return pf.completeServices(cmd, args, s)
			}
			return pf.completePods(2)(cmd, args, s)
		},
	}
	pf.register(cmd)
	cmd.Flags().IntVar(&events, "events", 15, "how many recent events to show")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if slices.Contains(serviceWords, args[0]) {
			client := newStatusClient(pf.socket)
			svc, err := client.service(pf.namespace, args[1])
			if err != nil {
				return err
			}
			all, err := client.endpointSlices()
			if err != nil {
				return err
			}
			var mine []discoveryv1.EndpointSlice
			for _, sl := range all {
				if sl.Namespace == svc.Namespace && sl.Labels[discoveryv1.LabelServiceName] == svc.Name {
					mine = append(mine, sl)
				}
			}
			ev, err := serviceEvents(svc.Namespace+"/"+svc.Name, events)
			if err != nil {
				ev = []event{{Message: "(journal not readable: " + err.Error() + ")"}}
			}
			return describeService(cmd.OutOrStdout(), svc, mine, ev, time.Now())
		}
		pod, err := pf.pod(args[1])
		if err != nil {
			return err
		}
		unit := pod.Annotations[status.AnnotationUnit]
		ev, err := unitEvents(unit, events)
		if err != nil {
			ev = []event{{Message: "(journal not readable: " + err.Error() + ")"}}
		}
		return describePod(cmd.OutOrStdout(), pod, ev, time.Now())
	}
	return cmd
}

// event is a journal entry of a pod's unit that is not container output.
type event struct {
	Time    time.Time
	Source  string // podshim or systemd
	Message string
}

// unitEvents are the last n entries of the unit's journal that are not a
// container's output: podshim's and systemd's own lines about the pod.
func unitEvents(unit string, n int) ([]event, error) {
	if n <= 0 {
		return nil, nil
	}
	// Container output is most of the journal: read enough to find n.
	out, err := exec.Command("journalctl", "--no-pager", "-o", "json", "-n", strconv.Itoa(n*50+200),
		"--output-fields=MESSAGE,CONTAINER_NAME,_PID,__REALTIME_TIMESTAMP", "-u", unit).Output()
	if err != nil {
		return nil, fmt.Errorf("journalctl -u %s: %w", unit, err)
	}
	var evs []event
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) != nil || e["CONTAINER_NAME"] != nil {
			continue
		}
		msg, ok := e["MESSAGE"].(string)
		if !ok {
			continue
		}
		us, _ := strconv.ParseInt(fmt.Sprint(e["__REALTIME_TIMESTAMP"]), 10, 64)
		source := "podshim"
		if e["_PID"] == "1" {
			source = "systemd"
		}
		evs = append(evs, event{Time: time.UnixMicro(us), Source: source, Message: eventMessage(msg)})
	}
	if len(evs) > n {
		evs = evs[len(evs)-n:]
	}
	return evs, nil
}

// eventMessage makes podshim's log line (slog's key=value text) read as an
// event: `level=WARN msg="container exited; restarting it" container=web`
// becomes `container exited; restarting it: container=web`.
func eventMessage(line string) string {
	rest, ok := strings.CutPrefix(line, "level=")
	if !ok {
		return line
	}
	_, rest, _ = strings.Cut(rest, " ")
	rest, ok = strings.CutPrefix(rest, "msg=")
	if !ok {
		return line
	}
	var msg string
	if strings.HasPrefix(rest, `"`) {
		if q, err := strconv.QuotedPrefix(rest); err == nil {
			msg, _ = strconv.Unquote(q)
			rest = strings.TrimSpace(rest[len(q):])
		}
	} else {
		msg, rest, _ = strings.Cut(rest, " ")
	}
	// Every line of a pod's journal is about the pod: its pod= says nothing.
	if f := strings.Fields(rest); len(f) > 0 && strings.HasPrefix(f[0], "pod=") {
		rest = strings.TrimSpace(strings.TrimPrefix(rest, f[0]))
	}
	if rest == "" {
		return msg
	}
	return msg + ": " + rest
}

// describePod writes kubectl describe's layout.
func describePod(w io.Writer, p *corev1.Pod, events []event, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	field := func(indent int, name, format string, args ...any) {
		fmt.Fprintf(tw, "%s%s:\t%s\n", strings.Repeat("  ", indent), name, fmt.Sprintf(format, args...))
	}
	field(0, "Name", "%s", p.Name)
	field(0, "Namespace", "%s", p.Namespace)
	field(0, "Manifest", "%s", orNone(p.Annotations[generator.AnnotationManifest]))
	field(0, "Source", "%s", orNone(p.Annotations[generator.AnnotationConfigSource]))
	field(0, "Unit", "%s", unitSummary(p))
	if p.Status.StartTime != nil {
		field(0, "Start Time", "%s", p.Status.StartTime.Format(time.RFC1123Z))
	}
	field(0, "Labels", "%s", keyValues(p.Labels))
	field(0, "Status", "%s", podStatusWord(p))
	if p.Status.Message != "" {
		field(0, "Message", "%s", p.Status.Message)
	}
	field(0, "IP", "%s", p.Status.PodIP)
	if p.Status.QOSClass != "" {
		field(0, "QoS Class", "%s", p.Status.QOSClass)
	}
	if len(p.Spec.InitContainers) > 0 {
		fmt.Fprintln(tw, "Init Containers:")
		describeContainers(tw, p.Spec.InitContainers, p.Status.InitContainerStatuses)
	}
	fmt.Fprintln(tw, "Containers:")
	describeContainers(tw, p.Spec.Containers, p.Status.ContainerStatuses)
	fmt.Fprintln(tw, "Conditions:")
	fmt.Fprintln(tw, "  Type\tStatus\tReason\tMessage")
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	if len(p.Spec.Volumes) > 0 {
		fmt.Fprintln(tw, "Volumes:")
		for _, v := range p.Spec.Volumes {
			fmt.Fprintf(tw, "  %s:\t%s\n", v.Name, volumeKind(v))
		}
	}
	if notices := p.Annotations[generator.AnnotationNotices]; notices != "" {
		// What the manifest asks that podunit accepted without acting on.
		fmt.Fprintln(tw, "Notices:")
		for _, n := range strings.Split(notices, "\n") {
			fmt.Fprintf(tw, "  %s\n", n)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeEvents(w, events, now)
}

// writeEvents writes describe's Events section.
func writeEvents(w io.Writer, events []event, now time.Time) error {
	if len(events) == 0 {
		fmt.Fprintln(w, "Events:  <none>")
		return nil
	}
	fmt.Fprintln(w, "Events:")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  Age\tFrom\tMessage")
	for _, e := range events {
		age := "<unknown>"
		if !e.Time.IsZero() {
			age = shortDuration(now.Sub(e.Time))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", age, e.Source, e.Message)
	}
	return tw.Flush()
}

func describeContainers(tw io.Writer, specs []corev1.Container, statuses []corev1.ContainerStatus) {
	for _, c := range specs {
		field := func(name, format string, args ...any) {
			fmt.Fprintf(tw, "    %s:\t%s\n", name, fmt.Sprintf(format, args...))
		}
		fmt.Fprintf(tw, "  %s:\n", c.Name)
		var cs *corev1.ContainerStatus
		for i := range statuses {
			if statuses[i].Name == c.Name {
				cs = &statuses[i]
			}
		}
		if cs != nil && cs.ContainerID != "" {
			field("Container ID", "%s", cs.ContainerID)
		}
		field("Image", "%s", c.Image)
		if cs != nil && cs.ImageID != "" {
			field("Image ID", "%s", cs.ImageID)
		}
		for _, port := range c.Ports {
			hp := ""
			if port.HostPort != 0 {
				hp = fmt.Sprintf(" (host port %d)", port.HostPort)
			}
			field("Port", "%d/%s%s", port.ContainerPort, port.Protocol, hp)
		}
		// As kubectl: one line a word, a word's own lines indented alike.
		for _, list := range []struct {
			name  string
			words []string
		}{{"Command", c.Command}, {"Args", c.Args}} {
			if len(list.words) == 0 {
				continue
			}
			fmt.Fprintf(tw, "    %s:\n", list.name)
			for _, w := range list.words {
				for _, line := range strings.Split(strings.TrimRight(w, "\n"), "\n") {
					fmt.Fprintf(tw, "      %s\n", line)
				}
			}
		}
		if cs != nil {
			describeState(tw, "State", cs.State)
			if cs.LastTerminationState != (corev1.ContainerState{}) {
				describeState(tw, "Last State", cs.LastTerminationState)
			}
			field("Ready", "%t", cs.Ready)
			field("Restart Count", "%d", cs.RestartCount)
		}
		if lim := resourceList(c.Resources.Limits); lim != "" {
			field("Limits", "%s", lim)
		}
		if req := resourceList(c.Resources.Requests); req != "" {
			field("Requests", "%s", req)
		}
		for _, pr := range []struct {
			name  string
			probe *corev1.Probe
		}{{"Liveness", c.LivenessProbe}, {"Readiness", c.ReadinessProbe}, {"Startup", c.StartupProbe}} {
			if pr.probe != nil {
				field(pr.name, "%s", probeSummary(pr.probe))
			}
		}
		for _, m := range c.VolumeMounts {
			ro := "rw"
			if m.ReadOnly {
				ro = "ro"
			}
			field("Mount", "%s from %s (%s)", m.MountPath, m.Name, ro)
		}
	}
}

func describeState(tw io.Writer, name string, s corev1.ContainerState) {
	line := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "      %s:\t%s\n", k, fmt.Sprintf(format, args...))
	}
	switch {
	case s.Running != nil:
		fmt.Fprintf(tw, "    %s:\tRunning\n", name)
		line("Started", "%s", s.Running.StartedAt.Format(time.RFC1123Z))
	case s.Waiting != nil:
		fmt.Fprintf(tw, "    %s:\tWaiting\n", name)
		line("Reason", "%s", s.Waiting.Reason)
		if s.Waiting.Message != "" {
			line("Message", "%s", s.Waiting.Message)
		}
	case s.Terminated != nil:
		fmt.Fprintf(tw, "    %s:\tTerminated\n", name)
		line("Reason", "%s", s.Terminated.Reason)
		line("Exit Code", "%d", s.Terminated.ExitCode)
		if !s.Terminated.StartedAt.IsZero() {
			line("Started", "%s", s.Terminated.StartedAt.Format(time.RFC1123Z))
		}
		if !s.Terminated.FinishedAt.IsZero() {
			line("Finished", "%s", s.Terminated.FinishedAt.Format(time.RFC1123Z))
		}
	default:
		fmt.Fprintf(tw, "    %s:\tUnknown\n", name)
	}
}

// unitSummary is the unit's name and state, with systemd's figures.
func unitSummary(p *corev1.Pod) string {
	a := p.Annotations
	s := orNone(a[status.AnnotationUnit])
	if st := a[status.AnnotationUnitState]; st != "" {
		s += ", " + st
	}
	if r := a[status.AnnotationUnitRestarts]; r != "" {
		s += ", restarted " + r + " time(s) by systemd"
	}
	if m, err := strconv.ParseUint(a[status.AnnotationMemoryBytes], 10, 64); err == nil {
		s += fmt.Sprintf(", memory %.1fMi", float64(m)/(1<<20))
	}
	if c := a[status.AnnotationCPUSeconds]; c != "" {
		s += ", cpu " + c + "s"
	}
	return s
}

func probeSummary(p *corev1.Probe) string {
	var how string
	switch h := p.ProbeHandler; {
	case h.HTTPGet != nil:
		how = fmt.Sprintf("http-get %s://:%s%s", strings.ToLower(string(h.HTTPGet.Scheme)), h.HTTPGet.Port.String(), h.HTTPGet.Path)
	case h.TCPSocket != nil:
		how = "tcp-socket :" + h.TCPSocket.Port.String()
	case h.GRPC != nil:
		how = fmt.Sprintf("grpc :%d", h.GRPC.Port)
	case h.Exec != nil:
		how = "exec " + strings.Join(h.Exec.Command, " ")
	}
	return fmt.Sprintf("%s delay=%ds timeout=%ds period=%ds #success=%d #failure=%d", how,
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
}

func volumeKind(v corev1.Volume) string {
	switch s := v.VolumeSource; {
	case s.HostPath != nil:
		return "HostPath " + s.HostPath.Path
	case s.EmptyDir != nil:
		if s.EmptyDir.Medium == corev1.StorageMediumMemory {
			return "EmptyDir (tmpfs)"
		}
		return "EmptyDir"
	case s.ConfigMap != nil:
		return "ConfigMap " + s.ConfigMap.Name
	case s.Secret != nil:
		return "Secret " + s.Secret.SecretName
	case s.PersistentVolumeClaim != nil:
		return "PersistentVolumeClaim " + s.PersistentVolumeClaim.ClaimName
	case s.DownwardAPI != nil:
		return "DownwardAPI"
	case s.Projected != nil:
		return "Projected"
	}
	return "<unknown>"
}

func resourceList(rl corev1.ResourceList) string {
	var parts []string
	for name, q := range rl {
		parts = append(parts, string(name)+"="+q.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func keyValues(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
