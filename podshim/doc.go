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
//
// What the runtime is asked for is podshim/criconfig's (a pure translation
// of the pod, with golden tests); podshim supplies its inputs and makes
// what the configs need of the host. Its files:
//
//   - shim.go: the Shim, its main loop and reconciliation;
//   - sandbox.go, container.go, restart.go, hooks.go, stopsignal.go: the
//     sandbox's and the containers' lives;
//   - configs.go: the inputs of the translation, and the host prepared for
//     a container's config (hostPath checks, subPaths, the
//     termination-message file);
//   - poddir.go, volumes.go: the pod's directory (its /etc/hosts) and its
//     volumes (emptyDir, ConfigMap, Secret, projected, downward API);
//   - host.go: the machine's facts (CPUs, memory, addresses, resolver);
//   - nonroot.go: runAsNonRoot against the image's user;
//   - probe.go, events.go, logs.go, termination.go, state.go, auth.go:
//     probes, exit events, log forwarding, termination messages, the state
//     file, registry credentials.
package podshim
