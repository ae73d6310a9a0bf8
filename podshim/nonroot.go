package podshim

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runAsNonRoot checks a container with runAsNonRoot, as the kubelet does:
// its user must be known to be non-zero, from its security context or its
// image. The error is the container's CreateContainerConfigError.
func (s *Shim) checkNonRoot(ctx context.Context, c *corev1.Container, sc *runtimeapi.LinuxContainerSecurityContext) error {
	want := false
	if psc := s.pod.Spec.SecurityContext; psc != nil && psc.RunAsNonRoot != nil {
		want = *psc.RunAsNonRoot
	}
	if csc := c.SecurityContext; csc != nil && csc.RunAsNonRoot != nil {
		want = *csc.RunAsNonRoot
	}
	if !want {
		return nil
	}
	if sc.RunAsUser != nil {
		if sc.RunAsUser.Value == 0 {
			return fmt.Errorf("container has runAsNonRoot and runAsUser 0")
		}
		return nil
	}
	st, err := s.rt.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: c.Image}, false)
	if err != nil {
		return fmt.Errorf("image status %s: %w", c.Image, err)
	}
	img := st.GetImage()
	switch {
	case img == nil:
		return fmt.Errorf("image %s not present", c.Image)
	case img.Uid != nil:
		if img.Uid.Value == 0 {
			return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", s.pod.Name+"_"+s.pod.Namespace+"("+string(s.pod.UID)+")", c.Name)
		}
		return nil
	case img.Username != "":
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root", img.Username)
	}
	return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", s.pod.Name+"_"+s.pod.Namespace+"("+string(s.pod.UID)+")", c.Name)
}
