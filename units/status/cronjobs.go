package status

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/units"
)

// AnnotationNextSchedule is on a served CronJob: when its timer fires next
// (RFC 3339); absent when it is suspended or its schedule never comes.
const AnnotationNextSchedule = "podunit.io/next-schedule"

// cronJobs is the /cronjobs answer: a batch/v1 CronJobList of the CronJobs
// the last sync read, with the status the CronJob controller would report
// (the runs still running as active Jobs, the last scheduled and the last
// successful run's times), from the run pods of the snapshot.
func (s *Server) cronJobs(snap *snapshot, now time.Time) *batchv1.CronJobList {
	list := &batchv1.CronJobList{TypeMeta: metav1.TypeMeta{Kind: "CronJobList", APIVersion: "batch/v1"}}
	for _, key := range slices.Sorted(maps.Keys(snap.sync.CronJobs)) {
		r := snap.sync.CronJobs[key]
		ns, name, _ := strings.Cut(key, "/")
		cj := batchv1.CronJob{
			TypeMeta:   metav1.TypeMeta{Kind: "CronJob", APIVersion: "batch/v1"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{generator.AnnotationManifest: r.Manifest}},
			Spec: batchv1.CronJobSpec{Schedule: r.Schedule, Suspend: &r.Suspend,
				ConcurrencyPolicy: batchv1.ConcurrencyPolicy(r.ConcurrencyPolicy)},
		}
		if !r.Suspend {
			cj.Annotations[AnnotationUnit] = units.TimerName(ns, name)
		}
		if r.TimeZone != "" {
			tz := r.TimeZone
			cj.Spec.TimeZone = &tz
		}
		c := &generator.CronJob{Schedule: r.Schedule, TimeZone: r.TimeZone}
		if next, err := c.Next(now); err == nil && !next.IsZero() && !r.Suspend {
			cj.Annotations[AnnotationNextSchedule] = next.UTC().Format(time.RFC3339)
		}
		for _, p := range snap.pods {
			if p.pod.Namespace != ns || p.pod.Annotations[generator.AnnotationCronJob] != name {
				continue
			}
			scheduled, err := time.Parse(time.RFC3339, p.pod.Annotations[generator.AnnotationScheduledTime])
			if err != nil {
				continue
			}
			at := metav1.NewTime(scheduled)
			if st := cj.Status.LastScheduleTime; st == nil || st.Before(&at) {
				cj.Status.LastScheduleTime = &at
			}
			switch p.pod.Status.Phase {
			case corev1.PodSucceeded:
				if st := cj.Status.LastSuccessfulTime; st == nil || st.Before(&at) {
					cj.Status.LastSuccessfulTime = &at
				}
			case corev1.PodFailed:
			default:
				cj.Status.Active = append(cj.Status.Active, corev1.ObjectReference{Kind: "Job", APIVersion: "batch/v1", Namespace: ns, Name: p.pod.Name})
			}
		}
		list.Items = append(list.Items, cj)
	}
	return list
}

func (s *Server) serveCronJobs(w http.ResponseWriter, r *http.Request) {
	snap, err := s.snapshot(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	b, err := json.Marshal(s.cronJobs(snap, time.Now()))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
