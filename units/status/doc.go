// Package status serves the kubelet's read-only API for podunit's pods:
// GET /pods and /pods/NAMESPACE/NAME (a PodList and Pods in the kubelet's
// shapes, from the pods' units, spec files and podshim's state files),
// /healthz (systemd, the runtime, the last sync) and /metrics; /cronjobs;
// and the node's Services: /services and /services/NAMESPACE/NAME (v1, from
// the sync's record of what each Service holds) and /endpointslices
// (discovery.k8s.io/v1, the sync's Service table joined with the pods as
// this server sees them, through service.Table.Join, as the node's rules
// and resolver join it with podshim's state files).
//
// `podunit serve` runs a Server on podunit-status.socket (and the
// configuration's readOnlyPort); `podunit get`, `describe` and `logs` read
// it.
package status
