package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"cmp"
	"github.com/podunit/podunit/units/status"
	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// statusClient reads the status API on its socket, as every CLI command
// that shows state does.
type statusClient struct {
	socket string
	http   *http.Client
}

func newStatusClient(socket string) *statusClient {
	return &statusClient{socket: socket, http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}}
}

func (c *statusClient) pods() ([]corev1.Pod, error) {
	var list corev1.PodList
	if err := c.get("/pods", &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

func (c *statusClient) cronJobs() ([]batchv1.CronJob, error) {
	var list batchv1.CronJobList
	if err := c.get("/cronjobs", &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// get decodes the JSON answer to GET path into v.
func (c *statusClient) get(path string, v any) error {
	resp, err := c.http.Get("http://localhost" + path)
	if err != nil {
		return fmt.Errorf("status API at %s: %w (is podunit-status.socket running? systemctl enable --now podunit-status.socket)", c.socket, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &statusError{code: resp.StatusCode, status: resp.Status, msg: strings.TrimSpace(string(b))}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("status API: %w", err)
	}
	return nil
}

// statusError is an answer of the status API other than 200 OK.
type statusError struct {
	code        int
	status, msg string
}

func (e *statusError) Error() string { return fmt.Sprintf("status API: %s: %s", e.status, e.msg) }

// podFlags are the flags of every command that names pods: the namespace
// and the status API's socket.
type podFlags struct {
	namespace, socket string
}

func (p *podFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&p.namespace, "namespace", "n", corev1.NamespaceDefault, "the pod's namespace")
	cmd.Flags().StringVar(&p.socket, "socket", DefaultStatusSocket, "the status API's socket")
	cmd.RegisterFlagCompletionFunc("namespace", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		pods, err := newStatusClient(p.socket).pods()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, pod := range pods {
			if !slices.Contains(out, pod.Namespace) {
				out = append(out, pod.Namespace)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
}

// completePods completes pod names from the status API, for the shells.
func (p *podFlags) completePods(max int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if max >= 0 && len(args) >= max {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		pods, err := newStatusClient(p.socket).pods()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, pod := range pods {
			if pod.Namespace == p.namespace {
				out = append(out, pod.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeServices completes Service names from the status API.
func (p *podFlags) completeServices(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	list, err := newStatusClient(p.socket).services()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, s := range list {
		if s.Namespace == p.namespace {
			out = append(out, s.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// pod finds one pod in the status API.
func (p *podFlags) pod(name string) (*corev1.Pod, error) {
	pods, err := newStatusClient(p.socket).pods()
	if err != nil {
		return nil, err
	}
	for i := range pods {
		if pods[i].Namespace == p.namespace && pods[i].Name == name {
			return &pods[i], nil
		}
	}
	return nil, &exitError{exitFailure, fmt.Errorf("pod %q not found in namespace %q (podunit get pods -A lists the pods)", name, p.namespace)}
}

func newGetCommand() *cobra.Command {
	var (
		pf     podFlags
		all    bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "get pods|cronjobs|services [NAME...]",
		Short: "list pods, CronJobs or Services as kubectl does",
		Long: `Lists pods as 'kubectl get pods' does: NAME, READY, STATUS, RESTARTS, AGE, and
with -o wide the pod's IP, its unit and the manifest it came from. STATUS
uses Kubernetes' words (Running, Pending, CrashLoopBackOff, ImagePullBackOff,
Completed, Error), and InvalidManifest for a pod that runs on its last good
spec because its manifest became invalid.

'get cronjobs' lists the CronJobs as 'kubectl get cronjobs' does: NAME,
SCHEDULE, TIMEZONE, SUSPEND, ACTIVE (runs still running), LAST SCHEDULE,
and instead of AGE, NEXT: when the CronJob's timer fires next. With -o wide
its timer and manifest. Each run is a pod (get pods).

'get services' lists the Services as 'kubectl get services' does: NAME,
TYPE, CLUSTER-IP (the address the sync gave it, kept until its manifest is
removed), EXTERNAL-IP (a LoadBalancer's: the node's addresses, as k3s's
ServiceLB reports them), PORT(S) (port:nodePort/protocol) and AGE; with
-o wide its SELECTOR. -o json and -o yaml print a v1 ServiceList. A Service
that is not served (its manifest asks for what another holds, or a range
is exhausted) is not listed: 'podunit describe service NAME' says why.`,
		Example: "  podunit get pods\n  podunit get pods -A -o wide\n  podunit get pods web -o yaml\n  podunit get cronjobs\n  podunit get services -A -o wide",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 || !slices.Contains(append([]string{"pods", "pod", "po", "cronjobs", "cronjob", "cj"}, serviceWords...), args[0]) {
				return usageError(cmd, "podunit get takes the resource 'pods', 'cronjobs' or 'services', then names")
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, s string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []string{"pods", "cronjobs", "services"}, cobra.ShellCompDirectiveNoFileComp
			}
			if slices.Contains(serviceWords, args[0]) {
				return pf.completeServices(cmd, args, s)
			}
			if !slices.Contains([]string{"pods", "pod", "po"}, args[0]) {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return pf.completePods(-1)(cmd, args, s)
		},
	}
	pf.register(cmd)
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "all namespaces")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output: wide, json, yaml or name")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"wide", "json", "yaml", "name"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if slices.Contains(serviceWords, args[0]) {
			list, err := newStatusClient(pf.socket).services()
			if err != nil {
				return err
			}
			names := args[1:]
			var shown []corev1.Service
			for _, s := range list {
				if (all || s.Namespace == pf.namespace) && (len(names) == 0 || slices.Contains(names, s.Name)) {
					shown = append(shown, s)
				}
			}
			for _, n := range names {
				if !slices.ContainsFunc(shown, func(s corev1.Service) bool { return s.Name == n }) {
					_, err := newStatusClient(pf.socket).service(pf.namespace, n) // why, when the sync knows
					return cmp.Or(err, error(&exitError{exitFailure, fmt.Errorf("Service %q not found in namespace %q", n, pf.namespace)}))
				}
			}
			return printServices(cmd.OutOrStdout(), shown, output, all, pf.namespace, time.Now())
		}
		if !slices.Contains([]string{"pods", "pod", "po"}, args[0]) {
			list, err := newStatusClient(pf.socket).cronJobs()
			if err != nil {
				return err
			}
			names := args[1:]
			var shown []batchv1.CronJob
			for _, c := range list {
				if (all || c.Namespace == pf.namespace) && (len(names) == 0 || slices.Contains(names, c.Name)) {
					shown = append(shown, c)
				}
			}
			for _, n := range names {
				if !slices.ContainsFunc(shown, func(c batchv1.CronJob) bool { return c.Name == n }) {
					return &exitError{exitFailure, fmt.Errorf("CronJob %q not found in namespace %q", n, pf.namespace)}
				}
			}
			return printCronJobs(cmd.OutOrStdout(), shown, output, all, time.Now())
		}
		pods, err := newStatusClient(pf.socket).pods()
		if err != nil {
			return err
		}
		names := args[1:]
		var shown []corev1.Pod
		for _, p := range pods {
			if (all || p.Namespace == pf.namespace) && (len(names) == 0 || slices.Contains(names, p.Name)) {
				shown = append(shown, p)
			}
		}
		for _, n := range names {
			if !hasPod(shown, n) {
				return &exitError{exitFailure, fmt.Errorf("pod %q not found in namespace %q", n, pf.namespace)}
			}
		}
		return printPods(cmd.OutOrStdout(), shown, output, all, time.Now())
	}
	return cmd
}

func hasPod(pods []corev1.Pod, name string) bool {
	for _, p := range pods {
		if p.Name == name {
			return true
		}
	}
	return false
}

func printPods(w io.Writer, pods []corev1.Pod, output string, allNamespaces bool, now time.Time) error {
	pods = slices.Clone(pods)
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
	switch output {
	case "json", "yaml":
		list := corev1.PodList{Items: pods}
		list.Kind, list.APIVersion = "List", "v1"
		return printObject(w, list, output)
	case "name":
		for _, p := range pods {
			fmt.Fprintf(w, "pod/%s\n", p.Name)
		}
		return nil
	case "", "wide":
	default:
		return &exitError{exitUsage, fmt.Errorf("-o %q: one of wide, json, yaml, name", output)}
	}
	if len(pods) == 0 {
		fmt.Fprintln(w, "No pods found.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := "NAME\tREADY\tSTATUS\tRESTARTS\tAGE"
	if allNamespaces {
		header = "NAMESPACE\t" + header
	}
	if output == "wide" {
		header += "\tIP\tUNIT\tSOURCE"
	}
	fmt.Fprintln(tw, header)
	for _, p := range pods {
		ready, total, restarts := 0, len(p.Spec.Containers), int32(0)
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
			restarts += cs.RestartCount
		}
		for _, cs := range p.Status.InitContainerStatuses {
			restarts += cs.RestartCount
		}
		age := "<unknown>"
		if p.Status.StartTime != nil {
			age = shortDuration(now.Sub(p.Status.StartTime.Time))
		}
		row := fmt.Sprintf("%s\t%d/%d\t%s\t%d\t%s", p.Name, ready, total, podStatusWord(&p), restarts, age)
		if allNamespaces {
			row = p.Namespace + "\t" + row
		}
		if output == "wide" {
			ip := p.Status.PodIP
			if ip == "" {
				ip = "<none>"
			}
			row += fmt.Sprintf("\t%s\t%s\t%s", ip, p.Annotations["podunit.io/unit"], p.Annotations["podunit.io/manifest"])
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

// printObject prints v as kubectl's -o json (indented by four) or -o yaml.
func printObject(w io.Writer, v any, output string) error {
	var b []byte
	var err error
	if output == "json" {
		b, err = json.MarshalIndent(v, "", "    ")
		b = append(b, '\n')
	} else {
		b, err = yaml.Marshal(v)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// printCronJobs prints CronJobs as kubectl does, with NEXT for AGE.
func printCronJobs(w io.Writer, list []batchv1.CronJob, output string, allNamespaces bool, now time.Time) error {
	list = slices.Clone(list)
	slices.SortFunc(list, func(a, b batchv1.CronJob) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	switch output {
	case "json", "yaml":
		l := batchv1.CronJobList{Items: list}
		l.Kind, l.APIVersion = "List", "v1"
		return printObject(w, l, output)
	case "name":
		for _, c := range list {
			fmt.Fprintf(w, "cronjob.batch/%s\n", c.Name)
		}
		return nil
	case "", "wide":
	default:
		return &exitError{exitUsage, fmt.Errorf("-o %q: one of wide, json, yaml, name", output)}
	}
	if len(list) == 0 {
		fmt.Fprintln(w, "No resources found.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := "NAME\tSCHEDULE\tTIMEZONE\tSUSPEND\tACTIVE\tLAST SCHEDULE\tNEXT"
	if allNamespaces {
		header = "NAMESPACE\t" + header
	}
	if output == "wide" {
		header += "\tTIMER\tSOURCE"
	}
	fmt.Fprintln(tw, header)
	for _, c := range list {
		tz, last, next := "<none>", "<none>", "<none>"
		if c.Spec.TimeZone != nil {
			tz = *c.Spec.TimeZone
		}
		if t := c.Status.LastScheduleTime; t != nil {
			last = shortDuration(now.Sub(t.Time))
		}
		if t, err := time.Parse(time.RFC3339, c.Annotations[status.AnnotationNextSchedule]); err == nil {
			next = shortDuration(t.Sub(now))
		}
		suspend := "False"
		if c.Spec.Suspend != nil && *c.Spec.Suspend {
			suspend = "True"
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s\t%s", c.Name, c.Spec.Schedule, tz, suspend, len(c.Status.Active), last, next)
		if allNamespaces {
			row = c.Namespace + "\t" + row
		}
		if output == "wide" {
			timer := c.Annotations[status.AnnotationUnit]
			if timer == "" {
				timer = "<none>"
			}
			row += fmt.Sprintf("\t%s\t%s", timer, c.Annotations["podunit.io/manifest"])
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

// podStatusWord is kubectl's STATUS column: the pod's reason, a waiting or
// terminated container's reason, or the phase; podunit adds
// InvalidManifest for a pod running on its last good spec, and RolledBack,
// RollingBack and ImagePullBackOff for one whose new generation did not
// replace it.
func podStatusWord(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == status.ConditionManifestValid && c.Status == corev1.ConditionFalse {
			return "InvalidManifest"
		}
		// The pod runs, but not the generation its manifest asks for.
		if c.Type == status.ConditionUpToDate && c.Status == corev1.ConditionFalse && (c.Reason == "RolledBack" || c.Reason == status.ReasonRollingBack || c.Reason == "ImagePullBackOff") {
			return c.Reason
		}
	}
	switch {
	case p.Status.Phase == corev1.PodFailed && p.Status.Reason != "":
		return p.Status.Reason // not admitted: NodeAffinity, as kubectl shows it
	case p.Status.Phase == corev1.PodSucceeded:
		return "Completed"
	case p.Status.Phase == corev1.PodFailed:
		return "Error"
	}
	for i, cs := range p.Status.InitContainerStatuses {
		sidecar := i < len(p.Spec.InitContainers) && p.Spec.InitContainers[i].RestartPolicy != nil
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
			return "Init:" + cs.State.Waiting.Reason
		case sidecar && cs.State.Running != nil && cs.Started != nil && *cs.Started:
			// A sidecar counts once started (past its startup probe), as
			// kubectl's column has it.
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
		default:
			return fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason
		}
		if t := cs.State.Terminated; t != nil && t.Reason != "" {
			return t.Reason
		}
	}
	if p.Status.Phase == "" {
		return string(corev1.PodPending)
	}
	return string(p.Status.Phase)
}

// shortDuration is kubectl's AGE: 45s, 12m, 5h, 3d.
func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
