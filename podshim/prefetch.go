package podshim

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/podspec"
)

// imageStatusCall is an ImageStatus asked in the background: done is
// closed once st and err are set.
type imageStatusCall struct {
	done chan struct{}
	st   *runtimeapi.ImageStatusResponse
	err  error
}

// prefetchImages asks the runtime for the status of every container image
// of pod (each image once) at once, in the background, so that the answers are there when
// the containers are created: the runtime answers them while it makes the
// sandbox, which takes far longer. Images a rollback pinned are asked by
// their pin instead (pinned), not here.
func prefetchImages(ctx context.Context, rt Runtime, pod *corev1.Pod, pins *podspec.Pins) map[string]*imageStatusCall {
	calls := map[string]*imageStatusCall{}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.ImagePullPolicy == corev1.PullAlways || calls[c.Image] != nil || (pins != nil && pins.Images[c.Image] != "") {
				continue
			}
			call := &imageStatusCall{done: make(chan struct{})}
			calls[c.Image] = call
			go func(image string) {
				defer close(call.done)
				call.st, call.err = rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: image}, false)
			}(c.Image)
		}
	}
	return calls
}

// imageStatus is the runtime's ImageStatus of image: during the start the
// answer prefetched for it (containers of the same image share it), else a
// new call.
func (s *Shim) imageStatus(ctx context.Context, image *runtimeapi.ImageSpec) (*runtimeapi.ImageStatusResponse, error) {
	if call := s.prefetched[image.Image]; call != nil {
		select {
		case <-call.done:
			if call.err == nil {
				return call.st, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.rt.ImageStatus(ctx, image, false)
}
