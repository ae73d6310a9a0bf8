package podspec

import "testing"

func TestSpecFileOf(t *testing.T) {
	for path, want := range map[string]string{
		"/s/default_web-1.json":      "/s/default_web-1.json",
		"/s/default_web-1.pb":        "/s/default_web-1.json",
		"/s/default_web-1.data.json": "/s/default_web-1.json",
		"/s/default_web-1.json.tmp":  "",
		"/s/README":                  "",
	} {
		got, ok := SpecFileOf(path)
		if ok != (want != "") || ok && got != want {
			t.Errorf("SpecFileOf(%s) = %s, %v; want %q", path, got, ok, want)
		}
	}
}

// What sync writes into ExecStart, podshim parses back.
func TestArgsRoundTrip(t *testing.T) {
	in := Args{Spec: "/run/podunit/specs/default_web-1.json", CRIEndpoint: "unix:///run/containerd/containerd.sock",
		CgroupParent: "podunit-web.slice", LogMaxSize: 16384, LogMaxFiles: 2, ResolvConf: "/etc/resolv.conf",
		FinishedRecord: "/var/lib/podunit/jobs/default_once", RestartBackoff: true,
		Pins: "/var/lib/podunit/rollouts/default_web.pins.json", AuthFile: "/etc/podunit/auth.json", CredentialProviders: "/run/podunit/credential-providers.json", PullOfflineFail: true}
	argv := in.Argv("/usr/libexec/podunit/podshim")
	out := Args{LogMaxSize: 10 << 20, LogMaxFiles: 5, StateDir: "/run/podunit/pods"}
	if err := out.Flags("podshim").Parse(argv[1:]); err != nil {
		t.Fatal(err)
	}
	in.StateDir = "/run/podunit/pods" // a default, kept
	if out != in {
		t.Errorf("parsed %+v from %q, want %+v", out, argv, in)
	}
}
