// Package podspec is the contract between `podunit sync` and podshim: the
// files of a pod's spec (the JSON spec file named in its unit's ExecStart,
// its protobuf twin that podshim reads, the data file of the ConfigMaps and
// Secrets it uses), the registry credentials of its image pull Secrets, the
// annotations sync sets for podshim to act on, and podshim's exit statuses.
// Both sides import it; it imports neither, nor the CRI.
package podspec

// AnnotationBackoffLimit is a Job's backoffLimit on its pod (set by sync
// from the Job): a container that failed more often than that fails the
// pod.
const AnnotationBackoffLimit = "podunit.io/backoff-limit"

// ExitPodFailed is podshim's exit status for a pod that finished and
// failed: its unit then stays failed and is not restarted
// (RestartPreventExitStatus).
const ExitPodFailed = 4

// AnnotationConfigHash is the pod's config hash, which sync sets as the
// kubelet does on static pods: what a generation is (Pins name theirs).
const AnnotationConfigHash = "kubernetes.io/config.hash"
