package podspec

import (
	"testing"
	"time"
)

// The delays systemd 254+ computes for RestartSec=2s RestartSteps=5
// RestartMaxDelaySec=1min, to the millisecond: podshim must pace its own
// wait on older managers exactly so.
func TestRestartBackoffDelay(t *testing.T) {
	b := DefaultRestartBackoff
	want := []time.Duration{ // n = 1 … 7
		2 * time.Second, 3949 * time.Millisecond, 7796 * time.Millisecond, 15392 * time.Millisecond,
		30390 * time.Millisecond, time.Minute, time.Minute,
	}
	for i, w := range want {
		n := i + 1
		if got := b.Delay(n).Round(time.Millisecond); got != w {
			t.Errorf("Delay(%d) = %s, want %s", n, got, w)
		}
		if got := b.Wait(n).Round(time.Millisecond); got != w-b.Sec {
			t.Errorf("Wait(%d) = %s, want %s", n, got, w-b.Sec)
		}
	}
	if got := b.Delay(0); got != b.Sec {
		t.Errorf("Delay(0) = %s: a first start waits RestartSec", got)
	}
	if got := (RestartBackoff{Sec: 2 * time.Second}).Delay(9); got != 2*time.Second {
		t.Errorf("without steps every restart waits RestartSec, got %s", got)
	}
}
