package podspec

import (
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// DockerAuth is one registry's entry in a docker config (auths.<registry>).
type DockerAuth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"` // base64 of username:password
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// DockerConfig reads the registry credentials of an image pull Secret: a
// kubernetes.io/dockerconfigjson Secret's .dockerconfigjson ({"auths":
// {registry: auth}}) or a kubernetes.io/dockercfg Secret's .dockercfg
// ({registry: auth}), as `kubectl create secret docker-registry` and
// `docker login` write them.
func DockerConfig(s *corev1.Secret) (map[string]DockerAuth, error) {
	if b, ok := s.Data[corev1.DockerConfigJsonKey]; ok {
		var cfg struct {
			Auths map[string]DockerAuth `json:"auths"`
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", corev1.DockerConfigJsonKey, err)
		}
		return cfg.Auths, nil
	}
	if b, ok := s.Data[corev1.DockerConfigKey]; ok {
		var auths map[string]DockerAuth
		if err := json.Unmarshal(b, &auths); err != nil {
			return nil, fmt.Errorf("%s: %w", corev1.DockerConfigKey, err)
		}
		return auths, nil
	}
	return nil, errors.New("no .dockerconfigjson or .dockercfg key: make it with kubectl create secret docker-registry")
}
