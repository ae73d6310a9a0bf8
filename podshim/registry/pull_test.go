package registry

import (
	"context"
	"errors"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// images is an image service whose PullImage answers as a runtime does:
// with the image's ID (containerd) or a repository digest of it (CRI-O).
type images struct {
	pullRef string
	byRef   map[string]string // reference → image ID
	auths   []string
}

func (f *images) PullImage(_ context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, _ *runtimeapi.PodSandboxConfig) (string, error) {
	if auth != nil {
		f.auths = append(f.auths, auth.Username)
		if auth.Username != "right" {
			return "", errors.New("401 Unauthorized")
		}
	}
	return f.pullRef, nil
}

func (f *images) ImageStatus(_ context.Context, image *runtimeapi.ImageSpec, _ bool) (*runtimeapi.ImageStatusResponse, error) {
	if id, ok := f.byRef[image.Image]; ok {
		return &runtimeapi.ImageStatusResponse{Image: &runtimeapi.Image{Id: id}}, nil
	}
	return &runtimeapi.ImageStatusResponse{}, nil
}

func TestPullReturnsTheImageID(t *testing.T) {
	const id = "c5b0cfc5de3b1ef4064c21ee006228915f77401843874a544e712763152a7d3d"
	const digest = "127.0.0.1:5443/private/app@sha256:3121ac7d38a306dc39752d3e5582ee19501b5619afa74f98a05e9d80c4b9aae9"
	for _, tc := range []struct {
		name    string
		rt      *images
		creds   []*runtimeapi.AuthConfig
		want    string
		auths   []string
		wantErr bool
	}{
		{name: "containerd: the ID", rt: &images{pullRef: "sha256:" + id, byRef: map[string]string{"sha256:" + id: "sha256:" + id}}, want: "sha256:" + id},
		{name: "CRI-O: a repository digest, resolved to the ID", rt: &images{pullRef: digest, byRef: map[string]string{digest: id}}, want: id},
		{name: "a reference the runtime does not resolve: as returned", rt: &images{pullRef: digest}, want: digest},
		{name: "credentials tried in turn", rt: &images{pullRef: digest, byRef: map[string]string{digest: id}},
			creds: []*runtimeapi.AuthConfig{{Username: "wrong"}, {Username: "right"}}, want: id, auths: []string{"wrong", "right"}},
		{name: "no credentials work", rt: &images{pullRef: digest}, creds: []*runtimeapi.AuthConfig{{Username: "wrong"}}, auths: []string{"wrong"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Pull(context.Background(), tc.rt, &runtimeapi.ImageSpec{Image: "127.0.0.1:5443/private/app:stable"}, tc.creds, nil)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("Pull = %q, %v; want %q (error: %v)", got, err, tc.want, tc.wantErr)
			}
			if len(tc.rt.auths) != len(tc.auths) {
				t.Errorf("credentials tried %q, want %q", tc.rt.auths, tc.auths)
			}
		})
	}
}
