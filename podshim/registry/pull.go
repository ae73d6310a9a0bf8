package registry

import (
	"context"
	"errors"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Puller is the CRI image service's pull, and the status that names what it pulled.
type Puller interface {
	PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error)
	ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error)
}

// Pull pulls an image with each of creds in turn until one works, as the
// kubelet does, or without any when there are none. It returns the image's
// ID, as ImageStatus names it: containerd's PullImage returns that, CRI-O's
// a repository digest of the image (repo@sha256:…), which would not compare
// equal to the ID of the same image found locally. The credentials never
// reach an error: errors come from the runtime, which does not repeat them.
func Pull(ctx context.Context, rt Puller, image *runtimeapi.ImageSpec, creds []*runtimeapi.AuthConfig, sandbox *runtimeapi.PodSandboxConfig) (string, error) {
	ref, err := pull(ctx, rt, image, creds, sandbox)
	if err != nil {
		return "", err
	}
	if st, err := rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: ref}, false); err == nil && st.GetImage().GetId() != "" {
		return st.Image.Id, nil
	}
	return ref, nil
}

func pull(ctx context.Context, rt Puller, image *runtimeapi.ImageSpec, creds []*runtimeapi.AuthConfig, sandbox *runtimeapi.PodSandboxConfig) (string, error) {
	if len(creds) == 0 {
		return rt.PullImage(ctx, image, nil, sandbox)
	}
	var errs []error
	for _, auth := range creds {
		ref, err := rt.PullImage(ctx, image, auth, sandbox)
		if err == nil {
			return ref, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

// Unreachable tells whether a pull failed because the registry could not
// be reached (no route, refused, a name that does not resolve, a timeout),
// not because it answered (unauthorized, no such tag). Only the runtime's
// words tell: the CRI passes its errors on as text.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	msg := strings.ToLower(err.Error())
	for _, answered := range []string{"401 unauthorized", "403 forbidden", "unauthorized", "denied", ": not found", "manifest unknown", "name unknown"} {
		if strings.Contains(msg, answered) {
			return false
		}
	}
	for _, unreachable := range []string{
		"dial tcp", "connection refused", "no such host", "i/o timeout", "network is unreachable",
		"no route to host", "tls handshake timeout", "connection reset by peer", "server misbehaving",
		"temporary failure in name resolution",
	} {
		if strings.Contains(msg, unreachable) {
			return true
		}
	}
	return false
}
