package oracle

import (
	"strconv"
	"strings"
	"time"
)

// The images of the test bed (test/testbed/images.sh).
const (
	busybox = "localhost/podunit/busybox:1.35"
	webImg  = "localhost/podunit/nginx:1"
)

// pod is a Pod manifest named {{name}} whose spec is the lines given (indented
// under spec:), with the test bed's busybox as BUSYBOX.
func pod(spec string) string {
	spec = strings.ReplaceAll(strings.TrimLeft(spec, "\n"), "BUSYBOX", busybox)
	spec = strings.ReplaceAll(spec, "WEB", webImg)
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{name}}\n  labels: {app: kubelet-oracle, case: {{name}}}\n  annotations: {oracle/note: seen}\nspec:\n")
	for _, l := range strings.Split(strings.TrimRight(spec, "\n"), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// tell is a container command that writes what the script prints to the
// termination message, then exits with the script's status.
func tell(script string) string {
	return sh("exec 3>/dev/termination-log; ( " + script + " ) >&3 2>&3")
}

// sh is a container command running script with sh -c, as a YAML flow
// sequence.
func sh(script string, args ...string) string {
	q := []string{`"sh"`, `"-c"`, strconv.Quote(script)}
	for _, a := range args {
		q = append(q, strconv.Quote(a))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// Behaviours is the catalogue. A behaviour that differs is listed in
// docs/kubelet-oracle.md with its reason; a new behaviour of podunit
// adds its case here.
var Behaviours = []Behaviour{
	{
		Name: "exit-code", Short: true, Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  command: ` + tell(`echo leaving with 3; exit 3`) + `
`),
	},
	{
		Name: "completed", Short: true, Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  command: ` + tell(`echo done`) + `
`),
	},
	{
		Name: "message-from-log", Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  terminationMessagePolicy: FallbackToLogsOnError
  command: ["sh", "-c", "echo first line; echo last line of the log; exit 1"]
`),
	},
	{
		Name: "message-path", Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  terminationMessagePath: /tmp/why
  command: ["sh", "-c", "echo written to /tmp/why > /tmp/why; exit 2"]
`),
	},
	{
		Name: "on-failure-retries", Short: true, Done: Finished,
		Pod: pod(`
restartPolicy: OnFailure
volumes: [{name: count, emptyDir: {}}]
containers:
- name: c
  image: BUSYBOX
  volumeMounts: [{name: count, mountPath: /count}]
  command: ` + tell(`echo x >> /count/runs; n=$(wc -l < /count/runs); echo run $n; [ $n -ge 3 ]`) + `
`),
	},
	{
		Name: "always-restarts", Done: Restarted("c", 2), Ignore: []string{"container[c].state", "container[c].message", "container[c].ready", "container[c].started", "condition.Ready", "condition.ContainersReady"},
		AtLeast: map[string]int{"container[c].restarts": 2},
		Pod: pod(`
restartPolicy: Always
containers:
- name: c
  image: BUSYBOX
  command: ["sh", "-c", "exit 7"]
`),
	},
	{
		Name: "env", Short: true, Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  env:
  - {name: A, value: alpha}
  - {name: B, value: "$(A)-beta"}
  - {name: ESCAPED, value: "$$(A)"}
  - {name: MISSING, value: "$(NOPE)"}
  - name: POD_NAME
    valueFrom: {fieldRef: {fieldPath: metadata.name}}
  - name: POD_NAMESPACE
    valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
  - name: POD_IP
    valueFrom: {fieldRef: {fieldPath: status.podIP}}
  - name: NODE
    valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
  - name: LABEL
    valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
  - name: SA
    valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}
  command: ` + tell(`echo "A=$A B=$B ESCAPED=$ESCAPED MISSING=$MISSING"; echo "POD_NAME=$POD_NAME POD_NAMESPACE=$POD_NAMESPACE"; echo "POD_IP=$POD_IP NODE=$NODE"; echo "LABEL=$LABEL SA=$SA"`) + `
`),
	},
	{
		Name: "env-resources", Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  resources:
    requests: {cpu: 250m, memory: 32Mi}
    limits: {memory: 64Mi}
  env:
  - name: MEM_LIMIT_MI
    valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}
  - name: MEM_REQUEST
    valueFrom: {resourceFieldRef: {resource: requests.memory}}
  - name: CPU_REQUEST_M
    valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}
  command: ` + tell(`echo "MEM_LIMIT_MI=$MEM_LIMIT_MI MEM_REQUEST=$MEM_REQUEST CPU_REQUEST_M=$CPU_REQUEST_M"`) + `
`),
	},
	{
		Name: "command-args", Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  workingDir: /etc
  env: [{name: WHO, value: world}]
  command: ` + sh(`exec 3>/dev/termination-log; echo "$0 $1 $2 in $(pwd)" >&3`, "hello") + `
  args: ["$(WHO)", "$$(WHO)"]
`),
	},
	{
		Name: "init-containers", Short: true, Done: Finished,
		Pod: pod(`
restartPolicy: Never
volumes: [{name: shared, emptyDir: {}}]
initContainers:
- name: first
  image: BUSYBOX
  volumeMounts: [{name: shared, mountPath: /shared}]
  command: ["sh", "-c", "echo first >> /shared/order"]
- name: second
  image: BUSYBOX
  volumeMounts: [{name: shared, mountPath: /shared}]
  command: ["sh", "-c", "echo second >> /shared/order"]
containers:
- name: c
  image: BUSYBOX
  volumeMounts: [{name: shared, mountPath: /shared}]
  command: ` + tell(`cat /shared/order`) + `
`),
	},
	{
		Name: "init-fails", Done: Finished,
		Pod: pod(`
restartPolicy: Never
initContainers:
- name: setup
  image: BUSYBOX
  command: ` + tell(`echo cannot set up; exit 4`) + `
containers:
- name: c
  image: BUSYBOX
  command: ["true"]
`),
	},
	{
		Name: "sidecar", Short: true, Done: Finished,
		Pod: pod(`
restartPolicy: Never
volumes: [{name: shared, emptyDir: {}}]
initContainers:
- name: side
  image: BUSYBOX
  restartPolicy: Always
  volumeMounts: [{name: shared, mountPath: /shared}]
  command: ["sh", "-c", "echo sidecar up > /shared/side; trap 'exit 0' TERM; while true; do sleep 1; done"]
containers:
- name: c
  image: BUSYBOX
  volumeMounts: [{name: shared, mountPath: /shared}]
  command: ` + tell(`cat /shared/side`) + `
`),
	},
	{
		Name: "emptydir-memory", Done: Finished,
		Pod: pod(`
restartPolicy: Never
volumes: [{name: scratch, emptyDir: {medium: Memory, sizeLimit: 16Mi}}]
containers:
- name: c
  image: BUSYBOX
  volumeMounts: [{name: scratch, mountPath: /scratch}]
  command: ` + tell(`awk '$2 == "/scratch" {print $3}' /proc/mounts; touch /scratch/f && echo writable`) + `
`),
	},
	{
		Name: "subpath", Done: Finished,
		Pod: pod(`
restartPolicy: Never
volumes: [{name: data, emptyDir: {}}]
initContainers:
- name: fill
  image: BUSYBOX
  volumeMounts: [{name: data, mountPath: /data}]
  command: ["sh", "-c", "mkdir -p /data/a/b && echo inside a/b > /data/a/b/file && echo top > /data/top"]
containers:
- name: c
  image: BUSYBOX
  volumeMounts: [{name: data, mountPath: /sub, subPath: a/b}]
  command: ` + tell(`ls /sub; cat /sub/file`) + `
`),
	},
	{
		Name: "hostpath-create", Done: Finished,
		Pod: pod(`
restartPolicy: Never
volumes: [{name: h, hostPath: {path: /var/lib/kubelet-oracle/{{name}}, type: DirectoryOrCreate}}]
containers:
- name: c
  image: BUSYBOX
  volumeMounts: [{name: h, mountPath: /h}]
  command: ` + tell(`stat -c '%F %a' /h; touch /h/f && echo writable`) + `
`),
	},
	{
		Name: "hostpath-missing-file", Done: either(Waiting("c"), PendingFor(15*time.Second)), Ignore: []string{"status.reason"},
		Pod: pod(`
restartPolicy: Never
volumes: [{name: h, hostPath: {path: /var/lib/kubelet-oracle/no-such-file, type: File}}]
containers:
- name: c
  image: BUSYBOX
  volumeMounts: [{name: h, mountPath: /h}]
  command: ["true"]
`),
	},
	{
		Name: "downward-volume", Done: Finished,
		Pod: pod(`
restartPolicy: Never
volumes:
- name: info
  downwardAPI:
    items:
    - {path: labels, fieldRef: {fieldPath: metadata.labels}}
    - {path: name, fieldRef: {fieldPath: metadata.name}}
    - {path: cpu, resourceFieldRef: {containerName: c, resource: requests.cpu, divisor: 1m}}
containers:
- name: c
  image: BUSYBOX
  resources: {requests: {cpu: 100m}}
  volumeMounts: [{name: info, mountPath: /info}]
  command: ` + tell(`for f in labels name cpu; do echo "$f: $(cat /info/$f)"; done`) + `
`),
	},
	{
		Name: "run-as-user", Short: true, Done: Finished,
		Pod: pod(`
restartPolicy: Never
securityContext: {runAsUser: 1234, runAsGroup: 5678, supplementalGroups: [4000]}
containers:
- name: c
  image: BUSYBOX
  command: ` + tell(`id`) + `
`),
	},
	{
		Name: "read-only-root", Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  securityContext: {readOnlyRootFilesystem: true}
  command: ` + tell(`touch /x 2>/dev/null && echo root writable || echo root read-only; touch /dev/termination-log && echo message writable`) + `
`),
	},
	{
		Name: "capabilities", Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  securityContext: {capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}
  command: ` + tell(`grep -E '^Cap(Eff|Bnd)' /proc/self/status`) + `
`),
	},
	{
		Name: "default-capabilities", Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  command: ` + tell(`grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status`) + `
`),
	},
	{
		Name: "no-new-privileges", Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  securityContext: {allowPrivilegeEscalation: false}
  command: ` + tell(`grep -E '^NoNewPrivs:' /proc/self/status`) + `
`),
	},
	{
		Name: "host-network", Short: true, Done: Finished, Ignore: []string{"podIP"},
		Pod: pod(`
restartPolicy: Never
hostNetwork: true
containers:
- name: c
  image: BUSYBOX
  command: ` + tell(`echo hostname $(hostname); [ -e /sys/class/net/cni0 ] && echo sees the host bridge || echo does not see the host bridge`) + `
`),
	},
	{
		Name: "pod-hostname", Done: Finished,
		Pod: pod(`
restartPolicy: Never
hostname: h1
subdomain: sub
hostAliases: [{ip: 10.1.2.3, hostnames: [alias.example]}]
containers:
- name: c
  image: BUSYBOX
  command: ` + tell(`hostname; grep -E 'alias|h1' /etc/hosts | tr -s ' \t' ' '`) + `
`),
	},
	{
		Name: "cgroup-limits", Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  resources:
    limits: {cpu: 500m, memory: 64Mi}
  command: ` + tell(`cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max`) + `
`),
	},
	{
		Name: "burstable", Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  resources:
    requests: {cpu: 200m, memory: 16Mi}
  command: ` + tell(`cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/memory.max`) + `
`),
	},
	{
		Name: "post-start-hook", Done: Finished,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  lifecycle:
    postStart: {exec: {command: ["sh", "-c", "echo hook ran > /tmp/hook"]}}
  command: ` + tell(`for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /tmp/hook ] && break; sleep 0.5; done; cat /tmp/hook`) + `
`),
	},
	{
		Name: "post-start-hook-fails", Done: Restarted("c", 1), Ignore: []string{"container[c].state", "container[c].ready", "container[c].started", "container[c].message"},
		AtLeast: map[string]int{"container[c].restarts": 1},
		Pod: pod(`
restartPolicy: Always
containers:
- name: c
  image: BUSYBOX
  lifecycle:
    postStart: {exec: {command: ["sh", "-c", "exit 1"]}}
  command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`),
	},
	{
		Name: "readiness-passes", Short: true, Done: Ready,
		Pod: pod(`
containers:
- name: c
  image: BUSYBOX
  command: ["sh", "-c", "trap 'exit 0' TERM; touch /tmp/ready; while true; do sleep 1; done"]
  readinessProbe: {exec: {command: [test, -e, /tmp/ready]}, periodSeconds: 1}
`),
	},
	{
		Name: "readiness-fails", Done: RunningFor("c", 6*time.Second),
		Pod: pod(`
containers:
- name: c
  image: BUSYBOX
  command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
  readinessProbe: {exec: {command: ["false"]}, periodSeconds: 1, failureThreshold: 1}
`),
	},
	{
		Name: "liveness-restarts", Short: true, Done: Restarted("c", 1),
		Ignore:  []string{"container[c].state", "container[c].ready", "container[c].started", "condition.Ready", "condition.ContainersReady"},
		AtLeast: map[string]int{"container[c].restarts": 1},
		Pod: pod(`
terminationGracePeriodSeconds: 2
containers:
- name: c
  image: BUSYBOX
  command: ["sh", "-c", "while true; do sleep 1; done"]
  livenessProbe: {exec: {command: ["false"]}, periodSeconds: 1, failureThreshold: 2}
`),
	},
	{
		Name: "startup-probe", Done: Ready,
		Pod: pod(`
containers:
- name: c
  image: BUSYBOX
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3; touch /tmp/up; while true; do sleep 1; done"]
  startupProbe: {exec: {command: [test, -e, /tmp/up]}, periodSeconds: 1, failureThreshold: 30}
`),
	},
	{
		Name: "http-readiness", Done: Ready,
		Pod: pod(`
containers:
- name: web
  image: WEB
  ports: [{name: http, containerPort: 80}]
  readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
`),
	},
	{
		Name: "tcp-readiness-fails", Done: RunningFor("c", 6*time.Second),
		Pod: pod(`
containers:
- name: c
  image: BUSYBOX
  command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
  readinessProbe: {tcpSocket: {port: 8081}, periodSeconds: 1, failureThreshold: 1}
`),
	},
	{
		Name: "active-deadline", Done: Finished, Ignore: []string{"container[c].message"},
		Pod: pod(`
restartPolicy: Never
activeDeadlineSeconds: 4
terminationGracePeriodSeconds: 10
containers:
- name: c
  image: BUSYBOX
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`),
	},
	{
		Name: "image-never-missing", Done: Waiting("c"),
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: localhost/podunit/not-here:1
  imagePullPolicy: Never
`),
	},
	{
		// Since 1.34 the kubelet refuses a static pod that refers to a
		// ConfigMap; podunit reads the ConfigMaps of its sources.
		Name: "configmap-env", Done: Finished, Within: 45 * time.Second,
		Objects: `apiVersion: v1
kind: ConfigMap
metadata: {name: "{{name}}"}
data: {GREETING: hello}
`,
		Pod: pod(`
restartPolicy: Never
containers:
- name: c
  image: BUSYBOX
  envFrom: [{configMapRef: {name: "{{name}}"}}]
  command: ` + tell(`echo "GREETING=$GREETING"`) + `
`),
	},
	{
		// Removing the manifest stops the pod: the preStop hook runs,
		// then the container gets SIGTERM, within the grace period.
		Name: "pre-stop-and-term", Done: Ready, AfterFiles: []string{"prestop", "term"},
		Pod: pod(`
terminationGracePeriodSeconds: 5
volumes: [{name: h, hostPath: {path: /var/lib/kubelet-oracle/{{name}}, type: DirectoryOrCreate}}]
containers:
- name: c
  image: BUSYBOX
  volumeMounts: [{name: h, mountPath: /h}]
  lifecycle:
    preStop: {exec: {command: ["sh", "-c", "echo prestop ran > /h/prestop"]}}
  command: ` + sh(`trap 'echo "TERM after prestop: $(cat /h/prestop 2>/dev/null || echo none)" > /h/term; exit 0' TERM; touch /tmp/ready; sleep 3600 & wait`) + `
  readinessProbe: {exec: {command: [test, -e, /tmp/ready]}, periodSeconds: 1}
`),
	},
	{
		Name: "share-process-namespace", Done: Finished,
		Pod: pod(`
restartPolicy: Never
shareProcessNamespace: true
containers:
- name: c
  image: BUSYBOX
  command: ` + tell(`echo pid1 $(cat /proc/1/cmdline | tr '\0' ' ')`) + `
`),
	},
}

// ShortBehaviours are the ones make test runs.
func ShortBehaviours() []Behaviour {
	var out []Behaviour
	for _, b := range Behaviours {
		if b.Short {
			out = append(out, b)
		}
	}
	return out
}
