package generator

import (
	"fmt"
	"maps"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/podshim"
)

// Annotations on the pods of a workload (Deployment, ReplicaSet, DaemonSet,
// Job).
const (
	// AnnotationOwner is "<Kind>/<name>" of the workload a pod is from.
	AnnotationOwner = "podunit.io/owner"
	// AnnotationBackoffLimit is a Job's backoffLimit, which podshim honours:
	// a container that failed more often fails the pod.
	AnnotationBackoffLimit = podshim.AnnotationBackoffLimit
)

// defaultBackoffLimit is the Kubernetes default of a Job's backoffLimit.
const defaultBackoffLimit = 6

// workload is what the kinds with a pod template share.
type workload struct {
	kind     string
	meta     metav1.ObjectMeta
	selector *metav1.LabelSelector
	template corev1.PodTemplateSpec
	replicas int32
	job      *batchv1.JobSpec
}

func asWorkload(obj any) (*workload, bool) {
	one := int32(1)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		if o.Spec.Replicas != nil {
			one = *o.Spec.Replicas
		}
		return &workload{kind: "Deployment", meta: o.ObjectMeta, selector: o.Spec.Selector, template: o.Spec.Template, replicas: one}, true
	case *appsv1.ReplicaSet:
		if o.Spec.Replicas != nil {
			one = *o.Spec.Replicas
		}
		return &workload{kind: "ReplicaSet", meta: o.ObjectMeta, selector: o.Spec.Selector, template: o.Spec.Template, replicas: one}, true
	case *appsv1.DaemonSet:
		return &workload{kind: "DaemonSet", meta: o.ObjectMeta, selector: o.Spec.Selector, template: o.Spec.Template, replicas: 1}, true
	case *batchv1.Job:
		return &workload{kind: "Job", meta: o.ObjectMeta, selector: o.Spec.Selector, template: o.Spec.Template, replicas: 1, job: &o.Spec}, true
	}
	return nil, false
}

// templateField maps a pod's field path to its place in a workload.
func templateField(path string) string {
	switch {
	case strings.HasPrefix(path, "spec"), strings.HasPrefix(path, "metadata.labels"), strings.HasPrefix(path, "metadata.annotations"):
		return "spec.template." + path
	}
	return path // metadata.name and namespace are the workload's
}

// workloadPods checks a workload and makes its pods, decoded as a Pod
// document would be: Deployment and ReplicaSet pods are <name>-0 …, a
// DaemonSet's and a Job's pod is <name>.
func workloadPods(file string, d decoded, w *workload) ([]decoded, []error) {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{File: file, Line: d.lineOf(path), Field: path, Msg: fmt.Sprintf(format, args...)})
	}
	if w.meta.Name == "" {
		fail("metadata.name", "required")
	}
	switch {
	case w.selector == nil && w.kind != "Job":
		fail("spec.selector", "required: matchLabels naming the template's labels")
	case w.selector != nil:
		if len(w.selector.MatchExpressions) > 0 {
			fail("spec.selector.matchExpressions", "not supported by podunit (use matchLabels)")
		}
		for k, v := range w.selector.MatchLabels {
			if w.template.Labels[k] != v {
				fail("spec.selector.matchLabels", "%s=%s does not match the template's labels (spec.template.metadata.labels)", k, v)
			}
		}
	}
	if w.replicas < 0 {
		fail("spec.replicas", "%d: must be 0 or more", w.replicas)
	}
	limit := defaultBackoffLimit
	if w.job != nil {
		switch w.template.Spec.RestartPolicy {
		case corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
		default:
			fail("spec.template.spec.restartPolicy", "%q: a Job's pod must have restartPolicy OnFailure or Never", w.template.Spec.RestartPolicy)
		}
		if b := w.job.BackoffLimit; b != nil {
			if *b < 0 {
				fail("spec.backoffLimit", "%d: must be 0 or more", *b)
			}
			limit = int(*b)
		}
	}
	// The pods are checked even when the workload is not, so that one pass
	// reports every problem; the file is rejected as a whole either way.
	var out []decoded
	for i := range w.replicas {
		pod := &corev1.Pod{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{
				Name:        w.meta.Name,
				Namespace:   w.meta.Namespace,
				Labels:      maps.Clone(w.template.Labels),
				Annotations: maps.Clone(w.template.Annotations),
			},
			Spec: *w.template.Spec.DeepCopy(),
		}
		if w.kind == "Deployment" || w.kind == "ReplicaSet" {
			pod.Name = fmt.Sprintf("%s-%d", w.meta.Name, i)
		}
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[AnnotationOwner] = w.kind + "/" + w.meta.Name
		if w.job != nil {
			pod.Annotations[AnnotationBackoffLimit] = strconv.Itoa(limit)
		}
		out = append(out, decoded{kind: "Pod", pod: pod, doc: d.doc, line: d.line, lines: d.lines, inFile: templateField})
	}
	return out, errs
}
