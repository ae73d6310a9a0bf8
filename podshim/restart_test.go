package podshim

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestBackoffFollowsTheKubelet(t *testing.T) {
	var b Backoff
	now := time.Unix(1_000_000, 0)
	var got []time.Duration
	for range 9 {
		d := b.next(fmt.Sprint("c", len(got)), now)
		got = append(got, d)
		now = now.Add(d + time.Second) // the container crashes a second after each start
	}
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 300 * time.Second, 300 * time.Second, 300 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	// After running for more than 10 minutes, a crash restarts at once again.
	if d := b.next("c-late", now.Add(11*time.Minute)); d != 0 {
		t.Errorf("delay after a long run: %s, want 0", d)
	}
	// The same exit seen again (by a podshim that adopted the pod) keeps
	// its delay.
	b.next("c-x", now.Add(12*time.Minute))
	if d := b.next("c-x", now.Add(13*time.Minute)); d != 10*time.Second {
		t.Errorf("delay for an exit seen twice: %s, want 10s", d)
	}
}

func TestShouldRestart(t *testing.T) {
	for _, tc := range []struct {
		policy corev1.RestartPolicy
		code   int32
		want   bool
	}{
		{corev1.RestartPolicyAlways, 0, true},
		{corev1.RestartPolicyAlways, 1, true},
		{corev1.RestartPolicyOnFailure, 0, false},
		{corev1.RestartPolicyOnFailure, 137, true},
		{corev1.RestartPolicyNever, 1, false},
	} {
		if got := shouldRestart(tc.policy, tc.code); got != tc.want {
			t.Errorf("%s, exit %d: restart=%v, want %v", tc.policy, tc.code, got, tc.want)
		}
	}
}
