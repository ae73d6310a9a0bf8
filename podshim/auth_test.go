package podshim

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/podunit/podunit/podshim/podspec"
	"github.com/podunit/podunit/podshim/registry"
)

// A pull uses the pod's image pull Secrets whose registry (and path)
// matches, the most specific first, each in turn until one works; an image
// of another registry is pulled without credentials.
func TestPullWithImagePullSecrets(t *testing.T) {
	rt := newFakeCRI()
	pod := testPod()
	pod.Spec.Containers[0].Image = "registry.example:5000/team/app:1"
	pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "team"}}
	s := newShim(t, pod, rt, &notes{})
	auth := base64.StdEncoding.EncodeToString([]byte("bot:s3cret"))
	s.cfg.Objects = podspec.Objects{Secrets: []corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{
			corev1.DockerConfigJsonKey: []byte(`{"auths":{"https://registry.example:5000/v1/":{"auth":"` + auth + `"},"other.example":{"username":"x","password":"y"}}}`)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team"}, Type: corev1.SecretTypeDockercfg, Data: map[string][]byte{
			corev1.DockerConfigKey: []byte(`{"registry.example:5000/team":{"username":"team","password":"pw"}}`)}},
	}}
	creds := registry.PodKeyring(s.pod, s.cfg.Objects, registry.Node{}).Credentials(pod.Spec.Containers[0].Image)
	var users []string
	for _, c := range creds {
		users = append(users, c.Username+":"+c.Password)
	}
	if want := []string{"team:pw", "bot:s3cret"}; !slices.Equal(users, want) {
		t.Errorf("credentials %v, want %v", users, want)
	}
	if c := registry.PodKeyring(s.pod, s.cfg.Objects, registry.Node{}).Credentials("docker.io/library/nginx"); len(c) != 0 {
		t.Errorf("credentials for another registry: %v", c)
	}
	// The first credentials are refused; the second work.
	rt.FakeImageService.InjectError("PullImage", errors.New("401 Unauthorized"))
	if _, err := s.pull(context.Background(), &runtimeapi.ImageSpec{Image: pod.Spec.Containers[0].Image}); err != nil {
		t.Fatalf("pull: %v", err)
	}
}

// imagePullOffline: a container whose policy is Always runs the local copy
// of its image when the registry cannot be reached, but not when the
// registry answered (refused the credentials), nor without the setting.
func TestOfflineFallback(t *testing.T) {
	unreachable := errors.New(`failed to do request: Head "https://127.0.0.1:5443/v2/app/manifests/1": dial tcp 127.0.0.1:5443: connect: connection refused`)
	for _, tc := range []struct {
		name     string
		fallback bool
		pullErr  error
		want     string // the reference created from; "": ErrImagePull
	}{
		{"offline, fallback", true, unreachable, "busybox:1"},
		{"offline, kubelet's behaviour", false, unreachable, ""},
		{"unauthorized", true, errors.New("unexpected status: 401 Unauthorized"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newFakeCRI("busybox:1")
			pod := testPod()
			pod.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
			s := newShim(t, pod, rt, &notes{})
			s.cfg.OfflineFallback = tc.fallback
			s.offline = map[string]bool{"busybox:1": true} // no goroutine in a unit test
			rt.FakeImageService.InjectError("PullImage", tc.pullErr)
			ref, err := s.ensureImage(context.Background(), &pod.Spec.Containers[0])
			if tc.want == "" {
				var w *waitingError
				if !errors.As(err, &w) || w.reason != "ErrImagePull" {
					t.Fatalf("ensureImage = %q, %v; want ErrImagePull", ref, err)
				}
				return
			}
			if err != nil || ref != tc.want {
				t.Fatalf("ensureImage = %q, %v; want %q", ref, err, tc.want)
			}
		})
	}
}

// After a rollback the generation runs the image IDs it ran when it was
// ready, even with policy Always and after its tag moved; pins of another
// generation are not used.
func TestPinsHoldTheImageARollbackRuns(t *testing.T) {
	for _, tc := range []struct {
		generation, want string
		pulls            bool
	}{
		{"h1", "sha256:old", false},
		{"h2", "busybox:1", true},
	} {
		rt := newFakeCRI("busybox:1", "sha256:old")
		pod := testPod()
		pod.Annotations = map[string]string{"kubernetes.io/config.hash": "h1"}
		pod.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
		s := newShim(t, pod, rt, &notes{})
		s.cfg.Pins = &podspec.Pins{Generation: tc.generation, Images: map[string]string{"busybox:1": "sha256:old"}}
		ref, err := s.ensureImage(context.Background(), &pod.Spec.Containers[0])
		if err != nil {
			t.Fatal(err)
		}
		if ref != tc.want {
			t.Errorf("pins of generation %s: created from %q, want %q", tc.generation, ref, tc.want)
		}
		if pulled := slices.Contains(rt.FakeImageService.Called, "PullImage"); pulled != tc.pulls {
			t.Errorf("pins of generation %s: pulled %v, want %v", tc.generation, pulled, tc.pulls)
		}
	}
}
