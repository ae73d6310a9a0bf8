package generator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/podunit/podunit/podshim/podspec"
)

// Objects are the ConfigMaps and Secrets of all manifests, by namespace and
// name, with the file each came from.
type Objects struct {
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	claims     map[string]*corev1.PersistentVolumeClaim
	sources    map[string]string // "ConfigMap ns/name" → file
	// fallback holds objects used only where these have none of the name.
	fallback *Objects
}

func (o *Objects) configMap(key string) (*corev1.ConfigMap, bool) {
	if cm, ok := o.configMaps[key]; ok || o.fallback == nil {
		return cm, ok
	}
	return o.fallback.configMap(key)
}

func (o *Objects) secret(key string) (*corev1.Secret, bool) {
	if s, ok := o.secrets[key]; ok || o.fallback == nil {
		return s, ok
	}
	return o.fallback.secret(key)
}

// likelyClaims are the claims of namespace ns that a claimName that is
// not found was likely meant to name: those its own file defines (the
// file then defines its claims, which podman's YAML never does) and those
// a typo away (an edit distance of 2 or less). Sorted.
func (o *Objects) likelyClaims(ns, name, file string) []string {
	seen := map[string]bool{}
	for ; o != nil; o = o.fallback {
		for key := range o.claims {
			n, claim, _ := strings.Cut(key, "/")
			if n == ns && (o.sources["PersistentVolumeClaim "+key] == file || editDistance(claim, name) <= 2) {
				seen[claim] = true
			}
		}
	}
	return sortedNames(seen)
}

func (o *Objects) claim(key string) (*corev1.PersistentVolumeClaim, bool) {
	if c, ok := o.claims[key]; ok || o.fallback == nil {
		return c, ok
	}
	return o.fallback.claim(key)
}

// NewObjects is an empty set of objects.
func NewObjects() *Objects {
	return &Objects{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		claims: map[string]*corev1.PersistentVolumeClaim{}, sources: map[string]string{}}
}

// Add takes the ConfigMaps and Secrets of one file. One already defined by
// an earlier file keeps its definition; each such conflict is an error.
func (o *Objects) Add(file string, m *Manifest) error {
	var errs []error
	conflict := func(kind, ns, name string) bool {
		key := fmt.Sprintf("%s %s/%s", kind, ns, name)
		if first, dup := o.sources[key]; dup {
			errs = append(errs, &FieldError{File: file, Field: "metadata.name",
				Msg: fmt.Sprintf("%s is already defined in %s, which keeps it; this definition is not used", key, first)})
			return true
		}
		o.sources[key] = file
		return false
	}
	for _, cm := range m.ConfigMaps {
		if !conflict("ConfigMap", cm.Namespace, cm.Name) {
			o.configMaps[cm.Namespace+"/"+cm.Name] = cm
		}
	}
	for _, s := range m.Secrets {
		if !conflict("Secret", s.Namespace, s.Name) {
			o.secrets[s.Namespace+"/"+s.Name] = s
		}
	}
	for _, c := range m.Claims {
		if !conflict("PersistentVolumeClaim", c.Namespace, c.Name) {
			o.claims[c.Namespace+"/"+c.Name] = c
		}
	}
	return errors.Join(errs...)
}

// reference is one use of a ConfigMap or Secret by a pod.
type reference struct {
	path     string // the field that refers, e.g. spec.containers[0].envFrom[1].configMapRef
	secret   bool
	name     string
	key      string // "" for the whole object
	optional bool
}

func (r reference) kind() string {
	if r.secret {
		return "Secret"
	}
	return "ConfigMap"
}

func isOptional(b *bool) bool { return b != nil && *b }

// references lists every ConfigMap and Secret the pod uses.
func references(pod *corev1.Pod) []reference {
	var refs []reference
	containers := func(list []corev1.Container, field string) {
		for i, c := range list {
			p := fmt.Sprintf("spec.%s[%d]", field, i)
			for j, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				ep := fmt.Sprintf("%s.env[%d].valueFrom", p, j)
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					refs = append(refs, reference{ep + ".configMapKeyRef", false, r.Name, r.Key, isOptional(r.Optional)})
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					refs = append(refs, reference{ep + ".secretKeyRef", true, r.Name, r.Key, isOptional(r.Optional)})
				}
			}
			for j, e := range c.EnvFrom {
				ep := fmt.Sprintf("%s.envFrom[%d]", p, j)
				if r := e.ConfigMapRef; r != nil {
					refs = append(refs, reference{ep + ".configMapRef", false, r.Name, "", isOptional(r.Optional)})
				}
				if r := e.SecretRef; r != nil {
					refs = append(refs, reference{ep + ".secretRef", true, r.Name, "", isOptional(r.Optional)})
				}
			}
		}
	}
	containers(pod.Spec.InitContainers, "initContainers")
	containers(pod.Spec.Containers, "containers")
	items := func(p string, secret bool, name string, list []corev1.KeyToPath, optional bool) {
		refs = append(refs, reference{p, secret, name, "", optional})
		for k, it := range list {
			refs = append(refs, reference{fmt.Sprintf("%s.items[%d].key", p, k), secret, name, it.Key, optional})
		}
	}
	for i, s := range pod.Spec.ImagePullSecrets {
		// The kubelet goes on without a missing one; podunit says so at once.
		refs = append(refs, reference{fmt.Sprintf("spec.imagePullSecrets[%d].name", i), true, s.Name, "", false})
	}
	for i, v := range pod.Spec.Volumes {
		p := fmt.Sprintf("spec.volumes[%d]", i)
		if cm := v.ConfigMap; cm != nil {
			items(p+".configMap", false, cm.Name, cm.Items, isOptional(cm.Optional))
		}
		if s := v.Secret; s != nil {
			items(p+".secret", true, s.SecretName, s.Items, isOptional(s.Optional))
		}
		if pr := v.Projected; pr != nil {
			for j, src := range pr.Sources {
				sp := fmt.Sprintf("%s.projected.sources[%d]", p, j)
				if cm := src.ConfigMap; cm != nil {
					// Every API server publishes kube-root-ca.crt in every
					// namespace, and its service account token volumes use it:
					// here it is there only when a manifest defines it.
					optional := isOptional(cm.Optional) || cm.Name == kubeRootCA
					items(sp+".configMap", false, cm.Name, cm.Items, optional)
				}
				if s := src.Secret; s != nil {
					items(sp+".secret", true, s.Name, s.Items, isOptional(s.Optional))
				}
			}
		}
	}
	return refs
}

// kubeRootCA is the ConfigMap of the cluster's CA that an API server
// publishes in every namespace.
const kubeRootCA = "kube-root-ca.crt"

// Resolve gives each pod the ConfigMaps and Secrets it uses and folds their
// content into its hash, so that a change to one replaces exactly the pods
// that use it. A pod that refers to a missing object or key (not optional)
// cannot start: it is left out of the returned pods, with an error that
// names the field. A claim that no manifest defines is a local volume of
// that name, as podman's named volume is: the pod gets a notice.
func Resolve(pods []*Pod, objects *Objects) ([]*Pod, error) {
	ok, _, err := resolvePods(pods, objects, false)
	return ok, err
}

// resolvePods is Resolve, returning the notices it added to the pods; with
// strict, each is an error instead and its pod is left out.
func resolvePods(pods []*Pod, objects *Objects, strict bool) ([]*Pod, []Notice, error) {
	var (
		ok      []*Pod
		notices []Notice
		errs    []error
	)
	for _, p := range pods {
		ns, err := p.resolve(objects, strict)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		notices = append(notices, ns...)
		ok = append(ok, p)
	}
	return ok, notices, errors.Join(errs...)
}

func (p *Pod) resolve(objects *Objects, strict bool) ([]Notice, error) {
	ns := p.Namespace()
	var (
		errs    []error
		notices []Notice
	)
	// A claim's volume is a host directory: only its existence matters,
	// not its content, which is not part of the hash. podman's YAML names
	// its named volumes as claims without defining them (`podman kube
	// play` makes a missing one): here too such a claim is a directory
	// of its name, the same a defined claim would have. Not when the
	// pod's own file defines claims (podman's never does) or a defined
	// claim is a typo away: a typo would give the pod a new, empty volume.
	for i, v := range p.Spec.Spec.Volumes {
		if c := v.PersistentVolumeClaim; c != nil {
			if _, ok := objects.claim(ns + "/" + c.ClaimName); !ok {
				path := fmt.Sprintf("spec.volumes[%d].persistentVolumeClaim.claimName", i)
				if likely := objects.likelyClaims(ns, c.ClaimName, p.Source); len(likely) > 0 {
					errs = append(errs, &FieldError{File: p.Source, Line: p.lines.lineOf(path), Field: p.lines.field(path),
						Msg: fmt.Sprintf("PersistentVolumeClaim %q not found in namespace %q; did you mean %s? Define it, or correct the name (a claim no manifest defines is a local volume, as podman's named volume is, only when its file defines no claim and none is a typo away)", c.ClaimName, ns, quotedList(likely))})
					continue
				}
				n := Notice{File: p.Source, Line: p.lines.lineOf(path), Field: p.lines.field(path),
					Msg: fmt.Sprintf("no PersistentVolumeClaim %q in namespace %q in the manifests: used as a local volume, as podman's named volume is: the claim's directory /var/lib/podunit/volumes/%s/%s, made on first use and kept, with the default access mode (ReadWriteOnce); define the claim to say so", c.ClaimName, ns, ns, c.ClaimName)}
				if strict {
					errs = append(errs, n.AsError())
					continue
				}
				notices = append(notices, n)
			}
		}
	}
	for _, n := range notices {
		p.addNotice(n)
	}
	refs := references(p.Spec)
	if len(refs) == 0 {
		return notices, errors.Join(errs...)
	}
	configMaps := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	for _, r := range refs {
		var (
			data  map[string]bool
			found bool
		)
		if r.secret {
			var s *corev1.Secret
			if s, found = objects.secret(ns + "/" + r.name); found {
				secrets[r.name] = s
				data = keysOf(s.Data, nil)
			}
		} else {
			var cm *corev1.ConfigMap
			if cm, found = objects.configMap(ns + "/" + r.name); found {
				configMaps[r.name] = cm
				data = keysOf(cm.BinaryData, cm.Data)
			}
		}
		switch {
		case r.optional:
		case !found:
			errs = append(errs, &FieldError{File: p.Source, Line: p.lines.lineOf(r.path), Field: p.lines.field(r.path),
				Msg: fmt.Sprintf("%s %q not found in namespace %q: define it in a manifest, or set optional: true", r.kind(), r.name, ns)})
		case r.key != "" && !data[r.key]:
			errs = append(errs, &FieldError{File: p.Source, Line: p.lines.lineOf(r.path), Field: p.lines.field(r.path),
				Msg: fmt.Sprintf("%s %q has no key %q (it has: %v)", r.kind(), r.name, r.key, sortedKeys(data))})
		}
	}
	for i, ps := range p.Spec.Spec.ImagePullSecrets {
		if s := secrets[ps.Name]; s != nil {
			if _, err := podspec.DockerConfig(s); err != nil {
				path := fmt.Sprintf("spec.imagePullSecrets[%d].name", i)
				errs = append(errs, &FieldError{File: p.Source, Line: p.lines.lineOf(path), Field: p.lines.field(path),
					Msg: fmt.Sprintf("Secret %q: %v", ps.Name, err)})
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.Objects = podspec.Objects{}
	for _, name := range sortedNames(configMaps) {
		p.Objects.ConfigMaps = append(p.Objects.ConfigMaps, *configMaps[name])
	}
	for _, name := range sortedNames(secrets) {
		p.Objects.Secrets = append(p.Objects.Secrets, *secrets[name])
	}
	if p.Objects.Empty() {
		return notices, nil
	}
	// The hash covers the pod and the objects' content.
	b, err := json.Marshal(p.Objects)
	if err != nil {
		return nil, &FieldError{File: p.Source, Msg: err.Error()}
	}
	sum := sha256.Sum256(append([]byte(p.Hash), b...))
	hash := hex.EncodeToString(sum[:16])
	if p.Spec.UID == types.UID(p.Hash) {
		p.Spec.UID = types.UID(hash)
	}
	p.Hash = hash
	p.Spec.Annotations[AnnotationConfigHash] = hash
	return notices, nil
}

func keysOf[V any](a map[string]V, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// validateConfigMap checks a ConfigMap as the API server does and defaults
// its namespace.
func validateConfigMap(file string, d decoded, cm *corev1.ConfigMap) []error {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{File: file, Line: d.lineOf(path), Field: path, Msg: fmt.Sprintf(format, args...)})
	}
	validateObjectMeta(&cm.ObjectMeta, fail)
	for k := range cm.Data {
		validateKey("data", k, fail)
		if _, dup := cm.BinaryData[k]; dup {
			fail(fmt.Sprintf("binaryData[%s]", k), "key %q is also in data", k)
		}
	}
	for k := range cm.BinaryData {
		validateKey("binaryData", k, fail)
	}
	return errs
}

// validateSecret checks a Secret, merges stringData into data as the API
// server does, and defaults its namespace and type.
func validateSecret(file string, d decoded, s *corev1.Secret) []error {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{File: file, Line: d.lineOf(path), Field: path, Msg: fmt.Sprintf(format, args...)})
	}
	validateObjectMeta(&s.ObjectMeta, fail)
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	for k, v := range s.StringData {
		validateKey("stringData", k, fail)
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
	for k := range s.Data {
		validateKey("data", k, fail)
	}
	return errs
}

// validateClaim checks a PersistentVolumeClaim and defaults its namespace.
func validateClaim(file string, d decoded, c *corev1.PersistentVolumeClaim) []error {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{File: file, Line: d.lineOf(path), Field: path, Msg: fmt.Sprintf(format, args...)})
	}
	validateObjectMeta(&c.ObjectMeta, fail)
	for _, e := range claimSpecErrors(c) {
		fail("spec."+e.field, "%s", e.msg)
	}
	return errs
}

type claimError struct{ field, msg string }

// claimSpecErrors checks a claim's spec (a PersistentVolumeClaim's or a
// StatefulSet's claim template's); fields are relative to the spec.
func claimSpecErrors(c *corev1.PersistentVolumeClaim) []claimError {
	var errs []claimError
	modes := []string{"ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany", "ReadWriteMany"}
	for i, m := range c.Spec.AccessModes {
		switch m {
		case corev1.ReadWriteOnce, corev1.ReadWriteOncePod, corev1.ReadOnlyMany, corev1.ReadWriteMany:
		default:
			errs = append(errs, claimError{fmt.Sprintf("accessModes[%d]", i), fmt.Sprintf("%q: must be %s%s", m, orList(modes), caseHint(string(m), modes...))})
		}
	}
	for name := range c.Spec.Resources.Requests {
		if name != corev1.ResourceStorage {
			errs = append(errs, claimError{fmt.Sprintf("resources.requests[%s]", name), "only storage"})
		}
	}
	if m := c.Spec.VolumeMode; m != nil && *m != corev1.PersistentVolumeFilesystem {
		errs = append(errs, claimError{"volumeMode", fmt.Sprintf("%q: only Filesystem", *m)})
	}
	return errs
}

func validateObjectMeta(m *metav1.ObjectMeta, fail failFunc) {
	if m.Namespace == "" {
		m.Namespace = corev1.NamespaceDefault
	}
	if m.Name == "" {
		fail("metadata.name", "required")
	}
	for _, msg := range validation.IsDNS1123Subdomain(m.Name) {
		if m.Name != "" {
			fail("metadata.name", "%q: %s", m.Name, msg)
		}
	}
	for _, msg := range validation.IsDNS1123Label(m.Namespace) {
		fail("metadata.namespace", "%q: %s", m.Namespace, msg)
	}
}

func validateKey(field, k string, fail failFunc) {
	for _, msg := range validation.IsConfigMapKey(k) {
		fail(fmt.Sprintf("%s[%s]", field, k), "%q: %s", k, msg)
	}
}

// quotedList is names quoted and joined, the first five and how many more.
func quotedList(names []string) string {
	const most = 5
	q := make([]string, 0, most)
	for i, n := range names {
		if i == most {
			break
		}
		q = append(q, strconv.Quote(n))
	}
	s := strings.Join(q, ", ")
	if len(names) > most {
		s += fmt.Sprintf(" and %d more", len(names)-most)
	}
	return s
}
