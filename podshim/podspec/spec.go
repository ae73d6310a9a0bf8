package podspec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod's spec file (namespace_name-hash.json, named in its unit's
// ExecStart) is the defaulted pod as JSON, for people and for podunit's own
// commands. `podunit sync` writes the same pod beside it in Kubernetes'
// protobuf encoding (namespace_name-hash.pb), and podshim reads that one:
// k8s.io/api decodes it with generated code, where encoding/json builds and
// keeps a table of every struct type of a Pod, 0.3 MB in a process that runs
// once per pod (docs/benchmarks.md).

// BinarySpecPath is the protobuf twin of the spec file specPath.
func BinarySpecPath(specPath string) string {
	return strings.TrimSuffix(specPath, ".json") + ".pb"
}

// ReadSpec reads the pod of the spec file specPath, from its protobuf twin,
// or from the JSON where there is none (a spec written by a podunit from
// before the twin).
func ReadSpec(specPath string) (*corev1.Pod, error) {
	var pod corev1.Pod
	b, err := os.ReadFile(BinarySpecPath(specPath))
	if err == nil {
		if err := pod.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("spec %s: %w", BinarySpecPath(specPath), err)
		}
		// Protobuf leaves the type to an envelope it does not have here.
		pod.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
		return &pod, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if b, err = os.ReadFile(specPath); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &pod); err != nil {
		return nil, fmt.Errorf("spec %s: %w", specPath, err)
	}
	return &pod, nil
}

// SpecFileOf is the spec file that a file in the spec directory belongs to:
// itself, or the spec file whose data file or protobuf twin it is; ok is
// false for anything else.
func SpecFileOf(path string) (spec string, ok bool) {
	for _, suffix := range []string{".data.json", ".pb"} {
		if base, ok := strings.CutSuffix(path, suffix); ok {
			return base + ".json", true
		}
	}
	return path, strings.HasSuffix(path, ".json")
}
