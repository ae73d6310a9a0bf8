package units

import (
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		ns, name, service, slice, cgroupfs string
	}{
		{"default", "static-web", "pod-static-web.service", `podunit-static\x2dweb.slice`, `/podunit.slice/podunit-static\x2dweb.slice`},
		{"kube-system", "etcd", "pod-kube-system_etcd.service", `podunit-kube\x2dsystem_etcd.slice`, `/podunit.slice/podunit-kube\x2dsystem_etcd.slice`},
		{"default", "web.v2", "pod-web.v2.service", `podunit-web.v2.slice`, `/podunit.slice/podunit-web.v2.slice`},
	} {
		if got := ServiceName(tc.ns, tc.name); got != tc.service {
			t.Errorf("ServiceName(%s, %s) = %s, want %s", tc.ns, tc.name, got, tc.service)
		}
		if ns, name, ok := HandoffPod(HandoffName(tc.service)); !ok || ns != tc.ns || name != tc.name {
			t.Errorf("HandoffPod(HandoffName(%s)) = %s, %s, %v", tc.service, ns, name, ok)
		}
		if got := SliceName(tc.ns, tc.name); got != tc.slice {
			t.Errorf("SliceName(%s, %s) = %s, want %s", tc.ns, tc.name, got, tc.slice)
		}
		if got, _ := CgroupParent(CgroupDriverSystemd, tc.ns, tc.name); got != tc.slice {
			t.Errorf("systemd CgroupParent = %s, want %s", got, tc.slice)
		}
		if got, _ := CgroupParent(CgroupDriverCgroupfs, tc.ns, tc.name); got != tc.cgroupfs {
			t.Errorf("cgroupfs CgroupParent = %s, want %s", got, tc.cgroupfs)
		}
	}
	if _, _, ok := HandoffPod(RolloutName("default", "Deployment/web")); ok {
		t.Error("a rollout unit was taken for a pod's hand-off")
	}
	if _, err := CgroupParent("docker", "default", "x"); err == nil {
		t.Error("unknown cgroup driver accepted")
	}
	if err := CheckPodName("default", strings.Repeat("a", 253)); err == nil {
		t.Error("a 253-character name fits no unit name, but was accepted")
	}
	if err := CheckPodName("default", strings.Repeat("a", 200)); err != nil {
		t.Error(err)
	}
}

func TestDescriptionRoundTrip(t *testing.T) {
	u := &Unit{Namespace: "shop", PodName: "web.v2", ConfigHash: "0123456789abcdef0123456789abcdef"}
	ns, name, hash, ok := ParseDescription(u.Description())
	if !ok || ns != "shop" || name != "web.v2" || hash != u.ConfigHash {
		t.Errorf("ParseDescription(%q) = %s %s %s %v", u.Description(), ns, name, hash, ok)
	}
	for _, foreign := range []string{"", "PostgreSQL RDBMS", "Pod default/x", "Pod default/x (podunit config XYZ)"} {
		if _, _, _, ok := ParseDescription(foreign); ok {
			t.Errorf("%q parsed as a podunit description", foreign)
		}
	}
}

// QuoteCommand must produce what systemd's command-line parser turns back
// into the same argv. The expectations follow systemd.service(5): C escapes
// inside double quotes, "%%" for a literal '%', "$$" for a literal '$'.
func TestQuoteCommand(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"/bin/podshim", "--spec", "/run/x.json"}, "/bin/podshim --spec /run/x.json"},
		{[]string{"--cgroup-parent", `podunit-a\x2db.slice`}, `--cgroup-parent "podunit-a\\x2db.slice"`},
		{[]string{"a b", `say "hi"`, "100%", "$HOME", ""}, `"a b" "say \"hi\"" "100%%" "$$HOME" ""`},
		{[]string{"semi;colon", "tab\there"}, `"semi;colon" "tab\there"`},
	} {
		if got := QuoteCommand(tc.argv); got != tc.want {
			t.Errorf("QuoteCommand(%q) = %s, want %s", tc.argv, got, tc.want)
		}
	}
}
