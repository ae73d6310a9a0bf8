// Package bus is the D-Bus side of podunit's units: a units.Unit or
// units.Timer as the properties of StartTransientUnit (a test checks they
// carry what the unit-file rendering carries), and the reconciler that
// brings systemd's pod units and CronJob timers to a desired set. It never
// waits on a pod: it queues jobs, and the second half of a replacement or a
// rollout is a hand-off unit's (`podunit handoff`). All of podunit's
// systemd calls are here.
package bus
