// Package status serves the kubelet's read-only API for podunit's pods:
// GET /pods and /pods/NAMESPACE/NAME (a PodList and Pods in the kubelet's
// shapes, from the pods' units, spec files and podshim's state files),
// /healthz (systemd, the runtime, the last sync) and /metrics.
//
// `podunit serve` runs a Server on podunit-status.socket (and the
// configuration's readOnlyPort); `podunit get`, `describe` and `logs` read
// it.
package status
