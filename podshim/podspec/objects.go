package podspec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Objects are the ConfigMaps and Secrets a pod uses, as `podunit sync`
// resolved them from the manifests: the pod's data file, next to its spec
// file and, like it, readable by root only.
type Objects struct {
	ConfigMaps []corev1.ConfigMap `json:"configMaps,omitempty"`
	Secrets    []corev1.Secret    `json:"secrets,omitempty"`
}

// Empty reports whether there is nothing in o.
func (o Objects) Empty() bool { return len(o.ConfigMaps) == 0 && len(o.Secrets) == 0 }

// DataPath is the data file of the spec file specPath.
func DataPath(specPath string) string {
	return strings.TrimSuffix(specPath, ".json") + ".data.json"
}

// ReadObjects reads the data file of the spec file specPath; a pod that
// uses no ConfigMap or Secret has none.
func ReadObjects(specPath string) (Objects, error) {
	var o Objects
	b, err := os.ReadFile(DataPath(specPath))
	if errors.Is(err, fs.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("data file %s: %w", DataPath(specPath), err)
	}
	return o, nil
}

// ConfigMap is the pod's ConfigMap called name; nil when it has none.
func (o Objects) ConfigMap(name string) *corev1.ConfigMap {
	for i := range o.ConfigMaps {
		if o.ConfigMaps[i].Name == name {
			return &o.ConfigMaps[i]
		}
	}
	return nil
}

// Secret is the pod's Secret called name; nil when it has none.
func (o Objects) Secret(name string) *corev1.Secret {
	for i := range o.Secrets {
		if o.Secrets[i].Name == name {
			return &o.Secrets[i]
		}
	}
	return nil
}

// configMapData is a ConfigMap's keys and values, text and binary.
func configMapData(cm *corev1.ConfigMap) map[string][]byte {
	out := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		out[k] = v
	}
	return out
}

// Lookup returns the data of the ConfigMap (secret false) or Secret called
// name; ok is false when the pod's data has no such object.
func (o Objects) Lookup(secret bool, name string) (data map[string][]byte, ok bool) {
	if secret {
		if s := o.Secret(name); s != nil {
			return s.Data, true
		}
		return nil, false
	}
	if cm := o.ConfigMap(name); cm != nil {
		return configMapData(cm), true
	}
	return nil, false
}
