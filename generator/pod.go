package generator

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podunit/podunit/podshim/podspec"
)

// Annotations podunit sets on every pod, as the kubelet does on static pods.
const (
	AnnotationConfigHash   = podspec.AnnotationConfigHash
	AnnotationConfigSource = "kubernetes.io/config.source"
	// AnnotationConfigSeen is when podunit first saw the pod (RFC 3339),
	// set by sync and kept across edits; it is not part of the hash.
	AnnotationConfigSeen = "kubernetes.io/config.seen"
	AnnotationManifest   = "podunit.io/manifest"
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
	// Objects are the ConfigMaps and Secrets the pod uses (Resolve); their
	// content is part of Hash.
	Objects podspec.Objects
	// Notices are what podunit accepted in the pod's document without acting
	// on it (scheduler and API-server fields), sorted by line. They are not
	// part of Hash.
	Notices []Notice
	// Rejected says why the pod does not fit this node (Reader.Read sets
	// it); nil when it may run.
	Rejected *Rejection
	// Cron is set on a CronJob's pod template: the pod is not run as it
	// is, but once a schedule, as a Job's pod of its own (Run).
	Cron *CronJob

	lines decoded // where the pod's fields are in Source
}

// Namespace and Name are the pod's identity.
func (p *Pod) Namespace() string { return p.Spec.Namespace }
func (p *Pod) Name() string      { return p.Spec.Name }

// Key is "namespace/name", the pod's identity.
func (p *Pod) Key() string { return p.Spec.Namespace + "/" + p.Spec.Name }

// Manifest is what one file holds: pods, and the ConfigMaps and Secrets
// pods may use.
type Manifest struct {
	Pods       []*Pod
	ConfigMaps []*corev1.ConfigMap
	Secrets    []*corev1.Secret
	Claims     []*corev1.PersistentVolumeClaim
	// Services are the file's Services, in document order, validated on
	// their own (the node's ranges and other files are checked by Read).
	Services []*Service
	// Notices are the file's notices, each once (a workload's replicas
	// share theirs), in file order: skipped documents and accepted fields
	// that have no effect.
	Notices []Notice
}

// DecodeManifest reads one manifest file: strict decoding, defaulting,
// validation and hashing of every document. file is used in errors and
// annotations only. References to ConfigMaps and Secrets are not resolved
// yet (Resolve does that across files). Errors are *FieldError values
// joined with errors.Join; on error nothing is returned.
func DecodeManifest(file string, data []byte) (*Manifest, error) {
	docs, err := decodeFile(file, data)
	if err != nil {
		return nil, err
	}
	var (
		m    Manifest
		errs []error
	)
	seen := map[Notice]bool{}
	note := func(ns []Notice) {
		for _, n := range ns {
			if !seen[n] {
				seen[n] = true
				m.Notices = append(m.Notices, n)
			}
		}
	}
	addPod := func(d decoded) {
		setDefaults(d.pod)
		verrs, vnotes := validate(file, d)
		if len(verrs) > 0 {
			errs = append(errs, verrs...)
			return
		}
		notices := sortNotices(append(slices.Clone(d.notices), vnotes...))
		note(notices)
		hash, err := configHash(d.pod)
		if err != nil {
			errs = append(errs, &FieldError{File: file, Line: d.line, Msg: err.Error()})
			return
		}
		annotate(d.pod, hash, file, notices)
		maps.Copy(d.pod.Annotations, d.after)
		m.Pods = append(m.Pods, &Pod{Source: file, Hash: hash, Spec: d.pod, Notices: notices, Cron: d.cron, lines: d})
	}
	for _, d := range docs {
		if d.kind == "" { // a skipped kind: only its notice
			note(d.notices)
			continue
		}
		if w, ok := asWorkload(d.obj); ok {
			if w.meta.Namespace == "" {
				w.meta.Namespace = corev1.NamespaceDefault
			}
			pods, claims, werrs := workloadPods(file, d, w)
			errs = append(errs, werrs...)
			m.Claims = append(m.Claims, claims...)
			for _, pd := range pods {
				before := len(errs)
				addPod(pd)
				if len(errs) > before {
					break // the replicas share the template: once is enough
				}
			}
			continue
		}
		switch obj := d.obj.(type) {
		case *corev1.ConfigMap:
			if verrs := validateConfigMap(file, d, obj); len(verrs) > 0 {
				errs = append(errs, verrs...)
				continue
			}
			m.ConfigMaps = append(m.ConfigMaps, obj)
			continue
		case *corev1.Secret:
			if verrs := validateSecret(file, d, obj); len(verrs) > 0 {
				errs = append(errs, verrs...)
				continue
			}
			m.Secrets = append(m.Secrets, obj)
			continue
		case *corev1.PersistentVolumeClaim:
			if verrs := validateClaim(file, d, obj); len(verrs) > 0 {
				errs = append(errs, verrs...)
				continue
			}
			m.Claims = append(m.Claims, obj)
			continue
		case *corev1.Service:
			setServiceDefaults(obj)
			verrs, vnotes := validateService(file, d, obj)
			if len(verrs) > 0 {
				errs = append(errs, verrs...)
				continue
			}
			notices := sortNotices(append(slices.Clone(d.notices), vnotes...))
			note(notices)
			m.Services = append(m.Services, &Service{Source: file, Spec: obj, Notices: notices, lines: d})
			continue
		}
		addPod(d)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &m, nil
}

func (m *Manifest) definitions(file string) []Definition {
	var out []Definition
	for _, o := range m.ConfigMaps {
		out = append(out, Definition{file, "ConfigMap", o.Namespace, o.Name})
	}
	for _, o := range m.Secrets {
		out = append(out, Definition{file, "Secret", o.Namespace, o.Name})
	}
	for _, o := range m.Claims {
		out = append(out, Definition{file, "PersistentVolumeClaim", o.Namespace, o.Name})
	}
	return out
}

// Decode reads the pods of one manifest file on its own: the ConfigMaps
// and Secrets they use must be in the same file.
func Decode(file string, data []byte) ([]*Pod, error) {
	m, err := DecodeManifest(file, data)
	if err != nil {
		return nil, err
	}
	objects := NewObjects()
	if err := objects.Add(file, m); err != nil {
		return nil, err
	}
	pods, err := Resolve(m.Pods, objects)
	if err != nil {
		return nil, err
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

// AnnotationNotices lists a pod's notices, one a line ("field: what podunit
// did"), so that the status API, `get -o yaml` and `describe` show them. It
// is not part of the config hash.
const AnnotationNotices = "podunit.io/notices"

func annotate(pod *corev1.Pod, hash, file string, notices []Notice) {
	if pod.UID == "" {
		pod.UID = types.UID(hash)
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationConfigHash] = hash
	pod.Annotations[AnnotationConfigSource] = "file"
	pod.Annotations[AnnotationManifest] = file
	if len(notices) > 0 {
		lines := make([]string, len(notices))
		for i, n := range notices {
			lines[i] = n.Field + ": " + n.Msg
		}
		pod.Annotations[AnnotationNotices] = strings.Join(lines, "\n")
	}
}

// addNotice adds a notice found after decoding (one that depends on the
// node) to the pod and its annotation.
func (p *Pod) addNotice(n Notice) {
	p.Notices = sortNotices(append(p.Notices, n))
	delete(p.Spec.Annotations, AnnotationNotices)
	annotate(p.Spec, p.Hash, p.Source, p.Notices)
}

// sortNotices orders notices by file, line and field, so that every report
// of them reads the same.
func sortNotices(ns []Notice) []Notice {
	slices.SortStableFunc(ns, func(a, b Notice) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Field, b.Field), cmp.Compare(a.Msg, b.Msg))
	})
	return slices.Compact(ns)
}
