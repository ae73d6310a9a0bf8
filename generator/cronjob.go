package generator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podunit/podunit/generator/cron"
)

// A CronJob runs its job template on a schedule, as Kubernetes' CronJob
// controller does, with systemd doing the waiting: a timer unit per CronJob
// (OnCalendar= from the schedule) starts `podunit cron-run`, which starts
// the run's pod as a Job's pod of its own, pod-<name>-<minutes>.service,
// and keeps the history limits. The kubelet and podman run no CronJobs.

// Defaults of a CronJob's spec, as the API server sets them.
const (
	defaultSuccessfulJobsHistory = 3
	defaultFailedJobsHistory     = 1
)

// MaxCronJobName is the longest CronJob name: its runs append
// "-<minutes>" (11 characters) and stay within a DNS label, as the API
// server checks.
const MaxCronJobName = 52

// AnnotationCronJob is on a CronJob's run pods: the CronJob's name.
const AnnotationCronJob = "podunit.io/cronjob"

// AnnotationScheduledTime is on a CronJob's run pods: the scheduled time
// the run is for (RFC 3339), as Kubernetes annotates the Job.
const AnnotationScheduledTime = "batch.kubernetes.io/cronjob-scheduled-timestamp"

// CronJob is a CronJob's schedule and policy. Its job template is the Pod
// that carries it (Pod.Cron).
type CronJob struct {
	Name     string
	Schedule string
	// TimeZone is a tz database name; "" is the machine's local time.
	TimeZone string
	// Concurrency is Allow, Forbid or Replace: what a run does when the
	// last one still runs.
	Concurrency batchv1.ConcurrencyPolicy
	// StartingDeadlineSeconds: a run that starts later than this after its
	// scheduled time (the machine was off) is skipped; nil: never skipped.
	StartingDeadlineSeconds *int64
	// Suspend: no new runs; the ones running go on.
	Suspend bool
	// How many finished runs are kept, with their units and logs.
	SuccessfulJobsHistoryLimit, FailedJobsHistoryLimit int32
}

func newCronJob(w *workload) *CronJob {
	s := w.cron
	c := &CronJob{
		Name:                       w.meta.Name,
		Schedule:                   s.Schedule,
		Concurrency:                s.ConcurrencyPolicy,
		StartingDeadlineSeconds:    s.StartingDeadlineSeconds,
		SuccessfulJobsHistoryLimit: defaultSuccessfulJobsHistory,
		FailedJobsHistoryLimit:     defaultFailedJobsHistory,
	}
	if c.Concurrency == "" {
		c.Concurrency = batchv1.AllowConcurrent
	}
	if s.TimeZone != nil {
		c.TimeZone = *s.TimeZone
	}
	if s.Suspend != nil {
		c.Suspend = *s.Suspend
	}
	if s.SuccessfulJobsHistoryLimit != nil {
		c.SuccessfulJobsHistoryLimit = *s.SuccessfulJobsHistoryLimit
	}
	if s.FailedJobsHistoryLimit != nil {
		c.FailedJobsHistoryLimit = *s.FailedJobsHistoryLimit
	}
	return c
}

// validateCronJob checks what a CronJob adds to a Job.
func validateCronJob(w *workload, fail func(path, format string, args ...any)) {
	s := w.cron
	if len(w.meta.Name) > MaxCronJobName {
		fail("metadata.name", "%q: at most %d characters (a run is named <name>-<minutes>, a DNS label)", w.meta.Name, MaxCronJobName)
	}
	if s.Schedule == "" {
		fail("spec.schedule", "required: a cron schedule, e.g. \"*/5 * * * *\"")
	} else if _, err := cron.Parse(s.Schedule); err != nil {
		fail("spec.schedule", "%v", err)
	}
	if s.TimeZone != nil {
		if _, err := loadTimeZone(*s.TimeZone); err != nil {
			fail("spec.timeZone", "%q: %v", *s.TimeZone, err)
		}
	}
	switch c := s.ConcurrencyPolicy; c {
	case "", batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
	default:
		fail("spec.concurrencyPolicy", "%q: must be Allow, Forbid or Replace%s", c, caseHint(string(c), "Allow", "Forbid", "Replace"))
	}
	for _, f := range []struct {
		path string
		v    *int32
	}{{"spec.successfulJobsHistoryLimit", s.SuccessfulJobsHistoryLimit}, {"spec.failedJobsHistoryLimit", s.FailedJobsHistoryLimit}} {
		if f.v != nil && *f.v < 0 {
			fail(f.path, "%d: must be 0 or more", *f.v)
		}
	}
	if d := s.StartingDeadlineSeconds; d != nil && *d < 0 {
		fail("spec.startingDeadlineSeconds", "%d: must be 0 or more", *d)
	}
}

// loadTimeZone is a tz database zone, as the API server accepts it: a
// name, not "Local".
func loadTimeZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("not a time zone name (e.g. Etc/UTC, Europe/Berlin)")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone (is tzdata installed?)")
	}
	return loc, nil
}

// location is where the schedule's times are: the time zone, or the
// machine's local time.
func (c *CronJob) location() (*time.Location, error) {
	if c.TimeZone == "" {
		return time.Local, nil
	}
	return loadTimeZone(c.TimeZone)
}

// parsed is the CronJob's schedule, parsed.
func (c *CronJob) parsed() (*cron.Schedule, error) { return cron.Parse(c.Schedule) }

// Next is the first scheduled time after t, in the CronJob's time zone;
// zero when the schedule never comes again.
func (c *CronJob) Next(t time.Time) (time.Time, error) {
	s, loc, err := c.schedule()
	if err != nil {
		return time.Time{}, err
	}
	return s.Next(t, loc), nil
}

// Prev is the last scheduled time at or before t, in the CronJob's time
// zone; zero when there is none.
func (c *CronJob) Prev(t time.Time) (time.Time, error) {
	s, loc, err := c.schedule()
	if err != nil {
		return time.Time{}, err
	}
	return s.Prev(t, loc), nil
}

func (c *CronJob) schedule() (*cron.Schedule, *time.Location, error) {
	s, err := c.parsed()
	if err != nil {
		return nil, nil, err
	}
	loc, err := c.location()
	return s, loc, err
}

// OnCalendar is the schedule as systemd timer expressions.
func (c *CronJob) OnCalendar() ([]string, error) {
	s, err := c.parsed()
	if err != nil {
		return nil, err
	}
	return s.OnCalendar(c.TimeZone), nil
}

// CronHash identifies a CronJob's timer: its template pod's hash and its
// schedule and policy. A change of any replaces the timer.
func CronHash(p *Pod) (string, error) {
	b, err := json.Marshal(p.Cron)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append([]byte(p.Hash+"\x00"), b...))
	return hex.EncodeToString(sum[:16]), nil
}

// RunName is the name of a CronJob's run for a scheduled time, as the
// CronJob controller names its Jobs: <name>-<minutes since the epoch>.
func RunName(cronJob string, scheduled time.Time) string {
	return cronJob + "-" + strconv.FormatInt(scheduled.Unix()/60, 10)
}

// ParseRunName reads a run's pod name: the CronJob's name and the run's
// scheduled time (to the minute). ok is false for a name RunName did not
// make.
func ParseRunName(pod string) (cronJob string, scheduled time.Time, ok bool) {
	m := runNameRE.FindStringSubmatch(pod)
	if m == nil || len(m[1]) > MaxCronJobName {
		return "", time.Time{}, false
	}
	minutes, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return m[1], time.Unix(minutes*60, 0), true
}

var runNameRE = regexp.MustCompile(`^(.+)-([0-9]{8,12})$`)

// Run is the pod of the template p's run for the scheduled time: a Job's
// pod named RunName, with a config hash of its own and the CronJob's
// annotations.
func (p *Pod) Run(scheduled time.Time) (*Pod, error) {
	if p.Cron == nil {
		return nil, fmt.Errorf("pod %s is not a CronJob's template", p.Key())
	}
	name := RunName(p.Cron.Name, scheduled)
	spec := p.Spec.DeepCopy()
	spec.Name = name
	sum := sha256.Sum256([]byte(p.Hash + "\x00" + name))
	hash := hex.EncodeToString(sum[:16])
	spec.UID = types.UID(hash)
	spec.Annotations[AnnotationConfigHash] = hash
	spec.Annotations[AnnotationOwner] = "Job/" + name
	spec.Annotations[AnnotationCronJob] = p.Cron.Name
	spec.Annotations[AnnotationScheduledTime] = scheduled.UTC().Format(time.RFC3339)
	return &Pod{Source: p.Source, Hash: hash, Spec: spec, Objects: p.Objects, Notices: p.Notices}, nil
}
