package criconfig

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/podunit/podunit/cni/service"
)

// EnvVar is one variable of a container's environment.
type EnvVar struct{ Name, Value string }

// ServiceEnv are the Service environment variables the kubelet gives a
// container of a pod in namespace, from the node's Services:
//
//   - only Services that have a ClusterIP (neither headless nor
//     ExternalName);
//   - those of the pod's namespace when enableServiceLinks is true (the
//     default), and, whatever it says, the API server's own Service,
//     default/kubernetes (a Service of the pod's namespace of that name
//     takes its place when links are on);
//   - for each, <SVC>_SERVICE_HOST, <SVC>_SERVICE_PORT (its first port),
//     <SVC>_SERVICE_PORT_<NAME> for each named port, and Docker's link
//     variables: <SVC>_PORT (the first port's URL), and for each port
//     <SVC>_PORT_<port>_<PROTO> (its URL) with _PROTO, _PORT and _ADDR;
//     <SVC> is the name upper-cased, '-' and '.' as '_', with a leading
//     '_' when it starts with a digit.
//
// They come in the order of the Services' names; a name two Services
// both make (foo's FOO_PORT_80_TCP_PORT and foo-port-80-tcp's) has the
// value of the later one.
func ServiceEnv(services []service.Service, namespace string, enableServiceLinks bool) []EnvVar {
	chosen := map[string]*service.Service{}
	for i := range services {
		s := &services[i]
		if !s.ClusterIP.IsValid() || s.Type == service.ExternalName {
			continue
		}
		switch {
		case s.Namespace == namespace && enableServiceLinks:
			chosen[s.Name] = s
		case s.Namespace == corev1.NamespaceDefault && s.Name == "kubernetes":
			if _, ok := chosen[s.Name]; !ok {
				chosen[s.Name] = s
			}
		}
	}
	var out []EnvVar
	at := map[string]int{}
	add := func(name, value string) {
		if i, ok := at[name]; ok {
			out[i].Value = value
			return
		}
		at[name] = len(out)
		out = append(out, EnvVar{name, value})
	}
	for _, name := range slices.Sorted(maps.Keys(chosen)) {
		s := chosen[name]
		if len(s.Ports) == 0 {
			continue // the API server refuses a Service with an address and no port
		}
		prefix, ip := envName(s.Name), s.ClusterIP.String()
		add(prefix+"_SERVICE_HOST", ip)
		add(prefix+"_SERVICE_PORT", strconv.Itoa(int(s.Ports[0].Port)))
		for _, p := range s.Ports {
			if p.Name != "" {
				add(prefix+"_SERVICE_PORT_"+envName(p.Name), strconv.Itoa(int(p.Port)))
			}
		}
		for i, p := range s.Ports {
			proto := string(cmp.Or(p.Protocol, service.TCP))
			port := strconv.Itoa(int(p.Port))
			url := fmt.Sprintf("%s://%s:%s", strings.ToLower(proto), ip, port)
			if i == 0 {
				add(prefix+"_PORT", url)
			}
			link := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
			add(link, url)
			add(link+"_PROTO", strings.ToLower(proto))
			add(link+"_PORT", port)
			add(link+"_ADDR", ip)
		}
	}
	return out
}

// envName is a Service's or port's name as a variable's: upper case, '-'
// and '.' as '_', and '_' before a leading digit.
func envName(s string) string {
	s = strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(s))
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		s = "_" + s
	}
	return s
}
