package podshim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podunit/podunit/podshim/podspec"
)

func TestReadSpecErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "default_web-1.json")
	if _, err := podspec.ReadSpec(spec); !os.IsNotExist(err) {
		t.Fatalf("no spec file: %v", err)
	}
	os.WriteFile(spec, []byte(`{"metadata": {"name": "web"`), 0o600)
	if _, err := podspec.ReadSpec(spec); err == nil || !strings.Contains(err.Error(), spec) {
		t.Errorf("truncated JSON spec: %v", err)
	}
	os.WriteFile(spec, []byte(`{"metadata": {"name": "web"}}`), 0o600)
	if pod, err := podspec.ReadSpec(spec); err != nil || pod.Name != "web" {
		t.Errorf("JSON spec without its twin: %v, %v", pod, err)
	}
	// The twin wins when there is one, and a damaged one is an error.
	os.WriteFile(podspec.BinarySpecPath(spec), []byte{0x0a, 0x7f}, 0o600)
	if _, err := podspec.ReadSpec(spec); err == nil || !strings.Contains(err.Error(), podspec.BinarySpecPath(spec)) {
		t.Errorf("damaged protobuf twin: %v", err)
	}
}
