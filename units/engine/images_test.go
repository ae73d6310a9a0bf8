package engine

import (
	"context"
	"slices"
	"testing"

	critest "k8s.io/cri-api/pkg/apis/testing"
)

// A pod about to start whose image must be pulled waits for
// network-online.target (at boot, the network); one whose image is here
// starts as soon as the runtime is up. The runtime is asked once an image,
// and never for a pod whose unit already runs this generation.
func TestSyncOrdersPullingPodsAfterTheNetwork(t *testing.T) {
	s, m, _, _ := newSyncer(t)
	images := critest.NewFakeImageService()
	images.SetFakeImages([]string{"localhost/here:1"})
	s.Images = images
	ctx := context.Background()
	write(t, s.Sources[0].Dir, "here.yaml", pod("here", "localhost/here:1"))
	write(t, s.Sources[0].Dir, "also.yaml", pod("also", "localhost/here:1"))
	write(t, s.Sources[0].Dir, "away.yaml", pod("away", "localhost/away:1"))
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	for unit, waits := range map[string]bool{"pod-here.service": false, "pod-also.service": false, "pod-away.service": true} {
		var after, wants []string
		for _, p := range m.Properties[unit] {
			switch p.Name {
			case "After":
				after = p.Value.Value().([]string)
			case "Wants":
				wants = p.Value.Value().([]string)
			}
		}
		if slices.Contains(after, "network-online.target") != waits || slices.Contains(wants, "network-online.target") != waits {
			t.Errorf("%s: After=%v Wants=%v; waits for the network: want %v", unit, after, wants, waits)
		}
	}
	if n := len(images.Called); n != 2 {
		t.Errorf("ImageStatus called %d times for two images: %v", n, images.Called)
	}
	images.Called = nil
	if err := runSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if len(images.Called) != 0 {
		t.Errorf("a sync with every unit running asked the runtime: %v", images.Called)
	}
}
