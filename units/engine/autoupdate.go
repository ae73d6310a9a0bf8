package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/generator"
	"github.com/podunit/podunit/podshim"
	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/podshim/registry"
	"github.com/podunit/podunit/units"
	"github.com/podunit/podunit/units/bus"
)

// DigestResolver tells which digest an image's tag names in its registry
// (registry.Resolver).
type DigestResolver interface {
	Digest(ctx context.Context, image string, creds []*runtimeapi.AuthConfig) (string, error)
}

// AutoUpdater updates the pods that ask for it (generator.AutoUpdatePolicy,
// podman's io.containers.autoupdate read as the same): for each of their
// containers whose image's tag names something else than what runs
// (registry: the registry's digest for the tag; local: the image the tag
// names on this machine), the new image is pulled and the pod replaced by
// a hand-off through the same gate as a manifest edit, rolled back to the
// image IDs it ran when the new ones are not ready.
type AutoUpdater struct {
	Manager    bus.Manager
	Images     ImageService
	Resolver   DigestResolver
	UnitConfig generator.UnitConfig
	Rollouts   Rollouts
	StateDir   string
	Node       registry.Node
	// HandoffCmd is `podunit handoff` with its flags.
	HandoffCmd []string
	Report     Reporter
}

// Update is one container's auto-update check.
type Update struct {
	Pod, Container, Image, Policy string
	// Running is what the container runs (its image ID); Available what
	// the tag names now (a digest for registry, an image ID for local).
	Running, Available string
	// Changed: the tag names something new. Skipped says why a change is
	// not acted on (the same image rolled back before).
	Changed bool
	Skipped string
	// Result of a real run: "updated", "rolled back: …", "failed: …".
	Result string
	Err    error
}

// Run checks every pod that asks for auto-update and, unless dryRun,
// replaces those with a changed image, one pod at a time, waiting for each
// hand-off to finish. It returns one Update per container checked.
func (a *AutoUpdater) Run(ctx context.Context, dryRun bool) ([]Update, error) {
	loaded, err := bus.List(ctx, a.Manager)
	if err != nil {
		return nil, err
	}
	busy, err := bus.PendingHandoffs(ctx, a.Manager)
	if err != nil {
		return nil, err
	}
	var out []Update
	// A workload whose replica rolled back is not updated further: its
	// other replicas stay on what works, as a rollout stops at its first
	// failure.
	failedOwners := map[string]string{}
	names := make([]string, 0, len(loaded))
	for n := range loaded {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		r := loaded[name]
		if r.ActiveState != "active" {
			continue // not running: nothing to update, and no generation to roll back to
		}
		spec := generator.SpecPath(a.UnitConfig, r.Namespace, r.PodName, r.ConfigHash)
		p, err := generator.FromSpec(podspec.ReadSpec(spec))
		if err != nil {
			continue
		}
		updates := a.check(ctx, p)
		if len(updates) == 0 {
			continue
		}
		changed := false
		for _, u := range updates {
			changed = changed || (u.Changed && u.Skipped == "" && u.Err == nil)
		}
		owner := p.Spec.Annotations[generator.AnnotationOwner]
		why := a.leftAlone(p, busy)
		if why == "" && owner != "" && failedOwners[owner] != "" {
			why = "replica " + failedOwners[owner] + " of " + owner + " rolled back"
		}
		if changed && why != "" {
			for i := range updates {
				if updates[i].Changed && updates[i].Skipped == "" {
					updates[i].Skipped = why
				}
			}
			changed = false
		}
		if changed && !dryRun {
			// Asked again before each update: the one before may have
			// taken an hour, and a rollout may have begun meanwhile.
			if busy, err = bus.PendingHandoffs(ctx, a.Manager); err != nil {
				return out, err
			}
			if why := a.leftAlone(p, busy); why != "" {
				for i := range updates {
					if updates[i].Changed && updates[i].Skipped == "" {
						updates[i].Skipped = why
					}
				}
				out = append(out, updates...)
				continue
			}
			result := a.update(ctx, p, spec, updates)
			for i := range updates {
				if updates[i].Changed && updates[i].Skipped == "" {
					updates[i].Result = result
				}
			}
			if owner != "" && strings.HasPrefix(result, "rolled back") {
				failedOwners[owner] = p.Name()
			}
		}
		out = append(out, updates...)
	}
	return out, nil
}

// leftAlone says why pod p, which runs, is not auto-updated now: a
// replacement of it, or a rollout of its workload, is under way (it goes
// on with what the sync wants); or a rollback of a manifest edit holds it
// on its last ready generation (an update would be taken for the end of
// that rollback, and the sync would try the failed generation again). ""
// when it may be.
func (a *AutoUpdater) leftAlone(p *generator.Pod, busy map[string]bool) string {
	u, err := generator.Unit(a.UnitConfig, p)
	if err != nil {
		return err.Error()
	}
	switch {
	case busy[units.HandoffName(u.Name)]:
		return "a replacement of the pod is under way"
	case u.Group != "" && busy[units.RolloutName(u.Namespace, u.Group)]:
		return "a rollout of " + u.Group + " is under way"
	}
	rec, _ := a.Rollouts.Read(p.Namespace(), p.Name())
	switch {
	case rec == nil:
	case rec.Phase == PhaseRolledBack && rec.Generation != rec.Previous:
		return fmt.Sprintf("its manifest's generation %s was rolled back; the pod is held on generation %s until the manifest changes", rec.Generation, rec.Previous)
	case cutShort(rec):
		// Its hand-off died: the next sync carries the replacement on,
		// gated against the generation the record keeps (an update now
		// would take the unproven one for the last ready).
		return "its replacement was cut short; the next sync carries it on"
	}
	return ""
}

// check compares each auto-updated container's running image with what
// its tag names now.
func (a *AutoUpdater) check(ctx context.Context, p *generator.Pod) []Update {
	st, _ := podshim.ReadState(a.StateDir, p.Namespace(), p.Name())
	running := map[string]string{}
	if st != nil && st.UID == string(p.Spec.UID) {
		for _, cs := range st.Status.ContainerStatuses {
			running[cs.Name] = cs.ImageID
		}
	}
	rec, _ := a.Rollouts.Read(p.Namespace(), p.Name())
	objects, _ := podspec.ReadObjects(generator.SpecPath(a.UnitConfig, p.Namespace(), p.Name(), p.Hash))
	keyring := registry.PodKeyring(p.Spec, objects, a.Node)
	var out []Update
	for _, c := range p.Spec.Spec.Containers {
		policy := generator.AutoUpdatePolicy(p.Spec, c.Name)
		if policy != generator.AutoUpdateRegistry && policy != generator.AutoUpdateLocal {
			continue
		}
		u := Update{Pod: p.Key(), Container: c.Name, Image: c.Image, Policy: policy, Running: running[c.Name]}
		_ = a.Rollouts.Count(CounterAutoUpdateChecks)
		if u.Running == "" {
			u.Err = errors.New("the container does not run")
			out = append(out, u)
			continue
		}
		switch policy {
		case generator.AutoUpdateRegistry:
			u.Available, u.Err = a.Resolver.Digest(ctx, c.Image, keyring.Credentials(c.Image))
			if u.Err == nil {
				u.Changed = !a.hasDigest(ctx, c.Image, u.Running, u.Available)
				if u.Changed && rec != nil && rec.Phase == PhaseRolledBack && a.hasDigest(ctx, c.Image, rec.FailedImages[c.Image], u.Available) {
					u.Skipped = "this digest was rolled back before"
				}
			}
		case generator.AutoUpdateLocal:
			img, err := a.Images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: c.Image}, false)
			switch {
			case err != nil:
				u.Err = err
			case img.GetImage() == nil:
				u.Err = fmt.Errorf("%s is not on this machine", c.Image)
			default:
				u.Available = img.Image.Id
				u.Changed = u.Available != u.Running
				if u.Changed && rec != nil && rec.Phase == PhaseRolledBack && rec.FailedImages[c.Image] == u.Available {
					u.Skipped = "this image was rolled back before"
				}
			}
		}
		if u.Changed && u.Skipped == "" && u.Err == nil {
			_ = a.Rollouts.Count(CounterAutoUpdatesAvailable)
		}
		out = append(out, u)
	}
	return out
}

// hasDigest tells whether image ID id is what image's repository names
// digest: the runtime knows repository@digest as that image (it was pulled
// by the tag when the tag named the digest), or lists the digest among the
// image's RepoDigests.
func (a *AutoUpdater) hasDigest(ctx context.Context, image, id, digest string) bool {
	if id == "" || digest == "" {
		return false
	}
	host, repo := registry.Of(image)
	if st, err := a.Images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: host + "/" + repo + "@" + digest}, false); err == nil && st.GetImage() != nil {
		return st.Image.Id == id
	}
	st, err := a.Images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: id}, false)
	if err != nil || st.GetImage() == nil {
		return false
	}
	for _, rd := range st.Image.RepoDigests {
		if strings.HasSuffix(rd, "@"+digest) {
			return true
		}
	}
	return false
}

// update pulls the changed images and replaces the pod through a
// hand-off, and says how that went.
func (a *AutoUpdater) update(ctx context.Context, p *generator.Pod, spec string, updates []Update) string {
	objects, _ := podspec.ReadObjects(spec)
	keyring := registry.PodKeyring(p.Spec, objects, a.Node)
	same := true
	for _, u := range updates {
		if !u.Changed || u.Skipped != "" || u.Err != nil {
			continue
		}
		if u.Policy != generator.AutoUpdateRegistry {
			same = false
			continue
		}
		id, err := registry.Pull(ctx, a.Images, &runtimeapi.ImageSpec{Image: u.Image}, keyring.Credentials(u.Image), nil)
		if err != nil {
			_ = a.Rollouts.Count(CounterImagePullsFailed)
			return fmt.Sprintf("failed: pull %s: %v (the pod runs on)", u.Image, err)
		}
		same = same && id == u.Running
	}
	if same {
		// The digest was new to the runtime, not the image (one imported
		// from an archive has no digest of its registry's): nothing to
		// replace.
		return "unchanged"
	}
	unit := units.ServiceName(p.Namespace(), p.Name())
	handoff := units.HandoffName(unit)
	argv := append(append([]string{}, a.HandoffCmd...), "--trigger", TriggerAutoUpdate, spec)
	queued, err := bus.StartHandoff(ctx, a.Manager, handoff, fmt.Sprintf("Auto-update pod %s", p.Key()), argv)
	switch {
	case err != nil:
		return "failed: " + err.Error()
	case !queued:
		return "failed: a replacement of the pod is under way; the next auto-update tries again"
	}
	a.Report.Infof("pod %s: new images pulled; %s replaces the pod", p.Key(), handoff)
	wait, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	if err := bus.WaitFinished(wait, a.Manager, handoff); err != nil {
		return "failed: " + err.Error()
	}
	if rec, _ := a.Rollouts.Read(p.Namespace(), p.Name()); rec != nil && rec.Phase == PhaseRolledBack {
		return fmt.Sprintf("rolled back: %s: %s", rec.Reason, rec.Message)
	}
	if s, sub, _ := bus.UnitState(ctx, a.Manager, unit); s != "active" {
		return "failed: the pod's unit is " + s + " (" + sub + "); journalctl -u " + handoff
	}
	return "updated"
}
