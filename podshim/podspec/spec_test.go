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
