package criconfig

import "testing"

// The cases of the kubelet's expansion (k8s.io/kubernetes third_party/forked/golang/expansion).
func TestExpand(t *testing.T) {
	env := map[string]string{"VAR_A": "A", "VAR_B": "B", "EMPTY": ""}
	for in, want := range map[string]string{
		"$(VAR_A)":          "A",
		"___$(VAR_B)___":    "___B___",
		"$(VAR_A)-$(VAR_B)": "A-B",
		"$$(VAR_A)":         "$(VAR_A)",
		"$$$(VAR_A)":        "$A",
		"$(UNDEFINED)":      "$(UNDEFINED)",
		"$(EMPTY)x":         "x",
		"$(VAR_A":           "$(VAR_A",
		"$VAR_A":            "$VAR_A",
		"trailing $":        "trailing $",
		"kill $!; exit 0":   "kill $!; exit 0",
		"no references":     "no references",
		"$()":               "$()",
	} {
		if got := Expand(in, env); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}
