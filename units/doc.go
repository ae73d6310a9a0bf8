// Package units holds podunit's systemd unit model and everything systemd:
// unit and slice names, one Unit type rendered both as unit-file text
// (`podunit render`) and as the D-Bus properties of a transient unit, and the
// reconciler that brings the manager's pod units to a desired set.
//
// Only reconcile.go talks to systemd; the rest is pure.
package units
