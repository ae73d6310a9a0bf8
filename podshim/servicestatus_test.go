package podshim

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// A Service sees a pod through its state: its IP, and its Ready
// condition, not ContainersReady nor a container's readiness.
func TestServiceStatus(t *testing.T) {
	st := &State{Status: corev1.PodStatus{PodIP: "10.88.0.7", Conditions: []corev1.PodCondition{
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse},
	}}}
	if got := st.ServiceStatus(); got.IP.String() != "10.88.0.7" || got.Ready || got.Terminating {
		t.Errorf("unready: %+v", got)
	}
	st.Status.Conditions[1].Status = corev1.ConditionTrue
	if got := st.ServiceStatus(); !got.Ready {
		t.Errorf("ready: %+v", got)
	}
	if got := (&State{}).ServiceStatus(); got.IP.IsValid() || got.Ready {
		t.Errorf("a pod with no address yet: %+v", got)
	}
}
