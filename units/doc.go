// Package units is podunit's systemd unit model, with no D-Bus in it: unit
// and slice names, the Unit of a pod and the Timer of a CronJob, rendered
// as unit-file text (`podunit render`). Subpackages act on systemd:
//
//   - bus: the same units as D-Bus properties of transient units, and the
//     reconciler that brings the manager's pod units and timers to a
//     desired set without waiting on a pod (hand-offs, rollouts);
//   - engine: the sync engine, manifests → spec files → units;
//   - status: the kubelet's read-only API over what the units, spec files
//     and podshim's state files hold;
//   - unitstest: an in-memory systemd for their tests.
package units
