package generator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Annotations podunit sets on every pod, as the kubelet does on static pods.
const (
	AnnotationConfigHash   = "kubernetes.io/config.hash"
	AnnotationConfigSource = "kubernetes.io/config.source"
	AnnotationManifest     = "podunit.io/manifest"
)

// Pod is one desired pod: the defaulted v1 Pod, where it came from and its
// config hash.
type Pod struct {
	// Source is the manifest file the pod was read from.
	Source string
	// Hash identifies the pod's defaulted content: 32 hex digits of SHA-256
	// over its canonical JSON, before podunit's own annotations are added.
	// Whitespace, comments, key order and restated defaults do not change it.
	Hash string
	// Spec is the defaulted pod with its UID and podunit's annotations.
	Spec *corev1.Pod
}

// Namespace and Name are the pod's identity.
func (p *Pod) Namespace() string { return p.Spec.Namespace }
func (p *Pod) Name() string      { return p.Spec.Name }

// Key is "namespace/name", the pod's identity.
func (p *Pod) Key() string { return p.Spec.Namespace + "/" + p.Spec.Name }

// Decode reads the pods in one manifest: strict decoding, defaulting,
// validation, hashing. file is used in errors and annotations only. Errors are
// *FieldError values joined with errors.Join; on error no pod is returned.
func Decode(file string, data []byte) ([]*Pod, error) {
	docs, err := decodeFile(file, data)
	if err != nil {
		return nil, err
	}
	var (
		pods []*Pod
		errs []error
	)
	for _, d := range docs {
		setDefaults(d.pod)
		if verrs := validate(file, d); len(verrs) > 0 {
			errs = append(errs, verrs...)
			continue
		}
		hash, err := configHash(d.pod)
		if err != nil {
			errs = append(errs, &FieldError{File: file, Line: d.line, Msg: err.Error()})
			continue
		}
		annotate(d.pod, hash, file)
		pods = append(pods, &Pod{Source: file, Hash: hash, Spec: d.pod})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return pods, nil
}

func configHash(pod *corev1.Pod) (string, error) {
	// encoding/json writes struct fields in declaration order and map keys
	// sorted, so equal pods give equal bytes.
	b, err := json.Marshal(pod)
	if err != nil {
		return "", fmt.Errorf("hash pod: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

func annotate(pod *corev1.Pod, hash, file string) {
	if pod.UID == "" {
		pod.UID = types.UID(hash)
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationConfigHash] = hash
	pod.Annotations[AnnotationConfigSource] = "file"
	pod.Annotations[AnnotationManifest] = file
}
