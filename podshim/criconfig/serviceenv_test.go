package criconfig

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podunit/podunit/cni/service"
)

// nodeServices are a node's Services of several shapes, in two namespaces.
func nodeServices() []service.Service {
	ip := netip.MustParseAddr
	return []service.Service{
		{Namespace: "shop", Name: "redis-master", Type: service.ClusterIP, ClusterIP: ip("10.96.0.20"),
			Ports: []service.Port{{Protocol: service.TCP, Port: 6379, TargetPort: 6379}}},
		{Namespace: "shop", Name: "web", Type: service.LoadBalancer, ClusterIP: ip("10.96.0.30"),
			Ports: []service.Port{{Name: "http", Protocol: service.TCP, Port: 80, NodePort: 30080},
				{Name: "dns-udp", Protocol: service.UDP, Port: 53}}},
		{Namespace: "shop", Name: "3d.render", Type: service.ClusterIP, ClusterIP: ip("10.96.0.40"),
			Ports: []service.Port{{Port: 9000}}},
		{Namespace: "shop", Name: "db", Type: service.ClusterIP, // headless
			Ports: []service.Port{{Protocol: service.TCP, Port: 3306}}},
		{Namespace: "shop", Name: "mail", Type: service.ExternalName, ExternalName: "mail.example.org"},
		{Namespace: "other", Name: "cache", Type: service.ClusterIP, ClusterIP: ip("10.96.0.50"),
			Ports: []service.Port{{Protocol: service.TCP, Port: 11211}}},
		{Namespace: "default", Name: "kubernetes", Type: service.ClusterIP, ClusterIP: ip("10.96.0.1"),
			Ports: []service.Port{{Name: "https", Protocol: service.TCP, Port: 443}}},
	}
}

// The variables the kubelet's envvars.FromServices makes, for the Services
// its getServiceEnvVarMap chooses.
func TestServiceEnv(t *testing.T) {
	redis := []string{
		"REDIS_MASTER_SERVICE_HOST=10.96.0.20", "REDIS_MASTER_SERVICE_PORT=6379",
		"REDIS_MASTER_PORT=tcp://10.96.0.20:6379", "REDIS_MASTER_PORT_6379_TCP=tcp://10.96.0.20:6379",
		"REDIS_MASTER_PORT_6379_TCP_PROTO=tcp", "REDIS_MASTER_PORT_6379_TCP_PORT=6379", "REDIS_MASTER_PORT_6379_TCP_ADDR=10.96.0.20",
	}
	web := []string{
		"WEB_SERVICE_HOST=10.96.0.30", "WEB_SERVICE_PORT=80", "WEB_SERVICE_PORT_HTTP=80", "WEB_SERVICE_PORT_DNS_UDP=53",
		"WEB_PORT=tcp://10.96.0.30:80",
		"WEB_PORT_80_TCP=tcp://10.96.0.30:80", "WEB_PORT_80_TCP_PROTO=tcp", "WEB_PORT_80_TCP_PORT=80", "WEB_PORT_80_TCP_ADDR=10.96.0.30",
		"WEB_PORT_53_UDP=udp://10.96.0.30:53", "WEB_PORT_53_UDP_PROTO=udp", "WEB_PORT_53_UDP_PORT=53", "WEB_PORT_53_UDP_ADDR=10.96.0.30",
	}
	render := []string{ // a name starting with a digit, a dot, no protocol given
		"_3D_RENDER_SERVICE_HOST=10.96.0.40", "_3D_RENDER_SERVICE_PORT=9000",
		"_3D_RENDER_PORT=tcp://10.96.0.40:9000", "_3D_RENDER_PORT_9000_TCP=tcp://10.96.0.40:9000",
		"_3D_RENDER_PORT_9000_TCP_PROTO=tcp", "_3D_RENDER_PORT_9000_TCP_PORT=9000", "_3D_RENDER_PORT_9000_TCP_ADDR=10.96.0.40",
	}
	kubernetes := []string{
		"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_SERVICE_PORT_HTTPS=443",
		"KUBERNETES_PORT=tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP_PROTO=tcp", "KUBERNETES_PORT_443_TCP_PORT=443", "KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1",
	}
	cache := []string{
		"CACHE_SERVICE_HOST=10.96.0.50", "CACHE_SERVICE_PORT=11211",
		"CACHE_PORT=tcp://10.96.0.50:11211", "CACHE_PORT_11211_TCP=tcp://10.96.0.50:11211",
		"CACHE_PORT_11211_TCP_PROTO=tcp", "CACHE_PORT_11211_TCP_PORT=11211", "CACHE_PORT_11211_TCP_ADDR=10.96.0.50",
	}
	ownKubernetes := service.Service{Namespace: "shop", Name: "kubernetes", Type: service.ClusterIP,
		ClusterIP: netip.MustParseAddr("10.96.0.60"), Ports: []service.Port{{Protocol: service.TCP, Port: 8443}}}
	for _, tc := range []struct {
		name      string
		services  []service.Service
		namespace string
		links     bool
		want      []string
	}{
		{"the namespace's Services with a ClusterIP, and default/kubernetes; no headless, ExternalName or other namespace's",
			nodeServices(), "shop", true, concat(render, kubernetes, redis, web)},
		{"enableServiceLinks: false keeps default/kubernetes only", nodeServices(), "shop", false, kubernetes},
		{"another namespace", nodeServices(), "other", true, concat(cache, kubernetes)},
		{"a pod of namespace default, links off", nodeServices(), "default", false, kubernetes},
		{"no Services", nil, "shop", true, nil},
		{"a Service of the pod's namespace named kubernetes takes default/kubernetes' place",
			append(nodeServices(), ownKubernetes), "shop", true, concat(render, []string{
				"KUBERNETES_SERVICE_HOST=10.96.0.60", "KUBERNETES_SERVICE_PORT=8443",
				"KUBERNETES_PORT=tcp://10.96.0.60:8443", "KUBERNETES_PORT_8443_TCP=tcp://10.96.0.60:8443",
				"KUBERNETES_PORT_8443_TCP_PROTO=tcp", "KUBERNETES_PORT_8443_TCP_PORT=8443", "KUBERNETES_PORT_8443_TCP_ADDR=10.96.0.60",
			}, redis, web)},
		{"... but not with links off", append(nodeServices(), ownKubernetes), "shop", false, kubernetes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range ServiceEnv(tc.services, tc.namespace, tc.links) {
				got = append(got, e.Name+"="+e.Value)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func concat(lists ...[]string) []string { return slices.Concat(lists...) }

// A container's environment with the Service variables, as the kubelet's
// makeEnvironmentVariables: its own env and envFrom win, its env may refer
// to Service variables as $(VAR), and so may its command and arguments.
func TestServiceEnvInContainerEnv(t *testing.T) {
	for _, tc := range []struct {
		name  string
		links *bool
		env   []corev1.EnvVar
		args  []string
		want  []string // variables of the config, in order
		args0 string
	}{
		{
			name: "declared first, then the Service variables none of them names",
			env: []corev1.EnvVar{
				{Name: "REDIS_MASTER_SERVICE_PORT", Value: "7000"},
				{Name: "GET_HOSTS_FROM", Value: "env"},
				{Name: "REDIS_URL", Value: "redis://$(REDIS_MASTER_SERVICE_HOST):$(REDIS_MASTER_SERVICE_PORT)"},
			},
			args: []string{"connect $(REDIS_MASTER_SERVICE_HOST) $(REDIS_MASTER_PORT_6379_TCP_PORT) $(CACHE_SERVICE_HOST)"},
			want: []string{
				"REDIS_MASTER_SERVICE_PORT=7000", "GET_HOSTS_FROM=env", "REDIS_URL=redis://10.96.0.20:7000",
				"REDIS_MASTER_SERVICE_HOST=10.96.0.20", "REDIS_MASTER_PORT=tcp://10.96.0.20:6379",
				"REDIS_MASTER_PORT_6379_TCP=tcp://10.96.0.20:6379", "REDIS_MASTER_PORT_6379_TCP_PROTO=tcp",
				"REDIS_MASTER_PORT_6379_TCP_PORT=6379", "REDIS_MASTER_PORT_6379_TCP_ADDR=10.96.0.20",
			},
			args0: "connect 10.96.0.20 6379 $(CACHE_SERVICE_HOST)",
		},
		{
			name:  "enableServiceLinks: false",
			links: ptr(false),
			env:   []corev1.EnvVar{{Name: "HOST", Value: "$(REDIS_MASTER_SERVICE_HOST)"}},
			args:  []string{"$(REDIS_MASTER_SERVICE_HOST)"},
			want:  []string{"HOST=$(REDIS_MASTER_SERVICE_HOST)"},
			args0: "$(REDIS_MASTER_SERVICE_HOST)",
		},
		{
			name:  "enableServiceLinks: true",
			links: ptr(true),
			env:   []corev1.EnvVar{{Name: "HOST", Value: "$(REDIS_MASTER_SERVICE_HOST)"}},
			args:  []string{"$(REDIS_MASTER_SERVICE_PORT)"},
			want: []string{"HOST=10.96.0.20", "REDIS_MASTER_SERVICE_HOST=10.96.0.20", "REDIS_MASTER_SERVICE_PORT=6379",
				"REDIS_MASTER_PORT=tcp://10.96.0.20:6379", "REDIS_MASTER_PORT_6379_TCP=tcp://10.96.0.20:6379",
				"REDIS_MASTER_PORT_6379_TCP_PROTO=tcp", "REDIS_MASTER_PORT_6379_TCP_PORT=6379", "REDIS_MASTER_PORT_6379_TCP_ADDR=10.96.0.20"},
			args0: "6379",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "frontend", Namespace: "shop", UID: "uid-2"},
				Spec: corev1.PodSpec{EnableServiceLinks: tc.links, Containers: []corev1.Container{{
					Name: "php", Image: "busybox:1", Command: []string{"sh", "-c"}, Args: tc.args, Env: tc.env}}},
			}
			in := testInput(pod)
			in.Services = nodeServices()[:1] // redis-master only, and cache of another namespace
			in.Services = append(in.Services, nodeServices()[5])
			c, err := Container(in, &pod.Spec.Containers[0], "busybox:1", 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, kv := range c.Envs {
				got = append(got, kv.Key+"="+string(kv.Value))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("env\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if c.Args[0] != tc.args0 {
				t.Errorf("args %q, want %q", c.Args[0], tc.args0)
			}
		})
	}
}

// envFrom wins over a Service variable too, and a variable of envFrom is
// what an env entry's $(VAR) sees first.
func TestEnvFromWinsOverServiceEnv(t *testing.T) {
	pod := testPod()
	c := &pod.Spec.Containers[0]
	c.Env = []corev1.EnvVar{{Name: "ADDR", Value: "$(REDIS_MASTER_SERVICE_HOST)"}}
	c.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
	in := testInput(pod)
	in.Objects.ConfigMaps = []corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "shop"},
		Data: map[string]string{"REDIS_MASTER_SERVICE_HOST": "redis.local"}}}
	in.Services = nodeServices()[:1]
	_, env, err := in.containerEnv(c)
	if err != nil {
		t.Fatal(err)
	}
	if env["REDIS_MASTER_SERVICE_HOST"] != "redis.local" || env["ADDR"] != "redis.local" || env["REDIS_MASTER_SERVICE_PORT"] != "6379" {
		t.Errorf("env %v", env)
	}
}
