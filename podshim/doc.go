// Package podshim runs one pod through the CRI: it creates or adopts the pod's
// sandbox, pulls images as the pull policy says, runs the init containers in
// order and then the app containers, restarts containers as the restart
// policy says with the kubelet's back-off, runs their probes, forwards their
// output to the journal, tells systemd when the pod is ready, records the
// pod's status and tears everything down on stop.
//
// podshim is the main process of the pod's service (Type=notify) and systemd
// is its supervisor: if podshim dies or hangs (watchdog), systemd runs it
// again and the new process adopts the sandbox and containers (found by
// their labels), keeping restart counts and back-offs from the state file.
// Container restarts are podshim's, per container, because Kubernetes backs
// off per container, which a unit's Restart= cannot express.
package podshim
