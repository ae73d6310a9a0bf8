package main

import "testing"

// podshim finds its unit in /proc/self/cgroup on the unified hierarchy
// (Debian 12 and later booted) and on a v1 hybrid one (this test bed).
func TestUnitOfCgroup(t *testing.T) {
	for in, want := range map[string]string{
		"0::/podunit.slice/podunit-web.slice/pod-web.service\n": "pod-web.service",
		"12:pids:/podunit.slice/podunit-web.slice/pod-web.service\n1:name=systemd:/podunit.slice/podunit-web.slice/pod-web.service\n0::/podunit.slice/podunit-web.slice/pod-web.service\n": "pod-web.service",
		"0::/user.slice/user-0.slice/session-1.scope\n": "",
	} {
		got, err := unitOfCgroup([]byte(in))
		if got != want || (err == nil) != (want != "") {
			t.Errorf("unitOfCgroup(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
