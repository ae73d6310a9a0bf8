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
)

func TestRegistryOf(t *testing.T) {
	for image, want := range map[string][2]string{
		"nginx":                                 {"docker.io", "library/nginx"},
		"nginx:1.25":                            {"docker.io", "library/nginx"},
		"bitnami/redis:7":                       {"docker.io", "bitnami/redis"},
		"registry.example:5000/team/app:1":      {"registry.example:5000", "team/app"},
		"localhost/podunit/busybox:1.35":        {"localhost", "podunit/busybox"},
		"registry.example/app@sha256:0123abcd":  {"registry.example", "app"},
		"registry.example:5000/app:1@sha256:00": {"registry.example:5000", "app"},
	} {
		if h, p := registryOf(image); h != want[0] || p != want[1] {
			t.Errorf("registryOf(%q) = %s, %s; want %s, %s", image, h, p, want[0], want[1])
		}
	}
}

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
	creds := s.pullCredentials(pod.Spec.Containers[0].Image)
	var users []string
	for _, c := range creds {
		users = append(users, c.Username+":"+c.Password)
	}
	if want := []string{"team:pw", "bot:s3cret"}; !slices.Equal(users, want) {
		t.Errorf("credentials %v, want %v", users, want)
	}
	if c := s.pullCredentials("docker.io/library/nginx"); len(c) != 0 {
		t.Errorf("credentials for another registry: %v", c)
	}
	// The first credentials are refused; the second work.
	rt.FakeImageService.InjectError("PullImage", errors.New("401 Unauthorized"))
	if _, err := s.pull(context.Background(), &runtimeapi.ImageSpec{Image: pod.Spec.Containers[0].Image}); err != nil {
		t.Fatalf("pull: %v", err)
	}
}
