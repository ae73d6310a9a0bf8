package podspec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/podunit/podunit/podshim/atomicfile"
)

// EncodeSpec is the content of a pod's spec file: the defaulted pod as
// indented JSON.
func EncodeSpec(pod *corev1.Pod) ([]byte, error) {
	b, err := json.MarshalIndent(pod, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: encode spec: %w", pod.Namespace, pod.Name, err)
	}
	return append(b, '\n'), nil
}

// WriteSpecFiles writes the files of a pod's spec file path, unless they
// exist (the hash in their names means their content never changes): the
// data file of the ConfigMaps and Secrets it uses, the spec's protobuf twin
// that podshim reads (BinarySpecPath), then the spec file itself, each
// atomically and readable by root only. The spec file comes last: its
// presence means the others are written.
func WriteSpecFiles(path string, pod *corev1.Pod, objects Objects) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	if !objects.Empty() {
		b, err := json.Marshal(objects)
		if err != nil {
			return fmt.Errorf("pod %s/%s: encode data: %w", pod.Namespace, pod.Name, err)
		}
		if err := atomicfile.Write(DataPath(path), b, 0o600); err != nil {
			return fmt.Errorf("write spec: %w", err)
		}
	}
	pb, err := pod.Marshal()
	if err != nil {
		return fmt.Errorf("pod %s/%s: encode spec: %w", pod.Namespace, pod.Name, err)
	}
	if err := atomicfile.Write(BinarySpecPath(path), pb, 0o600); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	b, err := EncodeSpec(pod)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return nil
}
