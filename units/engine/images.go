package engine

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Images is the part of the CRI image service a sync asks.
type Images interface {
	ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error)
}

// imageStatusTimeout bounds each question: a runtime that does not answer
// (restarting) must not hold up the sync's other changes.
const imageStatusTimeout = 2 * time.Second

// imagePresence tells whether the runtime has an image, asking once an
// image a pass. An image the runtime cannot be asked about is taken as
// absent: the pod then waits for the network, which costs nothing once it
// is up; after one such failure the runtime is not asked again this pass.
// nil when there is no image service to ask.
func imagePresence(ctx context.Context, images Images) func(string) bool {
	if images == nil {
		return nil
	}
	seen := map[string]bool{}
	unreachable := false
	return func(image string) bool {
		if present, ok := seen[image]; ok || unreachable {
			return present
		}
		ctx, cancel := context.WithTimeout(ctx, imageStatusTimeout)
		defer cancel()
		st, err := images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: image}, false)
		unreachable = err != nil
		present := err == nil && st.GetImage() != nil
		seen[image] = present
		return present
	}
}
