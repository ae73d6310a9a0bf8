package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

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
	resp, err := c.http.Get("http://localhost/pods")
	if err != nil {
		return nil, fmt.Errorf("status API at %s: %w (is podunit-status.socket running? systemctl enable --now podunit-status.socket)", c.socket, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status API: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var list corev1.PodList
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("status API: %w", err)
	}
	return list.Items, nil
}

// runGet is `podunit get pods`, shaped like kubectl's.
func runGet(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("podunit get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	namespace := fs.String("n", "", "only this namespace (default: default; -A for all)")
	all := fs.Bool("A", false, "all namespaces")
	output := fs.String("o", "", "output: wide, json, yaml or name")
	socket := fs.String("socket", DefaultStatusSocket, "the status API's socket")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: podunit get pods [NAME...] [-n NAMESPACE | -A] [-o wide|json|yaml|name]\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorderFlags(fs, args)); err != nil || fs.NArg() == 0 || (fs.Arg(0) != "pods" && fs.Arg(0) != "pod" && fs.Arg(0) != "po") {
		fs.Usage()
		return &exitError{exitUsage, errors.New("")}
	}
	pods, err := newStatusClient(*socket).pods()
	if err != nil {
		return err
	}
	names := fs.Args()[1:]
	ns := *namespace
	if ns == "" && !*all {
		ns = corev1.NamespaceDefault
	}
	var shown []corev1.Pod
	for _, p := range pods {
		if (*all || p.Namespace == ns) && (len(names) == 0 || slices.Contains(names, p.Name)) {
			shown = append(shown, p)
		}
	}
	for _, n := range names {
		if !hasPod(shown, n) {
			return &exitError{exitFailure, fmt.Errorf("pod %q not found in namespace %q", n, ns)}
		}
	}
	return printPods(stdout, shown, *output, *all, time.Now())
}

func hasPod(pods []corev1.Pod, name string) bool {
	for _, p := range pods {
		if p.Name == name {
			return true
		}
	}
	return false
}

// reorderFlags moves the flags of fs before the positional arguments, so
// that `get pods -A` and `logs web -c nginx` parse as kubectl users type
// them.
func reorderFlags(fs *flag.FlagSet, args []string) []string {
	takesValue := func(arg string) bool {
		name := strings.TrimLeft(arg, "-")
		if strings.Contains(name, "=") {
			return false
		}
		f := fs.Lookup(name)
		if f == nil {
			return false
		}
		b, isBool := f.Value.(interface{ IsBoolFlag() bool })
		return !isBool || !b.IsBoolFlag()
	}
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			rest = append(rest, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-"):
			flags = append(flags, a)
			if takesValue(a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			rest = append(rest, a)
		}
	}
	return append(flags, rest...)
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
		var b []byte
		var err error
		if output == "json" {
			b, err = json.MarshalIndent(list, "", "    ")
			b = append(b, '\n')
		} else {
			b, err = yaml.Marshal(list)
		}
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
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

// podStatusWord is kubectl's STATUS column: the pod's reason, a waiting or
// terminated container's reason, or the phase; podunit adds
// InvalidManifest for a pod running on its last good spec.
func podStatusWord(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == ConditionManifestValid && c.Status == corev1.ConditionFalse {
			return "InvalidManifest"
		}
	}
	switch p.Status.Phase {
	case corev1.PodSucceeded:
		return "Completed"
	case corev1.PodFailed:
		return "Error"
	}
	for i, cs := range p.Status.InitContainerStatuses {
		sidecar := i < len(p.Spec.InitContainers) && p.Spec.InitContainers[i].RestartPolicy != nil
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
			return "Init:" + cs.State.Waiting.Reason
		case sidecar && cs.State.Running != nil:
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
