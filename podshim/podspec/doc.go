// Package podspec is the contract between `podunit sync` and podshim: the
// files of a pod's spec (the JSON spec file named in its unit's ExecStart,
// its protobuf twin that podshim reads, the data file of the ConfigMaps and
// Secrets it uses), the registry credentials of its image pull Secrets, the
// annotations sync sets for podshim to act on, and podshim's exit statuses.
// Both sides import it; it imports neither, nor the CRI.
package podspec

import "time"

// AnnotationBackoffLimit is a Job's backoffLimit on its pod (set by sync
// from the Job): a container that failed more often than that fails the
// pod.
const AnnotationBackoffLimit = "podunit.io/backoff-limit"

// ExitPodFailed is podshim's exit status for a pod that finished and
// failed: its unit then stays failed and is not restarted
// (RestartPreventExitStatus).
const ExitPodFailed = 4

// StopMargin is what a pod's unit gives podshim's stop beyond the pod's
// grace period (TimeoutStopSec= is their sum): for its sandbox's stop and
// removal once the containers are gone, and for podshim's exit. podshim's
// teardown keeps within it (podshim.Config.StopTimeout), or systemd kills
// podshim midway and the next one finds a stale sandbox.
const StopMargin = 30 * time.Second

// AnnotationConfigHash is the pod's config hash, which sync sets as the
// kubelet does on static pods: what a generation is (Pins name theirs).
const AnnotationConfigHash = "kubernetes.io/config.hash"
