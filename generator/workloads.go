package generator

import (
	"fmt"
	"maps"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/podshim/podspec"
)

// Annotations on the pods of a workload (Deployment, ReplicaSet, DaemonSet,
// Job).
const (
	// AnnotationOwner is "<Kind>/<name>" of the workload a pod is from.
	AnnotationOwner = "podunit.io/owner"
	// AnnotationBackoffLimit is a Job's backoffLimit, which podshim honours:
	// a container that failed more often fails the pod.
	AnnotationBackoffLimit = podspec.AnnotationBackoffLimit
)

// MaxReplicas bounds a workload's replicas: one machine runs far fewer pods
// (the kubelet's default maxPods is 110), and a typo of a few digits must
// not make millions of pods.
const MaxReplicas = 1000

// defaultBackoffLimit is the Kubernetes default of a Job's backoffLimit.
const defaultBackoffLimit = 6

// AnnotationStrategy is a Deployment's spec.strategy.type on its pods when
// it is Recreate (every old pod stops before a new one starts), and a
// StatefulSet's podManagementPolicy when it is Parallel (its pods start at
// once, not one at a time). It is set after the config hash, so changing it
// restarts nothing.
const AnnotationStrategy = "podunit.io/strategy"

// workload is what the kinds with a pod template share.
type workload struct {
	kind     string
	meta     metav1.ObjectMeta
	selector *metav1.LabelSelector
	template corev1.PodTemplateSpec
	replicas int32
	job      *batchv1.JobSpec
	strategy appsv1.DeploymentStrategyType // Deployment
	// minReady is the workload's minReadySeconds; deadline a Deployment's
	// progressDeadlineSeconds (nil: not set).
	minReady int32
	deadline *int32
	set      *appsv1.StatefulSetSpec // StatefulSet
	cron     *batchv1.CronJobSpec    // CronJob: job is its jobTemplate's
	// spec is where the pod-making spec is in the file: "spec." or, for a
	// CronJob, "spec.jobTemplate.spec.".
	spec string
}

// templateField maps a pod's field path to its place in the workload's
// file.
func (w *workload) templateField(path string) string {
	switch {
	case strings.HasPrefix(path, "spec"), strings.HasPrefix(path, "metadata.labels"), strings.HasPrefix(path, "metadata.annotations"):
		return w.spec + "template." + path
	}
	return path // metadata.name and namespace are the workload's
}

func asWorkload(obj any) (*workload, bool) {
	w, ok := asWorkloadOf(obj)
	if ok && w.spec == "" {
		w.spec = "spec."
	}
	return w, ok
}

func asWorkloadOf(obj any) (*workload, bool) {
	one := int32(1)
	switch o := obj.(type) {
	case *appsv1.StatefulSet:
		if o.Spec.Replicas != nil {
			one = *o.Spec.Replicas
		}
		return &workload{kind: "StatefulSet", meta: o.ObjectMeta, selector: o.Spec.Selector, template: o.Spec.Template, replicas: one, set: &o.Spec, minReady: o.Spec.MinReadySeconds}, true
	case *corev1.ReplicationController:
		if o.Spec.Replicas != nil {
			one = *o.Spec.Replicas
		}
		w := &workload{kind: "ReplicationController", meta: o.ObjectMeta, replicas: one, minReady: o.Spec.MinReadySeconds}
		if o.Spec.Template != nil {
			w.template = *o.Spec.Template
		}
		selector := o.Spec.Selector
		if selector == nil {
			selector = w.template.Labels // the API server's default
		}
		w.selector = &metav1.LabelSelector{MatchLabels: selector}
		return w, true
	case *appsv1.Deployment:
		if o.Spec.Replicas != nil {
			one = *o.Spec.Replicas
		}
		return &workload{kind: "Deployment", meta: o.ObjectMeta, selector: o.Spec.Selector, template: o.Spec.Template, replicas: one, strategy: o.Spec.Strategy.Type,
			minReady: o.Spec.MinReadySeconds, deadline: o.Spec.ProgressDeadlineSeconds}, true
	case *appsv1.ReplicaSet:
		if o.Spec.Replicas != nil {
			one = *o.Spec.Replicas
		}
		return &workload{kind: "ReplicaSet", meta: o.ObjectMeta, selector: o.Spec.Selector, template: o.Spec.Template, replicas: one, minReady: o.Spec.MinReadySeconds}, true
	case *appsv1.DaemonSet:
		return &workload{kind: "DaemonSet", meta: o.ObjectMeta, selector: o.Spec.Selector, template: o.Spec.Template, replicas: 1, minReady: o.Spec.MinReadySeconds}, true
	case *batchv1.Job:
		return &workload{kind: "Job", meta: o.ObjectMeta, selector: o.Spec.Selector, template: o.Spec.Template, replicas: 1, job: &o.Spec}, true
	case *batchv1.CronJob:
		job := &o.Spec.JobTemplate.Spec
		return &workload{kind: "CronJob", meta: o.ObjectMeta, selector: job.Selector, template: job.Template, replicas: 1, job: job, cron: &o.Spec,
			spec: "spec.jobTemplate.spec."}, true
	}
	return nil, false
}

// workloadPods checks a workload and makes its pods, decoded as a Pod
// document would be: Deployment, ReplicaSet, ReplicationController and
// StatefulSet pods are <name>-0 …, a DaemonSet's and a Job's pod is <name>.
// A StatefulSet's pods come with their claims.
func workloadPods(file string, d decoded, w *workload) ([]decoded, []*corev1.PersistentVolumeClaim, []error) {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{File: file, Line: d.lineOf(path), Field: path, Msg: fmt.Sprintf(format, args...)})
	}
	if w.meta.Name == "" {
		fail("metadata.name", "required")
	}
	switch {
	case w.selector == nil && w.job == nil:
		fail("spec.selector", "required: matchLabels naming the template's labels")
	case w.selector != nil:
		if len(w.selector.MatchExpressions) > 0 {
			fail(w.spec+"selector.matchExpressions", "not supported by podunit (use matchLabels)")
		}
		for k, v := range w.selector.MatchLabels {
			if w.template.Labels[k] != v {
				fail(w.spec+"selector.matchLabels", "%s=%s does not match the template's labels (%stemplate.metadata.labels)", k, v, w.spec)
			}
		}
	}
	if w.cron != nil {
		validateCronJob(w, fail)
	}
	switch {
	case w.replicas < 0:
		fail("spec.replicas", "%d: must be 0 or more", w.replicas)
	case w.replicas > MaxReplicas:
		fail("spec.replicas", "%d: at most %d on one machine", w.replicas, MaxReplicas)
		w.replicas = 0 // no pods are made: the file is invalid
	}
	switch w.strategy {
	case "", appsv1.RollingUpdateDeploymentStrategyType, appsv1.RecreateDeploymentStrategyType:
	default:
		fail("spec.strategy.type", "%q: must be RollingUpdate or Recreate%s", w.strategy, caseHint(string(w.strategy), "RollingUpdate", "Recreate"))
	}
	if w.set != nil {
		validateStatefulSet(w, fail)
	}
	limit := defaultBackoffLimit
	if w.job != nil {
		for _, f := range []struct {
			path string
			v    *int32
		}{{w.spec + "completions", w.job.Completions}, {w.spec + "parallelism", w.job.Parallelism}} {
			if f.v != nil && *f.v != 1 {
				fail(f.path, "%d: only 1 (a Job runs one pod here)", *f.v)
			}
		}
		switch w.template.Spec.RestartPolicy {
		case corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
		default:
			fail(w.spec+"template.spec.restartPolicy", "%q: a Job's pod must have restartPolicy OnFailure or Never", w.template.Spec.RestartPolicy)
		}
		if b := w.job.BackoffLimit; b != nil {
			if *b < 0 {
				fail(w.spec+"backoffLimit", "%d: must be 0 or more", *b)
			}
			limit = int(*b)
		}
	}
	// The pods are checked even when the workload is not, so that one pass
	// reports every problem; the file is rejected as a whole either way.
	var (
		out    []decoded
		claims []*corev1.PersistentVolumeClaim
	)
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
		switch w.kind {
		case "Deployment", "ReplicaSet", "ReplicationController", "StatefulSet":
			pod.Name = fmt.Sprintf("%s-%d", w.meta.Name, i)
		}
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[AnnotationOwner] = w.kind + "/" + w.meta.Name
		if w.job != nil {
			pod.Annotations[AnnotationBackoffLimit] = strconv.Itoa(limit)
		}
		if w.set != nil {
			claims = append(claims, statefulPod(pod, w, i)...)
		}
		pd := decoded{kind: "Pod", pod: pod, doc: d.doc, line: d.line, lines: d.lines, inFile: w.templateField, notices: d.notices}
		if w.cron != nil {
			pd.cron = newCronJob(w)
		}
		pd.after = map[string]string{}
		switch {
		case w.strategy == appsv1.RecreateDeploymentStrategyType:
			pd.after[AnnotationStrategy] = string(w.strategy)
		case w.set != nil && w.set.PodManagementPolicy == appsv1.ParallelPodManagement:
			pd.after[AnnotationStrategy] = string(appsv1.ParallelPodManagement)
		}
		// How a replacement is judged, not what the pod is: after the hash.
		if _, ok := pod.Annotations[AnnotationMinReadySeconds]; !ok && w.minReady > 0 {
			pd.after[AnnotationMinReadySeconds] = strconv.Itoa(int(w.minReady))
		}
		if _, ok := pod.Annotations[AnnotationRolloutDeadline]; !ok && w.deadline != nil && *w.deadline > 0 {
			pd.after[AnnotationRolloutDeadline] = strconv.Itoa(int(*w.deadline))
		}
		if len(pd.after) == 0 {
			pd.after = nil
		}
		out = append(out, pd)
	}
	return out, claims, errs
}

// statefulPod makes pod the i-th of a StatefulSet as its controller does:
// host name the pod's name, subdomain the service, each claim template a
// claim of its own. (Under OrderedReady its pods are started one at a time,
// each ready before the next, by a rollout unit: see generator.Unit.) It
// returns the pod's claims.
func statefulPod(pod *corev1.Pod, w *workload, i int32) []*corev1.PersistentVolumeClaim {
	set := w.set
	pod.Spec.Hostname = pod.Name
	if set.ServiceName != "" {
		pod.Spec.Subdomain = set.ServiceName
	}
	var claims []*corev1.PersistentVolumeClaim
	for _, t := range set.VolumeClaimTemplates {
		name := fmt.Sprintf("%s-%s", t.Name, pod.Name)
		claim := &corev1.PersistentVolumeClaim{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.meta.Namespace, Labels: maps.Clone(t.Labels), Annotations: maps.Clone(t.Annotations)},
			Spec:       *t.Spec.DeepCopy(),
		}
		claims = append(claims, claim)
		volume := corev1.Volume{Name: t.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}
		replaced := false
		for j := range pod.Spec.Volumes {
			if pod.Spec.Volumes[j].Name == t.Name { // the controller's claim wins, as in Kubernetes
				pod.Spec.Volumes[j], replaced = volume, true
			}
		}
		if !replaced {
			pod.Spec.Volumes = append(pod.Spec.Volumes, volume)
		}
	}
	return claims
}

// validateStatefulSet checks what a StatefulSet adds to a workload.
func validateStatefulSet(w *workload, fail func(path, format string, args ...any)) {
	switch p := w.set.PodManagementPolicy; p {
	case "", appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		fail("spec.podManagementPolicy", "%q: must be OrderedReady or Parallel%s", p, caseHint(string(p), "OrderedReady", "Parallel"))
	}
	if n := w.set.ServiceName; n != "" {
		for _, msg := range validation.IsDNS1123Label(n) {
			fail("spec.serviceName", "%q: %s", n, msg)
		}
	}
	names := map[string]bool{}
	for i, t := range w.set.VolumeClaimTemplates {
		p := fmt.Sprintf("spec.volumeClaimTemplates[%d]", i)
		validateUniqueName(p+".metadata.name", "claim template", t.Name, names, fail)
		c := corev1.PersistentVolumeClaim{Spec: t.Spec}
		for _, e := range claimSpecErrors(&c) {
			fail(p+".spec."+e.field, "%s", e.msg)
		}
	}
}
