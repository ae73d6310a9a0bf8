// Package criconfig translates a pod into the CRI configs of its sandbox
// and containers, as the kubelet translates one: labels and annotations,
// DNS, ports, namespaces and security contexts, cgroup resources and OOM
// scores, environment (envFrom, env, the downward API, the Service
// variables, $(VAR) expansion), mounts, the termination-message file and
// the stop signal.
//
// Every input is explicit (Input: the pod, its ConfigMaps and Secrets, the
// host's facts and resolver configuration, the node's Services, the pod's
// addresses, the paths of its directories), and nothing is read from or written to the machine:
// the same input gives the same configs, which golden tests pin. What the
// host must hold for a config to work (the pod directory, the
// termination-message file, hostPath type checks, resolved subPaths, an
// image's user for runAsNonRoot) is podshim's, before it passes a config to
// the runtime.
package criconfig
