package main

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/podunit/podunit/generator"
)

// classDocs say what each class of field means, for podunit-manifest(5).
var classDocs = []struct{ class, doc string }{
	{generator.Honoured.String(), "Mapped to the container runtime and systemd as the kubelet maps it."},
	{generator.Dropped.String(), "Written by an API server or kubectl (`creationTimestamp`, `status`, `managedFields`): removed without a word, never part of the pod's config hash."},
	{generator.Noticed.String(), "Only a scheduler or an API server acts on it (`tolerations`, `priority`, `serviceAccountName`): accepted with a notice saying what podunit did, which `podunit validate`, the journal of podunit-sync.service, `podunit describe` and the status API show; never part of the config hash. `strict: true` in config.yaml makes every notice an error."},
	{generator.Admission.String(), "Matched against this node as the kubelet's admission matches it (`nodeSelector`, required node affinity, `nodeName`, `priorityClassName`): a pod that does not fit is not started and is shown `Failed` with the kubelet's reason."},
	{generator.Rejected, "A field in no list: a typo (`unknown field`, with \"did you mean\"), or a real field podunit does not implement (`not supported by podunit`). Invalid values are rejected too. The file's pods keep running on their last good spec until it is fixed."},
}

// writeManifestPage writes podunit-manifest(5), the manual of the fields
// and kinds podunit reads, from the same table the decoder, `podunit
// explain` and the docs use.
func writeManifestPage(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH PODUNIT\\-MANIFEST 5 \"\" \"podunit %s\" \"podunit manual\"\n", roffEscape(version))
	// Field paths and unit names are long words: left-adjusted, never
	// hyphenated.
	b.WriteString(".ad l\n.nh\n")
	b.WriteString(".SH NAME\npodunit\\-manifest \\- the Kubernetes manifests podunit runs, and what it does with each field\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString(roffText("podunit runs the Kubernetes manifests people already have (kubeadm's static pods, what `kubectl create … --dry-run=client -o yaml` and `kubectl get -o yaml` print, the examples of kubernetes.io and podman) from its manifest directory, `/etc/podunit/manifests` by default, and from `manifestURL`. Files are named `*.yaml`, `*.yml` or `*.json`; each holds one or more YAML documents, a JSON object or a `v1 List`. A Pod becomes the systemd unit `pod-<name>.service` (`pod-<namespace>_<name>.service` outside namespace `default`); workloads become their pods; a CronJob becomes the timer `cronjob-<name>.timer`. `podunit validate FILE…` checks files exactly as a sync reads them; `podunit render FILE` prints the units they become.") + "\n")
	b.WriteString(".SH FIELD CLASSES\n")
	b.WriteString(roffText("Every field of every kind is in exactly one class, listed below for each kind and shown by `podunit explain KIND.FIELD`. An empty value (`{}`, `[]`, `null`) of a field that exists says nothing and is dropped; a misspelt field is rejected even when empty.") + "\n")
	for _, c := range classDocs {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", c.class, roffText(c.doc))
	}
	b.WriteString(".SH KINDS\n")
	for _, k := range generator.Kinds {
		fmt.Fprintf(&b, ".SS %s (%s)\n", k.Name, roffEscape(k.Version()))
		for _, f := range k.Fields {
			if k.SameAsPod(f) {
				continue
			}
			fmt.Fprintf(&b, ".TP\n.BR %s \" (%s)\"\n%s\n", roffQuoted(f.Path), f.Class, roffText(f.Doc))
		}
		if k.Workload {
			t := strings.TrimSuffix(k.Template(), ".")
			fmt.Fprintf(&b, ".TP\n.BR %s \" (as in a Pod)\"\n%s\n", roffQuoted(t+".metadata.*, "+t+".spec.*"),
				roffText("The pod template: every other field of a Pod, under `"+t+"`, in the same class."))
		}
	}
	b.WriteString(".SS Annotations with a meaning\n")
	b.WriteString(roffText("On a pod or a workload's pod template: podunit's own, podman's (which `podman kube generate` writes and `podman kube play` reads) and the auto-update ones both share. Any other annotation is copied to the pod sandbox as it is.") + "\n")
	for _, a := range generator.PodAnnotations {
		fmt.Fprintf(&b, ".TP\n.BR %s \" (%s)\"\n%s\n", roffQuoted(a.Pattern()), a.Class, roffText(a.Notes()))
	}
	b.WriteString(".SS Kinds skipped with a notice\n")
	b.WriteString(roffText("A document of one of these kinds is skipped with a notice naming it; the rest of the file runs. So is any kind of an API group that is not Kubernetes' own (a custom resource, e.g. a ServiceMonitor). An unknown kind of a Kubernetes group is an error, as a typo.") + "\n")
	for _, k := range generator.SkippedKinds {
		group := k.Group
		if group == "" {
			group = "core"
		}
		fmt.Fprintf(&b, ".TP\n.BR %s \" (%s)\"\n%s\n", roffQuoted(k.Name), roffEscape(group), roffText(k.Why+"."))
	}
	b.WriteString(".SH EXAMPLES\n.nf\n")
	b.WriteString("podunit validate /etc/podunit/manifests/*.yaml\npodunit explain pod.spec.containers.ports\npodunit explain cronjob.spec.schedule\npodunit render etcd.yaml\n")
	b.WriteString(".fi\n.SH SEE ALSO\n.BR podunit (8),\n.BR podunit\\-explain (8),\n.BR podunit\\-validate (8),\n.BR systemd.timer (5),\n.BR systemd.service (5)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

var codeSpan = regexp.MustCompile("`([^`]*)`")

// roffText is a paragraph of the docs' Markdown as roff: `code` in bold,
// the rest escaped, no line starting with a control character.
func roffText(s string) string {
	out := codeSpan.ReplaceAllStringFunc(roffEscape(s), func(m string) string {
		return `\fB` + m[1:len(m)-1] + `\fR`
	})
	return `\&` + out
}

// roffEscape escapes what roff would read as its own: backslashes and
// hyphens (which would become typographic dashes or break words). The
// page stays ASCII, so that man renders it in any locale: other characters
// become roff's named glyphs, which fall back to ASCII.
func roffEscape(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`, "…", `.\|.\|.`, "→", `\(->`, "—", `\(em`, "–", `\(en`,
		"’", `'`, "“", `\(lq`, "”", `\(rq`, "µ", `\(mc`).Replace(s)
}

// roffQuoted is a macro argument: escaped and quoted, and a long field
// path may break after each dot.
func roffQuoted(s string) string {
	return `"` + strings.NewReplacer(`"`, `\(dq`, ".", `.\:`).Replace(roffEscape(s)) + `"`
}
