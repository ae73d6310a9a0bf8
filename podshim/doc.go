// Package podshim runs one pod through the CRI: it creates or adopts the pod's
// sandbox, pulls images as the pull policy says, creates and starts the
// containers, tells systemd when the pod is ready, watches the containers and
// tears everything down on stop.
//
// podshim is the main process of the pod's service (Type=notify); systemd is
// its supervisor. When a container exits, Run returns ErrContainerExited and
// the process exits non-zero; systemd's Restart= runs podshim again, and the
// new process adopts the sandbox (found by its labels), keeps what still runs
// and recreates only the containers that are gone, so the pod IP is kept.
package podshim
