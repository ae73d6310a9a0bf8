package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/podshim/registry"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

// ImageService is the part of the CRI image service a replacement uses:
// it pulls the new generation's images before the old one stops.
type ImageService interface {
	Images
	registry.Puller
}

// Containers is the part of the CRI runtime service a replacement asks.
type Containers interface {
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
}

// Replacer carries out replacements: the second half of a sync's change,
// run by a hand-off unit (podunit handoff), never by the sync itself. For
// each pod it
//
//  1. pulls every image the new generation needs that the runtime lacks
//     (or whose policy is Always) while the old generation keeps running;
//     a pull that fails is retried with back-off, and the old generation
//     runs on meanwhile (ImagePullBackOff);
//  2. stops the old generation and starts the new one;
//  3. when the old generation was ready, waits for the new one to be ready
//     within its rollout deadline (generator.RolloutDeadline); if it is
//     not, stops it and starts the old generation again, pinned to the
//     image IDs it ran (RolledBack).
//
// Each step is recorded (Rollouts) for the sync, the status API and
// /metrics.
type Replacer struct {
	Manager    bus.Manager
	Images     ImageService // nil: nothing is pulled ahead
	UnitConfig generator.UnitConfig
	Rollouts   Rollouts
	// StateDir holds podshim's state files: the image IDs the old
	// generation runs, and why the new one is not ready.
	StateDir string
	// Node are the node's registry credentials: its auth file and
	// credential provider plugins.
	Node   registry.Node
	Report Reporter
	// Containers is the runtime's container listing: whether the new
	// generation's containers keep running; nil: podshim's state alone.
	Containers Containers
	// Pin pins the image IDs a rolled-back generation runs in the runtime,
	// so that no image garbage collection removes them; nil: not pinned.
	Pin func(ctx context.Context, images []string) error
	// PullBackoff is the wait after the n-th failed pull (n from 1);
	// nil: DefaultPullBackoff.
	PullBackoff func(n int) time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time

	// wanted reads what the last sync wants (WantedPath of UnitConfig).
	wanted *wantedReader
}

// DefaultPullBackoff is the kubelet's image pull back-off: 10 s, doubling,
// at most 5 min.
func DefaultPullBackoff(n int) time.Duration {
	d := 10 * time.Second
	for i := 1; i < n && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// ErrRolledBack: a replacement was not ready and its pod runs its last
// ready generation again; the record says why.
var ErrRolledBack = errors.New("rolled back")

// errRestarted: a container of the new generation restarted while it had
// to stay ready.
var errRestarted = errors.New("a container restarted")

// errGone: no valid manifest asks for the pod any more (a later sync
// said so): the hand-off starts nothing for it.
var errGone = errors.New("its manifest is gone")

// errSuperseded ends a wait once the manifest asks for another generation
// than the one waited for.
var errSuperseded = errors.New("superseded by a later edit")

// wantedPoll is how often a hand-off that waits looks at what the sync
// wants now.
const wantedPoll = 250 * time.Millisecond

// Step is one pod of a replacement: the spec file of its new generation.
type Step struct {
	Spec string
	// Trigger is why it is replaced (TriggerManifest, TriggerAutoUpdate).
	Trigger string
	// Resume: the pod's replacement was cut short (units.Unit.Resume); it
	// is carried on from its record.
	Resume bool
}

// Replace replaces pods one at a time, each through the three steps above,
// and stops at the first that rolls back, rolling back the ones it
// replaced before it too (a workload's rollout: the replicas must not run
// two versions). It returns the unit names replaced and ready.
//
// The generation a pod is replaced with is the one the sync wants now
// (WantedPath): a manifest edited again while its replacement is under
// way supersedes the generation being rolled out, at whichever step it is
// (pulling, stopping the old generation, starting, holding it to its
// readiness), and the newest one is started in its place, once the old one
// is down; a pod whose manifest is gone is left alone (the sync stops it),
// and nothing is started for it.
//
// With rolling (a workload's rollout), a pod with no ready generation to
// come back to (a StatefulSet's new pod, started in order) must be ready
// too before the next one starts; a pod replaced alone is only started.
func (r *Replacer) Replace(ctx context.Context, steps []Step, rolling bool) ([]string, error) {
	type done struct {
		u   *units.Unit
		rec *Rollout
	}
	var replaced []done
	var names []string
	r.init()
	pods := make([]*generator.Pod, len(steps))
	for i, st := range steps {
		p, err := generator.FromSpec(podspec.ReadSpec(st.Spec))
		if errors.Is(err, fs.ErrNotExist) {
			r.Report.Infof("%s is gone (the manifest changed again); the next sync carries on", st.Spec)
			return names, nil
		}
		if err != nil {
			return names, err
		}
		pods[i] = p
	}
	// A pod a rollback holds on its last ready generation (the sync asks
	// for that one): started again as it was, pinned, its record kept.
	if len(pods) == 1 && steps[0].Trigger == TriggerManifest {
		if old, _ := r.Rollouts.Read(pods[0].Namespace(), pods[0].Name()); old != nil && old.Phase == PhaseRolledBack && old.Previous == pods[0].Hash && old.Generation != old.Previous {
			return names, r.restore(ctx, old)
		}
	}
	// Every image of every pod first, while all of them run.
	loaded, err := bus.List(ctx, r.Manager) // the generations running now, asked once for all
	if err != nil {
		return names, err
	}
	recs := make([]*Rollout, len(steps))
	resumed := make([]bool, len(steps))
	for i, p := range pods {
		cur := loaded[units.ServiceName(p.Namespace(), p.Name())]
		if steps[i].Resume {
			recs[i] = r.resume(p, cur)
			resumed[i] = recs[i] != nil
		}
		if recs[i] == nil {
			recs[i] = r.begin(p, cur, steps[i].Trigger)
		}
		if resumed[i] && !staysUp(cur) {
			// Nothing runs, or what runs is going down (a boot, a kill
			// between the old generation's stop and the new one's start,
			// or during the stop of one superseded while it started):
			// the last ready generation runs while the new one is pulled
			// and waits for its turn, as it did before the replacement
			// was cut short.
			// Stopped first, not only waited for: a unit deactivating
			// on its own (podshim crashed, its watchdog) comes back by
			// Restart=, never inactive; a queued start is cancelled.
			name := units.ServiceName(p.Namespace(), p.Name())
			err := bus.StopUnit(ctx, r.Manager, name)
			if err == nil {
				err = bus.WaitStopped(ctx, r.Manager, name)
			}
			if err == nil {
				err = r.runPrevious(ctx, recs[i])
			}
			if err != nil {
				r.Report.Errorf("pod %s: %v", p.Key(), err)
			}
		}
	}
	// However it ends, only a rollback's records outlive the hand-off: a
	// rollout's replicas keep theirs (Ready) until the whole rollout is
	// done, so that a later replica's failure can take them back. One cut
	// short (SIGTERM at shutdown, as SIGKILL or a power cut, which leave
	// no chance) keeps them all: the next sync carries it on from them
	// (units.Unit.Resume).
	defer func() {
		if ctx.Err() != nil {
			return
		}
		for _, rec := range recs {
			if rec.Phase != PhaseRolledBack {
				r.finish(rec)
			}
		}
	}()
	gone := make([]bool, len(pods))
	for i := range pods {
		p, err := r.pull(ctx, pods[i], recs[i])
		switch {
		case errors.Is(err, errGone):
			r.Report.Infof("pod %s: %v; it is not started (the sync stops it)", pods[i].Key(), errGone)
			gone[i] = true
			continue
		case err != nil:
			return names, err
		}
		pods[i] = p
		if cur := loaded[units.ServiceName(p.Namespace(), p.Name())]; !resumed[i] && steps[i].Trigger == TriggerManifest && cur.ConfigHash == p.Hash && cur.ActiveState == "active" {
			// The edit was reverted while the new images were pulled:
			// the generation wanted is the one that runs, untouched.
			r.Report.Infof("pod %s: the manifest asks again for generation %s, which runs; it is left as it is", p.Key(), p.Hash)
			gone[i] = true
		}
	}
	for i := range pods {
		rec := recs[i]
		if gone[i] {
			continue // its manifest is gone, or its edit reverted
		}
		cur := loaded[units.ServiceName(pods[i].Namespace(), pods[i].Name())]
		running := resumed[i] && cur.ConfigHash == pods[i].Hash && staysUp(cur)
		if running && rec.Phase == PhaseReady {
			// A replica of a rollout cut short that went through the
			// gate before it: replaced, as it was.
			if u, err := generator.Unit(r.UnitConfig, pods[i]); err == nil {
				names = append(names, u.Name)
				replaced = append(replaced, done{u, rec})
				continue
			}
		}
		u, p, err := r.swap(ctx, pods[i], rec, rolling, running)
		switch {
		case err == nil:
			names = append(names, u.Name)
			replaced = append(replaced, done{u, rec})
			continue
		case errors.Is(err, errGone):
			r.Report.Infof("pod %s: %v; its old generation is down and nothing is started", p.Key(), errGone)
			continue
		case errors.Is(err, bus.ErrStopped):
			// A sync stopped it (its manifest was removed), or a person
			// did: not the new generation's failure; the next sync decides.
			r.Report.Infof("pod %s: generation %s was stopped while it was rolled out (%v); the next sync carries on", p.Key(), p.Hash, err)
			return names, nil
		case !errors.Is(err, bus.ErrNotReady) || rec.Previous == "":
			return names, err
		}
		// Not ready: this pod and those replaced before it go back. Every
		// record of the rollout says RolledBack before any generation is
		// exchanged: a rollout cut short during its rollback (SIGKILL, a
		// power cut) is held, not carried on past its failure.
		r.explain(p, rec, err)
		for j := len(replaced) - 1; j >= 0; j-- {
			d := replaced[j]
			d.rec.Reason, d.rec.Message = "RolloutFailed", fmt.Sprintf("pod %s of the same rollout was not ready: %s", p.Key(), rec.Message)
			d.rec.Phase = PhaseRolledBack
			r.record(d.rec)
		}
		// The replicas not reached keep their generation, held as the
		// others are: the rollout stops here until the manifest changes
		// (the generation the sync wants for each now: a template edited
		// while the rollout ran is not tried again either).
		for j, rest := range recs[i+1:] {
			if rest.Previous == "" {
				continue
			}
			if next, err := r.latest(pods[i+1+j]); err == nil {
				rest.Generation = next.Hash
			}
			rest.Phase, rest.Reason = PhaseRolledBack, "RolloutFailed"
			rest.Message = fmt.Sprintf("the rollout stopped before this pod: pod %s was not ready: %s", p.Key(), rec.Message)
			r.record(rest)
		}
		failure := r.rollBackTo(ctx, u, rec)
		for j := len(replaced) - 1; j >= 0; j-- {
			if e := r.rollBackTo(ctx, replaced[j].u, replaced[j].rec); e != nil {
				failure = errors.Join(failure, e)
			}
		}
		return names[:0], failure
	}
	return names, nil
}

// staysUp is whether a pod's unit runs and nothing stops it: it is
// active or starting, with no stop job queued.
func staysUp(cur bus.Running) bool {
	switch {
	case cur.ConfigHash == "" || cur.Job == "stop":
		return false
	default:
		return cur.ActiveState == "active" || cur.ActiveState == "activating" || cur.ActiveState == "reloading"
	}
}

// init makes what the zero Replacer lacks.
func (r *Replacer) init() {
	if r.wanted == nil {
		r.wanted = &wantedReader{path: WantedPath(r.UnitConfig)}
	}
}

// latest is the generation of p's pod that the sync wants now: p itself,
// a later one (from its spec file, which the sync wrote before it said
// so), or errGone when no valid manifest asks for the pod any more.
func (r *Replacer) latest(p *generator.Pod) (*generator.Pod, error) {
	hash, wanted, known := r.wanted.lookup(p.Key())
	switch {
	case !known || hash == p.Hash:
		return p, nil
	case !wanted:
		return nil, errGone
	}
	next, err := generator.FromSpec(podspec.ReadSpec(generator.SpecPath(r.UnitConfig, p.Namespace(), p.Name(), hash)))
	if err != nil {
		r.Report.Errorf("pod %s: generation %s is wanted now, but cannot be read: %v; going on with %s", p.Key(), hash, err, p.Hash)
		return p, nil
	}
	return next, nil
}

// follow moves a replacement to the generation wanted now, when that is
// another than p, and records it.
func (r *Replacer) follow(p *generator.Pod, rec *Rollout) (*generator.Pod, error) {
	next, err := r.latest(p)
	if err != nil || next == p {
		return next, err
	}
	r.Report.Infof("pod %s: generation %s is superseded by %s (the manifest changed again); going on with %s", p.Key(), p.Hash, next.Hash, next.Hash)
	rec.Generation = next.Hash
	r.record(rec)
	return next, nil
}

// whileWanted is ctx, ended with cause errSuperseded once the sync wants
// another generation of p's pod than p (or none).
func (r *Replacer) whileWanted(ctx context.Context, p *generator.Pod) (context.Context, context.CancelFunc) {
	return r.until(ctx, func() error {
		// As latest decides: a wanted generation whose spec cannot be
		// read does not supersede p.
		if next, err := r.latest(p); err != nil || next != p {
			return errSuperseded
		}
		return nil
	})
}

// until is ctx, ended with the cause check returns once it returns one
// (asked every wantedPoll).
func (r *Replacer) until(ctx context.Context, check func() error) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		t := time.NewTicker(wantedPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := check(); err != nil {
				cancel(err)
				return
			}
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// begin records a replacement's start: the generation it replaces (cur,
// the pod's unit as it runs now) and the image IDs that one runs, with a
// copy of its spec.
func (r *Replacer) begin(p *generator.Pod, cur bus.Running, trigger string) *Rollout {
	ns, name := p.Namespace(), p.Name()
	now := r.clock()
	rec := &Rollout{Namespace: ns, Name: name, Phase: PhasePulling, Trigger: trigger, Generation: p.Hash, Started: now, Updated: now}
	// A pod that runs to completion (a Job's, restartPolicy OnFailure or
	// Never) is not held to staying ready: its containers end.
	always := p.Spec.Spec.RestartPolicy == corev1.RestartPolicyAlways
	if always && cur.ActiveState == "active" && cur.SubState == "running" {
		// Ready: a generation to come back to.
		prevSpec := generator.SpecPath(r.UnitConfig, ns, name, cur.ConfigHash)
		if err := r.Rollouts.SaveSpec(prevSpec, ns, name, cur.ConfigHash); err != nil {
			r.Report.Errorf("pod %s: keep generation %s to roll back to: %v", p.Key(), cur.ConfigHash, err)
		} else {
			rec.Previous = cur.ConfigHash
			rec.PreviousImages = r.runningImages(ns, name)
		}
	}
	if old, _ := r.Rollouts.Read(ns, name); old != nil && old.Phase == PhaseRolledBack && old.Previous == rec.Previous && trigger == TriggerAutoUpdate {
		rec.PreviousImages = old.PreviousImages // the pinned ones it runs
	}
	r.record(rec)
	return rec
}

// resume is the record of p's replacement that was cut short (units.Unit.Resume),
// taken up again for p: the generation to come back to is the one it kept,
// whatever runs now (p itself, not yet through the gate, or nothing after a
// boot); nil when there is none to take up (then begin starts afresh, from
// what runs). A rollout's replica that went through the gate already keeps
// its Ready.
func (r *Replacer) resume(p *generator.Pod, cur bus.Running) *Rollout {
	old, err := r.Rollouts.Read(p.Namespace(), p.Name())
	if err != nil || old == nil || old.Previous == "" || old.Phase == PhaseRolledBack || old.Previous == p.Hash || p.Spec.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		// (A pod that runs to completion is not held to staying ready,
		// as begin decides.)
		return nil
	}
	if _, err := r.Rollouts.RestoreSpec(generator.SpecPath(r.UnitConfig, p.Namespace(), p.Name(), old.Previous), p.Namespace(), p.Name(), old.Previous); err != nil {
		r.Report.Errorf("pod %s: its replacement was cut short, and generation %s cannot be run again (%v): it starts afresh", p.Key(), old.Previous, err)
		return nil
	}
	rec := *old
	if rec.Phase != PhaseReady || rec.Generation != p.Hash || cur.ConfigHash != p.Hash {
		rec.Phase, rec.Generation, rec.Reason, rec.Message = PhasePulling, p.Hash, "", ""
	}
	r.Report.Infof("pod %s: its replacement by generation %s was cut short (a hand-off killed, or the machine down); carrying it on, against the last ready generation %s", p.Key(), p.Hash, rec.Previous)
	r.record(&rec)
	return &rec
}

// runningImages are the image IDs pod namespace/name's containers run, by
// the reference its spec names (podshim's state).
func (r *Replacer) runningImages(namespace, name string) map[string]string {
	st, err := podshim.ReadState(r.StateDir, namespace, name)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, cs := range append(st.Status.InitContainerStatuses, st.Status.ContainerStatuses...) {
		if cs.Image != "" && cs.ImageID != "" {
			out[cs.Image] = cs.ImageID
		}
	}
	return out
}

// pull makes every image the pod needs present, trying again with back-off
// until it works or the context ends, while the old generation runs. It
// follows the generation wanted now (follow) at each try, and returns the
// pod pulled for, or errGone.
func (r *Replacer) pull(ctx context.Context, p *generator.Pod, rec *Rollout) (*generator.Pod, error) {
	if r.Images == nil {
		return r.follow(p, rec)
	}
	for attempt := 1; ; attempt++ {
		var err error
		if p, err = r.follow(p, rec); err != nil {
			return nil, err
		}
		err = r.pullFor(ctx, p)
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		_ = r.Rollouts.Count(CounterImagePullsFailed)
		wait := r.backoff(attempt)
		rec.Phase, rec.Reason, rec.Attempts = PhaseImagePullBackOff, "ErrImagePull", attempt
		rec.Message = fmt.Sprintf("%v; the running generation keeps running, next try in %s", err, wait.Round(time.Second))
		r.record(rec)
		r.Report.Errorf("pod %s: new generation %s not started: %s", p.Key(), p.Hash, rec.Message)
		// An edit ends the back-off at once: its images are tried next.
		wctx, cancel := r.whileWanted(ctx, p)
		select {
		case <-wctx.Done():
		case <-time.After(wait):
		}
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// pullFor pulls the images of pod p that its start would pull, with its
// pull credentials.
func (r *Replacer) pullFor(ctx context.Context, p *generator.Pod) error {
	if r.Images == nil {
		return nil
	}
	objects, err := podspec.ReadObjects(generator.SpecPath(r.UnitConfig, p.Namespace(), p.Name(), p.Hash))
	if err != nil {
		return err
	}
	return r.pullImages(ctx, p.Spec, registry.PodKeyring(p.Spec, objects, r.Node))
}

// pullImages pulls the images of the pod's containers and image volumes
// that its start would pull: Always, or IfNotPresent and absent.
func (r *Replacer) pullImages(ctx context.Context, pod *corev1.Pod, keyring registry.Keyring) error {
	type want struct {
		ref    string
		policy corev1.PullPolicy
	}
	var wants []want
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		wants = append(wants, want{c.Image, c.ImagePullPolicy})
	}
	for _, v := range pod.Spec.Volumes {
		if v.Image != nil {
			wants = append(wants, want{v.Image.Reference, v.Image.PullPolicy})
		}
	}
	seen := map[string]bool{}
	var errs []error
	for _, w := range wants {
		if seen[w.ref] || w.policy == corev1.PullNever {
			continue
		}
		seen[w.ref] = true
		image := &runtimeapi.ImageSpec{Image: w.ref}
		if w.policy != corev1.PullAlways {
			st, err := r.Images.ImageStatus(ctx, image, false)
			if err != nil {
				errs = append(errs, fmt.Errorf("image status %s: %w", w.ref, err))
				continue
			}
			if st.GetImage() != nil {
				continue
			}
		}
		r.Report.Infof("pod %s/%s: pulling %s before its running generation stops", pod.Namespace, pod.Name, w.ref)
		if _, err := registry.Pull(ctx, r.Images, image, keyring.Credentials(w.ref), nil); err != nil {
			errs = append(errs, fmt.Errorf("pull %s: %w", w.ref, err))
		}
	}
	return errors.Join(errs...)
}

// swap stops the pod's running generation and starts p, or the
// generation wanted by the time the old one is down; when a ready
// generation is replaced, the one started must be ready within the pod's
// deadline, and one superseded while it starts is stopped for the newest.
// It returns the unit and pod started last; errGone when the pod's
// manifest went away (nothing is started).
//
// With running, p's unit runs already (a replacement cut short): it is not
// restarted, only held to the gate.
func (r *Replacer) swap(ctx context.Context, p *generator.Pod, rec *Rollout, rolling, running bool) (*units.Unit, *generator.Pod, error) {
	rec.Phase, rec.Reason, rec.Message = PhaseStarting, "", ""
	r.record(rec)
	for {
		var u *units.Unit
		var err error
		if running {
			running = false
			if u, err = generator.Unit(r.UnitConfig, p); err != nil {
				return nil, p, fmt.Errorf("pod %s: %w", p.Key(), err)
			}
			r.Report.Infof("pod %s: generation %s runs already; it is held to its readiness as its replacement would have", p.Key(), p.Hash)
		} else if u, p, err = r.restart(ctx, p, rec); err != nil {
			return u, p, err
		}
		if rec.Previous == "" && !rolling {
			// Nothing ready to come back to (the old generation was
			// failing or down, or there was none): started, as sync
			// starts a new pod.
			r.Report.Infof("started %s", u.Name)
			return u, p, nil
		}
		switch err := r.gate(ctx, u, p, rec); {
		case errors.Is(err, errSuperseded):
			continue // the newest, through the same gate
		case err != nil:
			return u, p, err
		}
		return u, p, nil
	}
}

// restart stops the pod's running generation and starts p, or the
// generation wanted by the time the old one is down (the grace period is
// the only wait). When that one's images cannot be pulled, the last ready
// generation runs again while they are pulled with back-off (the
// replacement is not over: the pull's failure is not the new generation's
// failure to become ready); with none, it is started all the same, and
// podshim pulls (ImagePullBackOff), as a new pod is.
func (r *Replacer) restart(ctx context.Context, p *generator.Pod, rec *Rollout) (*units.Unit, *generator.Pod, error) {
	name := units.ServiceName(p.Namespace(), p.Name())
	for {
		if err := bus.StopUnit(ctx, r.Manager, name); err != nil {
			return nil, p, err
		}
		if err := bus.WaitStopped(ctx, r.Manager, name); err != nil {
			return nil, p, err
		}
		next, err := r.follow(p, rec)
		if err != nil {
			return nil, p, err
		}
		if next != p {
			p = next
			if err := r.pullFor(ctx, p); err != nil && rec.Previous != "" && ctx.Err() == nil {
				r.Report.Errorf("pod %s: generation %s, wanted now, cannot be pulled (%v); generation %s runs again while it is", p.Key(), p.Hash, err, rec.Previous)
				if err := r.runPrevious(ctx, rec); err != nil {
					return nil, p, err
				}
				rec.Phase = PhasePulling
				pulled, err := r.pull(ctx, p, rec)
				if err != nil {
					return nil, p, err
				}
				p = pulled
				rec.Phase = PhaseStarting
				r.record(rec)
				continue // pulled: the last ready generation stops for it
			}
		}
		u, err := generator.Unit(r.UnitConfig, p)
		if err != nil {
			return nil, p, fmt.Errorf("pod %s: %w", p.Key(), err)
		}
		if err := bus.StartUnit(ctx, r.Manager, u); err != nil {
			return u, p, err
		}
		return u, p, nil
	}
}

// gate holds u (generation p), started in place of a ready generation or
// in a rollout, to its readiness: ready within its rollout deadline and
// ready for its whole min-ready window. A rollout's pod with nothing to
// come back to only has to become active. errSuperseded when the
// manifest asks for another generation meanwhile: u is not one to come
// back to, and the newest goes through the same gate.
func (r *Replacer) gate(ctx context.Context, u *units.Unit, p *generator.Pod, rec *Rollout) error {
	wctx, cancel := r.whileWanted(ctx, p)
	var err error
	if rec.Previous == "" {
		// In a rollout, ready before the next one starts.
		err = bus.WaitActive(wctx, r.Manager, u.Name)
		if err != nil && context.Cause(wctx) != errSuperseded {
			err = fmt.Errorf("rollout of %s stopped: %w", u.Group, err)
		}
	} else {
		err = bus.WaitReady(wctx, r.Manager, u.Name, generator.RolloutDeadline(p.Spec))
	}
	superseded := err != nil && context.Cause(wctx) == errSuperseded
	cancel()
	if superseded {
		r.Report.Infof("pod %s: generation %s is superseded while it starts; it is stopped for the generation wanted now", p.Key(), p.Hash)
		return errSuperseded
	}
	if err != nil {
		return err
	}
	if rec.Previous == "" {
		r.Report.Infof("started %s", u.Name)
		return nil
	}
	if err := r.holdReady(ctx, u.Name, p, generator.MinReady(p.Spec)); errors.Is(err, errSuperseded) {
		// Ready, but not for its whole window: it is not a generation to
		// come back to.
		r.Report.Infof("pod %s: generation %s is superseded while it is held to its readiness; it is stopped for the generation wanted now", p.Key(), p.Hash)
		return errSuperseded
	} else if err != nil {
		return err
	}
	_ = r.Rollouts.Count(CounterRolloutsReady)
	rec.Phase = PhaseReady
	r.record(rec)
	r.Report.Infof("replaced %s: generation %s is ready", u.Name, p.Hash)
	return nil
}

// holdReady checks for window that the new generation stays ready: its
// unit active, and each app container running its first attempt (the
// runtime's word, which does not lag: on a slow machine podshim's state
// file may still say ready while a container already exited) and ready
// (podshim's probes, from its state file of the same sandbox). A version
// that crashes a second after it started is not ready. A generation the
// manifest no longer asks for ends the window with errSuperseded: it was
// not ready long enough to be one to come back to.
func (r *Replacer) holdReady(ctx context.Context, unit string, p *generator.Pod, window time.Duration) error {
	apps := map[string]bool{}
	for _, c := range p.Spec.Spec.Containers {
		apps[c.Name] = true
	}
	check := func() error {
		sandbox := ""
		if r.Containers != nil {
			list, err := r.Containers.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: map[string]string{
				podshim.LabelPodNamespace: p.Namespace(), podshim.LabelPodName: p.Name(), podshim.LabelPodUID: string(p.Spec.UID),
			}})
			if err != nil {
				return nil // the runtime's hiccup is not the pod's failure
			}
			for _, c := range list {
				name := c.GetLabels()[podshim.LabelContainerName]
				if !apps[name] {
					continue
				}
				sandbox = c.PodSandboxId
				switch {
				case c.GetMetadata().GetAttempt() > 0:
					return fmt.Errorf("%w: container %s", errRestarted, name)
				case c.State != runtimeapi.ContainerState_CONTAINER_RUNNING:
					return fmt.Errorf("%w: container %s exited", errRestarted, name)
				}
			}
		}
		st, err := podshim.ReadState(r.StateDir, p.Namespace(), p.Name())
		if err != nil || st.UID != string(p.Spec.UID) || (sandbox != "" && st.SandboxID != sandbox) {
			return nil // not this sandbox's word yet
		}
		for _, cs := range st.Status.ContainerStatuses {
			if apps[cs.Name] && !cs.Ready {
				return fmt.Errorf("container %s was not ready", cs.Name)
			}
		}
		return nil
	}
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wantedPoll):
		}
		if next, err := r.latest(p); errors.Is(err, errGone) {
			// No manifest asks for the pod any more: the sync stops it.
			return nil
		} else if next != p {
			return errSuperseded
		}
		state, sub, err := bus.UnitState(ctx, r.Manager, unit)
		if err != nil {
			return err
		}
		if err := bus.StateError(state, sub); err != nil {
			return fmt.Errorf("it was ready, then: %w, within %s", err, window)
		}
		if err := check(); err != nil {
			return fmt.Errorf("%w: it was ready, then %w, within %s", bus.ErrNotReady, err, window)
		}
	}
	return nil
}

// exchange stops whatever generation of u's pod runs, waits until its
// unit is gone, and starts u: never two generations at once.
func (r *Replacer) exchange(ctx context.Context, u *units.Unit) error {
	if err := bus.StopUnit(ctx, r.Manager, u.Name); err != nil {
		return err
	}
	if err := bus.WaitStopped(ctx, r.Manager, u.Name); err != nil {
		return err
	}
	return bus.StartUnit(ctx, r.Manager, u)
}

// finish removes a replacement's record (and the spec it kept) once it
// went through.
func (r *Replacer) finish(rec *Rollout) {
	if err := r.Rollouts.Remove(rec.Namespace, rec.Name); err != nil {
		r.Report.Errorf("pod %s: %v", rec.Key(), err)
	}
}

// explain records in rec why p (generation rec.Generation) was not ready.
func (r *Replacer) explain(p *generator.Pod, rec *Rollout, notReady error) {
	rec.Reason, rec.Message = r.whyNotReady(p, notReady)
	if rec.Trigger == TriggerAutoUpdate {
		rec.FailedImages = r.runningImages(p.Namespace(), p.Name())
	}
}

// rollBackTo stops u and starts rec.Previous again, pinned to the image
// IDs it ran; the record says RolledBack until the manifest changes.
//
// When the generation to come back to cannot be run again (its saved spec
// is gone or unreadable), u is left running, as it is, and the journal
// says why: a pod that is not ready is better than no pod.
func (r *Replacer) rollBackTo(ctx context.Context, u *units.Unit, rec *Rollout) error {
	prev, err := r.PreviousUnit(rec)
	if err != nil {
		r.Report.Errorf("pod %s: generation %s was not ready (%s: %s), and generation %s cannot be run again (%v): %s is left running",
			rec.Key(), rec.Generation, rec.Reason, rec.Message, rec.Previous, err, u.Name)
		return nil
	}
	_ = r.Rollouts.Count(CounterRolloutsRolledBack)
	rec.Phase = PhaseRolledBack
	r.record(rec)
	r.Report.Errorf("pod %s: generation %s rolled back to %s: %s: %s", rec.Key(), rec.Generation, rec.Previous, rec.Reason, rec.Message)
	r.pin(ctx, rec)
	if err := r.exchange(ctx, prev); err != nil {
		return err
	}
	if err := bus.WaitReady(ctx, r.Manager, prev.Name, generator.DefaultRolloutDeadline); err != nil {
		r.Report.Errorf("pod %s: generation %s, rolled back to, is not ready either: %v", rec.Key(), rec.Previous, err)
	}
	return fmt.Errorf("pod %s: generation %s was not ready (%s): %w to %s", rec.Key(), rec.Generation, rec.Reason, ErrRolledBack, rec.Previous)
}

// pin pins the image IDs the generation a rollback returns to ran.
func (r *Replacer) pin(ctx context.Context, rec *Rollout) {
	if r.Pin == nil {
		return
	}
	var ids []string
	for _, id := range rec.PreviousImages {
		ids = append(ids, id)
	}
	if err := r.Pin(ctx, ids); err != nil {
		r.Report.Errorf("pod %s: the images of generation %s are not pinned: %v", rec.Key(), rec.Previous, err)
	}
}

// runPrevious starts the last ready generation again, pinned, while the
// pod's unit is down.
func (r *Replacer) runPrevious(ctx context.Context, rec *Rollout) error {
	u, err := r.PreviousUnit(rec)
	if err != nil {
		return fmt.Errorf("pod %s: generation %s: %w", rec.Key(), rec.Previous, err)
	}
	r.pin(ctx, rec)
	return bus.StartUnit(ctx, r.Manager, u)
}

// restore starts the generation a rollback holds a pod on again, pinned
// (its unit was down: stopped by hand, or failing).
func (r *Replacer) restore(ctx context.Context, rec *Rollout) error {
	u, err := r.PreviousUnit(rec)
	if err != nil {
		return fmt.Errorf("pod %s: generation %s: %w", rec.Key(), rec.Previous, err)
	}
	if err := r.exchange(ctx, u); err != nil {
		return err
	}
	r.Report.Infof("started %s: generation %s, which the rollback of %s holds it on", u.Name, rec.Previous, rec.Generation)
	return nil
}

// PreviousUnit is the unit of the generation a rollback returns to, with
// its spec files restored and its images pinned.
func (r *Replacer) PreviousUnit(rec *Rollout) (*units.Unit, error) {
	return previousUnit(r.UnitConfig, r.Rollouts, rec)
}

func previousUnit(ucfg generator.UnitConfig, rs Rollouts, rec *Rollout) (*units.Unit, error) {
	p, err := rs.RestoreSpec(generator.SpecPath(ucfg, rec.Namespace, rec.Name, rec.Previous), rec.Namespace, rec.Name, rec.Previous)
	if err != nil {
		return nil, err
	}
	if len(rec.PreviousImages) > 0 {
		pins := rs.PinsPath(rec.Namespace, rec.Name)
		if err := podspec.WritePins(pins, &podspec.Pins{Generation: rec.Previous, Images: rec.PreviousImages}); err != nil {
			return nil, err
		}
		ucfg.Podshim.Pins = pins
	}
	return generator.Unit(ucfg, p)
}

// whyNotReady says, in Kubernetes' words where podshim has some, why the
// new generation was not ready: a container's waiting or terminated
// reason, else the deadline.
func (r *Replacer) whyNotReady(p *generator.Pod, notReady error) (reason, message string) {
	reason, message = "ProgressDeadlineExceeded", notReady.Error()
	st, err := podshim.ReadState(r.StateDir, p.Namespace(), p.Name())
	if err != nil || st.UID != string(p.Spec.UID) {
		return reason, message
	}
	var why []string
	for _, cs := range append(st.Status.InitContainerStatuses, st.Status.ContainerStatuses...) {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "ContainerCreating" && cs.State.Waiting.Reason != "PodInitializing":
			if reason == "ProgressDeadlineExceeded" {
				reason = cs.State.Waiting.Reason
			}
			w := fmt.Sprintf("container %s: %s", cs.Name, cs.State.Waiting.Reason)
			if t := cs.LastTerminationState.Terminated; t != nil {
				w += fmt.Sprintf(" (exit code %d, %d restarts)", t.ExitCode, cs.RestartCount)
			}
			why = append(why, w)
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
			why = append(why, fmt.Sprintf("container %s: %s (exit code %d)", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode))
		case cs.RestartCount > 0 && cs.LastTerminationState.Terminated != nil:
			t := cs.LastTerminationState.Terminated
			why = append(why, fmt.Sprintf("container %s: restarted %d times, last %s (exit code %d)", cs.Name, cs.RestartCount, t.Reason, t.ExitCode))
		case cs.State.Running != nil && !cs.Ready:
			why = append(why, fmt.Sprintf("container %s: running, not ready", cs.Name))
		}
	}
	if reason == "ProgressDeadlineExceeded" && errors.Is(notReady, errRestarted) {
		reason = "CrashLoopBackOff" // restarting: the back-off is next
	}
	if len(why) > 0 {
		message = strings.Join(why, "; ") + " (" + message + ")"
	}
	return reason, message
}

func (r *Replacer) record(rec *Rollout) {
	rec.Updated = r.clock()
	if err := r.Rollouts.Write(rec); err != nil {
		r.Report.Errorf("pod %s: record the rollout: %v", rec.Key(), err)
	}
}

func (r *Replacer) backoff(n int) time.Duration {
	if r.PullBackoff != nil {
		return r.PullBackoff(n)
	}
	return DefaultPullBackoff(n)
}

func (r *Replacer) clock() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
