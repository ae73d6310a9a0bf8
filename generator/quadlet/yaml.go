package quadlet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// document is one YAML document of a unit's files, kept as a node tree so
// that what the import does not change (comments, order, style) stays.
type document struct {
	root *yaml.Node // the document, with its head and foot comments
	node *yaml.Node // its top mapping
	from string     // the file it came from
}

// parseDocuments splits a YAML file into its documents (empty ones and
// "---" alone skipped); each must be a mapping.
func parseDocuments(path string, data []byte) ([]document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []document
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue
		}
		top := n.Content[0]
		if top.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: a document must be a Kubernetes object (a mapping)", path, top.Line)
		}
		docs = append(docs, document{root: &n, node: top, from: path})
	}
}

// str is a scalar field's value, "" when absent.
func (d document) str(path ...string) string {
	n := lookup(d.node, path...)
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func (d document) kind() string { return d.str("kind") }

// lookup follows mapping keys; nil when one is missing.
func lookup(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// ensure returns the mapping's value for key, adding an empty one of kind
// when it is missing or null.
func ensure(n *yaml.Node, key string, kind yaml.Kind) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := n.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				*v = yaml.Node{Kind: kind}
			}
			return v
		}
	}
	v := &yaml.Node{Kind: kind}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
	return v
}

// setScalar sets a mapping's key to a scalar: a string (quoted when YAML
// would read it otherwise) or, with tag "!!int" or "!!bool", that type.
func setScalar(n *yaml.Node, key, value, tag string) {
	v := ensure(n, key, yaml.ScalarNode)
	*v = yaml.Node{Kind: yaml.ScalarNode, Value: value, Tag: tag}
	if tag == "!!str" {
		v.Style = 0
		v.Tag = ""
		var probe any
		if yaml.Unmarshal([]byte(value), &probe) != nil {
			v.Style = yaml.DoubleQuotedStyle
		} else if _, isString := probe.(string); !isString || value == "" {
			v.Style = yaml.DoubleQuotedStyle
		}
	}
}

// podTemplate is where a document keeps its pods' metadata and spec: the
// document itself for a Pod, spec.template for the workloads (Deployment,
// DaemonSet, Job, …), spec.jobTemplate.spec.template for a CronJob; nil
// for the other kinds.
func podTemplate(d document) (meta, spec *yaml.Node) {
	var t *yaml.Node
	switch d.kind() {
	case "Pod":
		t = d.node
	case "CronJob":
		t = lookup(d.node, "spec", "jobTemplate", "spec", "template")
	case "Deployment", "DaemonSet", "ReplicaSet", "ReplicationController", "StatefulSet", "Job":
		t = lookup(d.node, "spec", "template")
	}
	if t == nil || t.Kind != yaml.MappingNode {
		return nil, nil
	}
	spec = lookup(t, "spec")
	if spec == nil || spec.Kind != yaml.MappingNode {
		return nil, nil
	}
	return ensure(t, "metadata", yaml.MappingNode), spec
}

// annotate sets an annotation on a pod template's metadata.
func annotate(meta *yaml.Node, key, value string) {
	setScalar(ensure(meta, "annotations", yaml.MappingNode), key, value, "!!str")
}

// annotation reads one.
func annotation(meta *yaml.Node, key string) (string, bool) {
	n := lookup(meta, "annotations", key)
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", false
	}
	return n.Value, true
}

// port is a PublishPort= mapping of one port.
type port struct {
	hostIP              string
	hostPort, container int
	protocol            string // TCP, UDP, SCTP
}

func (p port) String() string {
	s := fmt.Sprintf("%d/%s", p.container, p.protocol)
	if p.hostIP != "" {
		return fmt.Sprintf("%s:%d -> %s", p.hostIP, p.hostPort, s)
	}
	return fmt.Sprintf("%d -> %s", p.hostPort, s)
}

// published records the container ports (of a pod spec, by number and
// protocol) an earlier PublishPort= of the unit published.
type published map[publishedKey]bool

type publishedKey struct {
	spec      *yaml.Node
	container int
	protocol  string
}

// publishPort maps a pod's container port to a host port as podman kube
// play's --publish does: every PublishPort= is published, and the YAML's
// own hostPort for a container port one publishes is not. The first
// PublishPort= for a container port takes the YAML's entry of it (in the
// container that declares it; in the first container, added, when none
// does: the pod shares one network), replacing its hostPort and hostIP;
// the YAML's other entries of that port lose theirs; each further
// PublishPort= for the port adds an entry of its own beside the first. It
// says which container it was.
func publishPort(spec *yaml.Node, p port, done published) (string, error) {
	containers := lookup(spec, "containers")
	if containers == nil || containers.Kind != yaml.SequenceNode || len(containers.Content) == 0 {
		return "", errors.New("the pod has no containers")
	}
	key := publishedKey{spec, p.container, p.protocol}
	set := func(entry *yaml.Node) {
		setScalar(entry, "hostPort", strconv.Itoa(p.hostPort), "!!int")
		if p.hostIP != "" {
			setScalar(entry, "hostIP", p.hostIP, "!!str")
		} else {
			remove(entry, "hostIP") // all addresses, as podman binds it
		}
	}
	newEntry := func() *yaml.Node {
		entry := &yaml.Node{Kind: yaml.MappingNode}
		setScalar(entry, "containerPort", strconv.Itoa(p.container), "!!int")
		if p.protocol != "TCP" {
			setScalar(entry, "protocol", p.protocol, "!!str")
		}
		set(entry)
		return entry
	}
	var owner *yaml.Node // the container of the port's first entry
	for _, c := range containers.Content {
		ports := lookup(c, "ports")
		if ports == nil || ports.Kind != yaml.SequenceNode {
			continue
		}
		for _, entry := range ports.Content {
			n := lookup(entry, "containerPort")
			proto := strings.ToUpper(strings.TrimSpace(document{node: entry}.str("protocol")))
			if proto == "" {
				proto = "TCP"
			}
			if n == nil || n.Value != strconv.Itoa(p.container) || proto != p.protocol {
				continue
			}
			switch {
			case done[key]:
				if owner == nil {
					owner = c
				}
				if e := (document{node: entry}); e.str("hostPort") == strconv.Itoa(p.hostPort) && e.str("hostIP") == p.hostIP {
					return document{node: c}.str("name"), nil // published so already
				}
			case owner == nil:
				owner = c
				set(entry)
			default:
				remove(entry, "hostPort")
				remove(entry, "hostIP")
			}
		}
	}
	if owner != nil && !done[key] {
		done[key] = true
		return document{node: owner}.str("name"), nil
	}
	if owner == nil {
		owner = containers.Content[0]
	}
	ports := ensure(owner, "ports", yaml.SequenceNode)
	ports.Content = append(ports.Content, newEntry())
	done[key] = true
	return document{node: owner}.str("name"), nil
}

// remove deletes a mapping's key.
func remove(n *yaml.Node, key string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content = append(n.Content[:i], n.Content[i+2:]...)
			return
		}
	}
}

// parsePublishPort reads podman's --publish format: [[ip:][hostPort]:]
// containerPort[/protocol], ports or equal-sized ranges (8080-8081:80-81),
// an IPv6 address in brackets.
func parsePublishPort(v string) ([]port, error) {
	spec, proto, _ := strings.Cut(v, "/")
	proto = strings.ToUpper(proto)
	switch proto {
	case "":
		proto = "TCP"
	case "TCP", "UDP", "SCTP":
	default:
		return nil, fmt.Errorf("%q: protocol %q: tcp, udp or sctp", v, proto)
	}
	var ip, host, ctr string
	if strings.HasPrefix(spec, "[") {
		end := strings.Index(spec, "]")
		if end < 0 || end+1 >= len(spec) || spec[end+1] != ':' {
			return nil, fmt.Errorf("%q: an IPv6 address is [ADDRESS]:HOSTPORT:CONTAINERPORT", v)
		}
		ip = spec[1:end]
		spec = spec[end+2:]
		h, c, ok := strings.Cut(spec, ":")
		if !ok {
			return nil, fmt.Errorf("%q: an IPv6 address is [ADDRESS]:HOSTPORT:CONTAINERPORT", v)
		}
		host, ctr = h, c
	} else {
		parts := strings.Split(spec, ":")
		switch len(parts) {
		case 1:
			ctr = parts[0]
		case 2:
			host, ctr = parts[0], parts[1]
		case 3:
			ip, host, ctr = parts[0], parts[1], parts[2]
		default:
			return nil, fmt.Errorf("%q: the format is [[IP:][HOSTPORT]:]CONTAINERPORT[/PROTOCOL]", v)
		}
	}
	if ip == "0.0.0.0" || ip == "::" {
		ip = ""
	}
	if host == "" {
		return nil, fmt.Errorf("%q: no host port: podman picks a random one, podunit needs it named (HOSTPORT:%s)", v, ctr)
	}
	cFrom, cTo, err := portRange(ctr)
	if err != nil {
		return nil, fmt.Errorf("%q: container port: %w", v, err)
	}
	hFrom, hTo, err := portRange(host)
	if err != nil {
		return nil, fmt.Errorf("%q: host port: %w", v, err)
	}
	if hTo-hFrom != cTo-cFrom {
		return nil, fmt.Errorf("%q: the host and container ranges differ in size", v)
	}
	if cTo-cFrom >= maxPortRange {
		return nil, fmt.Errorf("%q: a range of more than %d ports: each is a port of the pod's YAML here; publish fewer", v, maxPortRange)
	}
	var out []port
	for i := 0; i <= cTo-cFrom; i++ {
		out = append(out, port{hostIP: ip, hostPort: hFrom + i, container: cFrom + i, protocol: proto})
	}
	return out, nil
}

// maxPortRange bounds a PublishPort= range: each port becomes an entry of
// the manifest.
const maxPortRange = 1000

func portRange(s string) (int, int, error) {
	from, to, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(from)
	if err != nil || a < 1 || a > 65535 {
		return 0, 0, fmt.Errorf("%q: a port is 1-65535", s)
	}
	if !isRange {
		return a, a, nil
	}
	b, err := strconv.Atoi(to)
	if err != nil || b < a || b > 65535 {
		return 0, 0, fmt.Errorf("%q: a range is FROM-TO, FROM <= TO <= 65535", s)
	}
	return a, b, nil
}

// encodeDocuments writes documents as one multi-document YAML file.
func encodeDocuments(header string, docs []document) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header)
	for i, d := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		root := d.root
		if root == nil {
			root = d.node
		}
		if err := enc.Encode(root); err != nil {
			return nil, fmt.Errorf("%s: %w", d.from, err)
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}
