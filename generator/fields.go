package generator

import (
	"reflect"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Field is one manifest field podunit reads, and what it does with it.
//
// Path uses the Kubernetes reference notation: dots between fields, "[]" after
// a list. A field whose value is a map or list of scalars (labels, command)
// covers its whole value. Doc is the note rendered into
// docs/manifest-reference.md and `podunit explain`; for a Noticed field it is
// the notice itself: what podunit did with the field.
type Field struct {
	Path  string
	Doc   string
	Class Class
}

// Fields is the single list of the Pod's fields podunit reads, each with its
// class (policy.go). Decoding rejects every field not listed here, and
// docs/manifest-reference.md is generated from it (a test fails when the two
// disagree). Add an honoured field here only together with the code that
// implements it and a test that shows it working.
var Fields = []Field{
	{"apiVersion", "Must be `v1`.", Honoured},
	{"kind", "Must be `Pod`.", Honoured},
	{"metadata.name", "Required. A DNS-1123 subdomain; becomes the unit name `pod-<name>.service`.", Honoured},
	{"metadata.namespace", "Default `default`. A DNS-1123 label; other namespaces name the unit `pod-<namespace>_<name>.service`.", Honoured},
	{"metadata.uid", "Optional. Without it the UID is the config hash, so every edit makes a new pod identity, as the kubelet does for static pods.", Honoured},
	{"metadata.labels", "Copied to the pod sandbox and containers as CRI labels.", Honoured},
	{"metadata.annotations", "Copied to the pod sandbox as CRI annotations. Some have a meaning here, podunit's own (`podunit.io/after`, …) and podman's (`io.podman.annotations.*`, `io.containers.autoupdate`, `bind-mount-options`): each is honoured or given a notice saying what happens instead (the table of annotations lists them).", Honoured},
	{"spec.restartPolicy", "`Always` (default), `OnFailure` or `Never`, per container as in Kubernetes: an exited container is restarted in the same sandbox with the kubelet's back-off (10 s doubling to 5 min, shown as `CrashLoopBackOff`). A pod whose containers all finished stays `active (exited)` if it succeeded and `failed` if not, and is not run again until its manifest changes.", Honoured},
	{"spec.activeDeadlineSeconds", "Seconds the pod may be active, from its sandbox's creation, as the kubelet counts them: then every container is stopped (within the grace period), the pod is `Failed` with reason `DeadlineExceeded`, and its unit fails without a restart until the manifest changes. Counted anew when the pod starts again (an edit, a boot).", Honoured},
	{"spec.terminationGracePeriodSeconds", "Default 30. Time between SIGTERM and SIGKILL for each container on stop; the unit's `TimeoutStopSec=` covers it.", Honoured},
	{"spec.hostNetwork", "Use the host's network namespace: no CNI, no pod IP of its own (the pod IP is the host's), `hostPort` must equal `containerPort`.", Honoured},
	{"spec.hostPID", "Use the host's PID namespace.", Honoured},
	{"spec.hostIPC", "Use the host's IPC namespace.", Honoured},
	{"spec.shareProcessNamespace", "One PID namespace for all the pod's containers (the pause process is PID 1).", Honoured},
	{"spec.hostname", "The containers' host name; default the pod's name (its first 63 characters).", Honoured},
	{"spec.subdomain", "With it the pod's fully qualified name is `<hostname>.<subdomain>.<namespace>.svc.cluster.local`, written into the pod's `/etc/hosts`.", Honoured},
	{"spec.hostAliases[].ip", "Required. Added to the pod's `/etc/hosts`, which podunit writes and mounts into every container as the kubelet does.", Honoured},
	{"spec.hostAliases[].hostnames", "Names for `ip`.", Honoured},
	{"spec.enableServiceLinks", "`true` (default): each container gets the Service environment variables of the pod's namespace, as the kubelet sets them when the container is created: `<SVC>_SERVICE_HOST`, `<SVC>_SERVICE_PORT`, `<SVC>_SERVICE_PORT_<PORT_NAME>` and Docker's link variables (`<SVC>_PORT`, `<SVC>_PORT_<port>_<PROTO>` with `_PROTO`, `_PORT`, `_ADDR`), for every Service with a ClusterIP that the node serves then; the container's own `env` and `envFrom` win. `false`: none (but `default/kubernetes`'s, if a manifest defines that Service, as the kubelet's).", Honoured},
	{"spec.dnsPolicy", "As the kubelet: `ClusterFirst` (default) gives the pod podunit's cluster DNS (`clusterDNS`, which answers Service names and forwards the rest; search `<namespace>.svc.<clusterDomain> svc.<clusterDomain> <clusterDomain>` and the host's, `ndots:5`), except for a `hostNetwork` pod, which gets the host's; `ClusterFirstWithHostNet` gives cluster DNS to `hostNetwork` pods too; `Default` uses the host's resolver configuration, read from `/run/systemd/resolve/resolv.conf` when systemd-resolved runs, else `/etc/resolv.conf` (so does `ClusterFirst` when Services are off: no `clusterDNS`); `None` uses `dnsConfig` only. `dnsConfig` is merged in as in Kubernetes.", Honoured},
	{"spec.dnsConfig.nameservers", "Added after the policy's name servers (at most 3 in all).", Honoured},
	{"spec.dnsConfig.searches", "Added after the policy's search domains (at most 32).", Honoured},
	{"spec.dnsConfig.options[].name", "A resolv.conf option; replaces an option of the same name from the policy.", Honoured},
	{"spec.dnsConfig.options[].value", "Its value, e.g. `ndots` `2`.", Honoured},
	{"spec.resources.limits", "`cpu` and `memory` for the whole pod, as Kubernetes' pod-level resources: the pod's slice gets them (`MemoryMax=`, `CPUQuota=`) instead of the sum of its containers' limits; each container's limit must not exceed them.", Honoured},
	{"spec.resources.requests", "`cpu` and `memory` for the whole pod; default its limits. With pod-level resources the pod's QoS class (and so its containers' OOM scores) comes from them, as in Kubernetes.", Honoured},
	{"spec.imagePullSecrets[].name", "A Secret of type `kubernetes.io/dockerconfigjson` (key `.dockerconfigjson`, as `kubectl create secret docker-registry` makes it) or `kubernetes.io/dockercfg` in the pod's namespace, defined in any manifest file: its credentials for the image's registry are sent with the runtime's pull, each matching one in turn, as the kubelet does. A missing one is an error at sync; a change to one replaces the pods that use it, as for any Secret.", Honoured},
	{"spec.securityContext.sysctls[].name", "A namespaced sysctl (`kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`, `net.*`) set in the pod's namespaces; `net.*` is refused with `hostNetwork`, the IPC ones with `hostIPC`.", Honoured},
	{"spec.securityContext.sysctls[].value", "Its value.", Honoured},
	{"spec.securityContext.runAsUser", "Default user of every container (a container's own `securityContext` wins).", Honoured},
	{"spec.securityContext.runAsGroup", "Default primary group of every container.", Honoured},
	{"spec.securityContext.runAsNonRoot", "Refuse to start a container that would run as UID 0 (it waits with `CreateContainerConfigError`, as in Kubernetes).", Honoured},
	{"spec.securityContext.supplementalGroups", "Extra groups for every container's first process.", Honoured},
	{"spec.securityContext.fsGroup", "A group added to every container's groups and given the pod's own volumes (emptyDir, configMap, secret, downwardAPI, projected) as the kubelet does: group-owned, group-readable (and writable for emptyDir), directories setgid. hostPath volumes are left as they are.", Honoured},
	{"spec.securityContext.seLinuxOptions.user", "The SELinux context of the pod's sandbox and default of its containers, passed to the runtime.", Honoured},
	{"spec.securityContext.seLinuxOptions.role", "As `user`.", Honoured},
	{"spec.securityContext.seLinuxOptions.type", "As `user`.", Honoured},
	{"spec.securityContext.seLinuxOptions.level", "As `user`.", Honoured},
	{"spec.securityContext.seccompProfile.type", "`Unconfined` (default, as the kubelet), `RuntimeDefault` or `Localhost`; a container's own wins.", Honoured},
	{"spec.securityContext.seccompProfile.localhostProfile", "With `Localhost`: the profile's path, relative to the runtime's seccomp directory.", Honoured},
}

func init() {
	Fields = append(Fields, podPolicyFields...)
	Fields = append(Fields, volumeFields()...)
	Fields = append(Fields, containerFields("spec.containers[]", "")...)
	Fields = append(Fields, containerPolicyFields("spec.containers[]")...)
	Fields = append(Fields, containerPolicyFields("spec.initContainers[]")...)
	Fields = append(Fields, Field{"spec.initContainers[].restartPolicy",
		"Only `Always`: a sidecar. It starts before the next init container, keeps running (restarted whatever the pod's policy) and stops after the app containers.", Honoured})
	Fields = append(Fields, containerFields("spec.initContainers[]",
		"Init containers run one at a time, in order, each to a successful exit, before the app containers start; a failed one is retried with back-off (under `restartPolicy: Never` the pod fails). They are not run again when an app container restarts. ")...)
}

// containerFields are the fields of a container under prefix; note leads
// the first row's doc.
func containerFields(prefix, note string) []Field {
	rows := []Field{
		{prefix + ".name", "Required. A DNS-1123 label, unique in the pod.", Honoured},
		{prefix + ".image", "Required. A reference to an image the runtime can resolve or pull.", Honoured},
		{prefix + ".imagePullPolicy", "`Always`, `IfNotPresent` or `Never`. Default `Always` for `:latest` or no tag, else `IfNotPresent`. A pod that pulls at its start (`Always`, or `IfNotPresent` with the image not on the machine) is ordered after `network-online.target`, so at boot it waits for the network; one whose images are here starts as soon as the runtime is up.", Honoured},
		{prefix + ".command", "Replaces the image's entrypoint. `$(VAR)` is expanded from the container's env, `$$` is a literal `$`, as in Kubernetes.", Honoured},
		{prefix + ".args", "Replaces the image's command. `$(VAR)` is expanded as in `command`.", Honoured},
		{prefix + ".workingDir", "Working directory inside the container.", Honoured},
		{prefix + ".env[].name", "Required. Environment variable name.", Honoured},
		{prefix + ".env[].value", "The value; `$(VAR)` refers to a variable defined earlier in the list.", Honoured},
		{prefix + ".env[].valueFrom.fieldRef.fieldPath", "`metadata.name`, `metadata.namespace`, `metadata.uid`, `metadata.labels['<key>']`, `metadata.annotations['<key>']`, `spec.nodeName` (the host's name), `spec.serviceAccountName` (empty), `status.podIP`, `status.podIPs`, `status.hostIP`, `status.hostIPs`.", Honoured},
		{prefix + ".env[].valueFrom.fieldRef.apiVersion", "Only `v1`.", Honoured},
		{prefix + ".env[].valueFrom.resourceFieldRef.resource", "`limits.cpu`, `limits.memory`, `requests.cpu`, `requests.memory`; an unset limit is the host's capacity, as in Kubernetes.", Honoured},
		{prefix + ".env[].valueFrom.resourceFieldRef.containerName", "Default this container.", Honoured},
		{prefix + ".env[].valueFrom.resourceFieldRef.divisor", "Default `1`; the value is rounded up to a whole number of divisors.", Honoured},
		{prefix + ".env[].valueFrom.configMapKeyRef.name", "A ConfigMap in the pod's namespace, defined in any manifest file; a missing one (or key) is an error at sync unless `optional`.", Honoured},
		{prefix + ".env[].valueFrom.configMapKeyRef.key", "Required: the key whose value the variable gets.", Honoured},
		{prefix + ".env[].valueFrom.configMapKeyRef.optional", "A missing ConfigMap or key leaves the variable unset.", Honoured},
		{prefix + ".env[].valueFrom.secretKeyRef.name", "A Secret in the pod's namespace, as for `configMapKeyRef`.", Honoured},
		{prefix + ".env[].valueFrom.secretKeyRef.key", "Required: the key whose (decoded) value the variable gets.", Honoured},
		{prefix + ".env[].valueFrom.secretKeyRef.optional", "A missing Secret or key leaves the variable unset.", Honoured},
		{prefix + ".envFrom[].configMapRef.name", "Every key of the ConfigMap that is a valid variable name becomes a variable (others are skipped with a warning); `env` entries win over them.", Honoured},
		{prefix + ".envFrom[].configMapRef.optional", "A missing ConfigMap adds nothing.", Honoured},
		{prefix + ".envFrom[].secretRef.name", "As `configMapRef`, from a Secret.", Honoured},
		{prefix + ".envFrom[].secretRef.optional", "A missing Secret adds nothing.", Honoured},
		{prefix + ".envFrom[].prefix", "Prepended to every key's name.", Honoured},
		{prefix + ".volumeMounts[].name", "Required: a volume of the pod.", Honoured},
		{prefix + ".volumeMounts[].mountPath", "Required: an absolute path in the container, not containing `:`.", Honoured},
		{prefix + ".volumeMounts[].readOnly", "Mount read-only.", Honoured},
		{prefix + ".volumeMounts[].mountPropagation", "`None` (default), `HostToContainer` (mounts made on the host later show in the container: rslave) or `Bidirectional` (privileged containers only; mounts made in the container show on the host: rshared), passed to the runtime as the kubelet passes it.", Honoured},
		{prefix + ".stdin", "Keep the container's standard input open (the runtime's stdin), for `podunit exec`-style attaching; nothing is written to it.", Honoured},
		{prefix + ".stdinOnce", "Close standard input after the first attach detaches, as in Kubernetes.", Honoured},
		{prefix + ".tty", "Give the container a terminal; its output then reaches the journal as one stream.", Honoured},
		{prefix + ".terminationMessagePath", "Default `/dev/termination-log`: an empty file podunit mounts there for each run of the container; what the container writes to it (at most 4096 bytes) is the `message` of its terminated state in `/pods`, `get -o yaml` and `describe`, as the kubelet reports it.", Honoured},
		{prefix + ".terminationMessagePolicy", "`File` (default) or `FallbackToLogsOnError`: when the file is empty and the container failed, the last 80 lines (at most 2048 bytes) of its output are the message.", Honoured},
		{prefix + ".volumeMounts[].subPath", "Mount this path inside the volume instead of its root (created as a directory when missing, as the kubelet does); must be relative and must not contain `..`.", Honoured},
		{prefix + ".resources.limits", "`cpu` and `memory`: set on the container's cgroup by the runtime (CFS quota, memory limit); the pod's slice gets their sum (`CPUQuota=`, `MemoryMax=`) when every container has one. `ephemeral-storage`: a notice (not enforced: podunit evicts no pods). Extended resources (`nvidia.com/gpu`) are rejected: there are no device plugins.", Honoured},
		{prefix + ".resources.requests", "`cpu`, `memory` (and `ephemeral-storage`, with a notice); default the limits. `cpu` sets the CPU shares; both decide the pod's QoS class (Guaranteed, Burstable, BestEffort) and its OOM score adjustment as the kubelet does.", Honoured},
		{prefix + ".securityContext.runAsUser", "UID of the container's first process.", Honoured},
		{prefix + ".securityContext.runAsGroup", "Its primary GID.", Honoured},
		{prefix + ".securityContext.runAsNonRoot", "Refuse to run as UID 0 (the container waits with `CreateContainerConfigError`).", Honoured},
		{prefix + ".securityContext.privileged", "All capabilities, all devices, no seccomp or masked paths.", Honoured},
		{prefix + ".securityContext.allowPrivilegeEscalation", "`false` sets no_new_privs.", Honoured},
		{prefix + ".securityContext.readOnlyRootFilesystem", "Mount the image's root file system read-only.", Honoured},
		{prefix + ".securityContext.capabilities.add", "Capabilities added to the runtime's default set, e.g. `NET_ADMIN` (`CAP_` prefix optional).", Honoured},
		{prefix + ".securityContext.capabilities.drop", "Capabilities removed; `ALL` drops every one.", Honoured},
		{prefix + ".securityContext.seLinuxOptions.user", "The container's SELinux context, passed to the runtime (which applies it where SELinux is enabled and ignores it elsewhere, as for the kubelet); default the pod's.", Honoured},
		{prefix + ".securityContext.seLinuxOptions.role", "As `user`.", Honoured},
		{prefix + ".securityContext.seLinuxOptions.type", "As `user`, e.g. `spc_t`.", Honoured},
		{prefix + ".securityContext.seLinuxOptions.level", "As `user`, e.g. `s0:c123,c456`.", Honoured},
		{prefix + ".securityContext.seccompProfile.type", "`Unconfined`, `RuntimeDefault` or `Localhost`; default the pod's.", Honoured},
		{prefix + ".securityContext.seccompProfile.localhostProfile", "With `Localhost`: the profile's path.", Honoured},
		{prefix + ".ports[].name", "Optional port name (an IANA_SVC_NAME).", Honoured},
		{prefix + ".ports[].containerPort", "Required, 1-65535. Informational unless `hostPort` is set.", Honoured},
		{prefix + ".ports[].hostPort", "Publishes `containerPort` on the host through the CNI portmap plugin.", Honoured},
		{prefix + ".ports[].hostIP", "Host address to bind `hostPort` to; default all addresses.", Honoured},
		{prefix + ".ports[].protocol", "`TCP` (default) or `UDP`.", Honoured},
	}
	for _, hook := range []struct{ name, doc string }{
		{"postStart", "Runs right after the container starts; the container counts as running only once it returned, and a failed hook kills it (restarted per `restartPolicy`)."},
		{"preStop", "Runs before the container is stopped, within the grace period; SIGTERM follows, with at least 2 s before SIGKILL."},
	} {
		base := prefix + ".lifecycle." + hook.name
		rows = append(rows, Field{base + ".exec.command", hook.doc + " Exec: run in the container.", Honoured})
		rows = append(rows, httpGetFields(base)...)
		rows = append(rows, Field{base + ".sleep.seconds", "Sleep this long (in podshim, not in the image).", Honoured})
	}
	rows = append(rows, Field{prefix + ".lifecycle.stopSignal", "The signal that stops the container instead of its image's `STOPSIGNAL` (or SIGTERM), e.g. `SIGUSR1`; as in Kubernetes it needs `spec.os.name: linux`. Passed to the runtime; where the runtime does not honour it (containerd before 2.1), podshim sends it to the container's first process itself and the runtime only kills what is left after the grace period.", Honoured})
	rows[0].Doc = note + rows[0].Doc
	return append(rows, probeFields(prefix)...)
}

// probeFields are the fields of the three probes of a container under
// prefix, the same for each. (On init containers, only sidecars may have
// probes.)
func probeFields(prefix string) []Field {
	var out []Field
	for _, p := range []struct{ name, doc, whole string }{
		{"startupProbe", "While it has not succeeded, liveness and readiness probes do not run; failing it kills the container (restarted per `restartPolicy`).",
			"podshim runs it from the container's start until it passes once; until then the liveness and readiness probes wait. Failing it `failureThreshold` times in a row kills the container, which is restarted per `restartPolicy`."},
		{"livenessProbe", "Failing it (`failureThreshold` times in a row) kills the container, which is restarted per `restartPolicy`.",
			"podshim runs it every `periodSeconds` while the container runs; failing it `failureThreshold` times in a row kills the container, which is restarted per `restartPolicy` with the kubelet's back-off."},
		{"readinessProbe", "The container is ready once it passes; the unit becomes active (`READY=1`) when every container is ready, and `STATUS=` counts them.",
			"podshim runs it every `periodSeconds`; the container is ready while it passes (one without a readiness probe is ready once it runs). When every container of the pod is ready, podshim tells systemd `READY=1`: the pod's unit becomes active, which is what pods ordered after it (`podunit.io/after`) and a rollout wait for before they go on, and `STATUS=` counts the ready containers. The pod's `Ready` condition in `/pods`, `podunit get pods` and `podunit describe pod` follows it, and only a ready pod is among the endpoints of the Services whose selector matches it: one that fails its probe gets no new Service connections until it passes again."},
	} {
		base := prefix + "." + p.name
		out = append(out, Field{base, p.whole, Honoured})
		out = append(out, Field{base + ".exec.command", p.doc + " Exec: run in the container through the CRI; exit 0 passes. httpGet: a status of 200-399 passes.", Honoured})
		out = append(out, httpGetFields(base)...)
		out = append(out,
			Field{base + ".tcpSocket.port", "A number or a port name; connecting to the pod IP passes.", Honoured},
			Field{base + ".tcpSocket.host", "Default the pod IP.", Honoured},
			Field{base + ".grpc.port", "gRPC health check (grpc.health.v1) on the pod IP; SERVING passes.", Honoured},
			Field{base + ".grpc.service", "The service name to check; default the server's overall health.", Honoured},
			Field{base + ".initialDelaySeconds", "Default 0.", Honoured},
			Field{base + ".timeoutSeconds", "Default 1.", Honoured},
			Field{base + ".periodSeconds", "Default 10.", Honoured},
			Field{base + ".successThreshold", "Default 1; must be 1 for liveness and startup probes.", Honoured},
			Field{base + ".failureThreshold", "Default 3.", Honoured},
		)
	}
	return out
}

// volumeFields are the pod's volume sources podunit implements.
func volumeFields() []Field {
	rows := []Field{
		{"spec.volumes[].name", "Required. A DNS-1123 label, unique in the pod. A name podman writes (its volume's name and `-pvc`, which may have `_`, `.` or capitals) is accepted with a notice giving the rename Kubernetes would need.", Honoured},
		{"spec.volumes[].hostPath.path", "A path on the host, mounted as is.", Honoured},
		{"spec.volumes[].hostPath.type", "Checked before the container starts, as the kubelet does: `\"\"` (no check), `DirectoryOrCreate` (made 0755), `Directory`, `FileOrCreate` (made 0644), `File`, `Socket`, `CharDevice`, `BlockDevice`. A failed check leaves the container waiting with `CreateContainerConfigError`.", Honoured},
		{"spec.volumes[].emptyDir.medium", "`\"\"` (default): a directory under `/var/lib/podunit/pods/<uid>/volumes`; `Memory`: a tmpfs. Kept across container restarts, removed with the pod.", Honoured},
		{"spec.volumes[].emptyDir.sizeLimit", "With `medium: Memory`: the tmpfs size (default half of RAM, as tmpfs). On disk: a notice (the kubelet evicts a pod over it; podunit evicts no pods, so the directory is not limited).", Honoured},
		{"spec.volumes[].downwardAPI.items[].path", "Required: a relative file name in the volume.", Honoured},
		{"spec.volumes[].downwardAPI.items[].fieldRef.fieldPath", "`metadata.name`, `metadata.namespace`, `metadata.uid`, `metadata.labels`, `metadata.annotations` (all, one `key=\"value\"` a line), or one label or annotation.", Honoured},
		{"spec.volumes[].downwardAPI.items[].fieldRef.apiVersion", "Only `v1`.", Honoured},
		{"spec.volumes[].downwardAPI.items[].resourceFieldRef.containerName", "Required in a volume: whose resources.", Honoured},
		{"spec.volumes[].downwardAPI.items[].resourceFieldRef.resource", "As in `env[].valueFrom.resourceFieldRef`.", Honoured},
		{"spec.volumes[].downwardAPI.items[].resourceFieldRef.divisor", "Default `1`.", Honoured},
		{"spec.volumes[].downwardAPI.items[].mode", "File mode; default `defaultMode`.", Honoured},
		{"spec.volumes[].downwardAPI.defaultMode", "Default 0644. The volume is read-only in the container.", Honoured},
	}
	rows = append(rows, keyToPathFields("spec.volumes[].configMap", "name",
		"A ConfigMap in the pod's namespace, from any manifest file: each key becomes a file (or only `items`). Read-only in the container; a change to the ConfigMap replaces the pod.")...)
	rows = append(rows, keyToPathFields("spec.volumes[].secret", "secretName",
		"A Secret in the pod's namespace: each key becomes a file on a tmpfs (never on disk), or only `items`. Read-only in the container; a change replaces the pod.")...)
	rows = append(rows,
		Field{"spec.volumes[].persistentVolumeClaim.claimName", "A PersistentVolumeClaim in the pod's namespace, defined in any manifest file: its host directory (`/var/lib/podunit/volumes/<namespace>/<claim>`) is mounted, and outlives the pod. With `fsGroup` it is given to the group as an emptyDir is. A claim no manifest defines is a local volume of that name, as podman's named volume is (`podman kube generate` writes such claims): the same directory, made on first use and kept, with a notice (`strict: true`: an error); not when the pod's own file defines claims or a defined claim is a typo away, which is an error naming them (a typo would give the pod a new, empty volume). A name with `_`, `.` or capitals, as podman writes its volumes' names, is accepted with a notice giving the Kubernetes name to rename it to.", Honoured},
		Field{"spec.volumes[].persistentVolumeClaim.readOnly", "Mount it read-only in every container.", Honoured},
		Field{"spec.volumes[].image.reference", "Required. An OCI image (or artifact) whose files are mounted, read-only, as the kubelet's image volumes: pulled as a container's image is (with the pod's pull secrets) before the containers that mount it start, and `subPath` mounts one of its directories. Needs a runtime that mounts images (containerd 2.1 or later, CRI-O 1.31 or later): on an older one the pod is not started (reason `ImageVolumesNotSupported`, naming the runtime's version).", Honoured},
		Field{"spec.volumes[].image.pullPolicy", "`Always`, `IfNotPresent` or `Never`, as a container's `imagePullPolicy`, with the same default.", Honoured},
		Field{"spec.volumes[].projected.defaultMode", "Default 0644. A projected volume combines ConfigMaps, Secrets and downward API files in one read-only directory (on a tmpfs).", Honoured})
	rows = append(rows, keyToPathFields("spec.volumes[].projected.sources[].configMap", "name", "As a `configMap` volume's.")...)
	rows = append(rows, keyToPathFields("spec.volumes[].projected.sources[].secret", "name", "As a `secret` volume's.")...)
	rows = append(rows, Field{"spec.volumes[].projected.sources[].serviceAccountToken", "A token that an API server issues; there is none, so the source is left out of the volume (and the API server's `kube-root-ca.crt` ConfigMap, which such volumes also project, is used only if a manifest defines it): accepted, no token.", Noticed})
	for _, f := range rows {
		if strings.HasPrefix(f.Path, "spec.volumes[].downwardAPI.items[]") {
			rows = append(rows, Field{strings.Replace(f.Path, "spec.volumes[].downwardAPI", "spec.volumes[].projected.sources[].downwardAPI", 1), "As in a `downwardAPI` volume.", Honoured})
		}
	}
	return rows
}

// keyToPathFields are the fields of a ConfigMap or Secret volume source
// under base, whose object is named by nameField.
func keyToPathFields(base, nameField, doc string) []Field {
	rows := []Field{
		{base + "." + nameField, "Required. " + doc, Honoured},
		{base + ".items[].key", "Required: the key to project; a missing one is an error unless `optional`.", Honoured},
		{base + ".items[].path", "Required: its relative file name in the volume.", Honoured},
		{base + ".items[].mode", "File mode; default `defaultMode`.", Honoured},
		{base + ".optional", "A missing object (or key) makes an empty volume (or no file) instead of an error.", Honoured},
	}
	if !strings.Contains(base, "projected") {
		rows = append(rows, Field{base + ".defaultMode", "Default 0644.", Honoured})
	}
	return rows
}

// Kind is a kind of object a manifest may hold, with its supported fields.
type Kind struct {
	Name       string
	APIVersion string // default v1
	Type       reflect.Type
	Fields     []Field
	// Workload kinds hold a pod template: their Fields end with the Pod's
	// fields under spec.template, which the docs summarise in one row.
	Workload bool
	// TemplatePrefix is where a workload's pod template is: default
	// "spec.template.".
	TemplatePrefix string

	tree func() *fieldNode
}

// Template is where the kind's pod template is, for a workload.
func (k *Kind) Template() string {
	if k.TemplatePrefix == "" {
		return "spec.template."
	}
	return k.TemplatePrefix
}

// SameAsPod tells whether f is a field of the kind's pod template in the
// class the Pod's own field has: docs sum those up in one row, and list
// the others (a template's metadata.name) on their own.
func (k *Kind) SameAsPod(f Field) bool {
	rel, ok := strings.CutPrefix(f.Path, k.Template())
	if !k.Workload || !ok {
		return false
	}
	for _, pf := range Fields {
		if pf.Path == rel {
			return pf.Class == f.Class
		}
	}
	return false
}

// Version is the kind's apiVersion.
func (k *Kind) Version() string { return k.apiVersion() }

func (k *Kind) apiVersion() string {
	if k.APIVersion == "" {
		return "v1"
	}
	return k.APIVersion
}

// Kinds are the kinds podunit reads, Pod first. Their fields are complete
// once package initialization is.
var Kinds []*Kind

func init() {
	Kinds = []*Kind{
		{Name: "Pod", Type: reflect.TypeOf(corev1.Pod{}), Fields: Fields},
		{Name: "ConfigMap", Type: reflect.TypeOf(corev1.ConfigMap{}), Fields: configMapFields},
		{Name: "Secret", Type: reflect.TypeOf(corev1.Secret{}), Fields: secretFields},
		{Name: "PersistentVolumeClaim", Type: reflect.TypeOf(corev1.PersistentVolumeClaim{}), Fields: claimFields},
		{Name: "Service", Type: reflect.TypeOf(corev1.Service{}), Fields: serviceFields},
		{Name: "Deployment", APIVersion: "apps/v1", Type: reflect.TypeOf(appsv1.Deployment{}), Workload: true,
			Fields: workloadFields("Deployment", "apps/v1", Field{"spec.replicas", "Default 1: pods `<name>-0` … `<name>-<replicas-1>`; 0 runs none; at most 1000.", Honoured},
				Field{"spec.strategy.type", "`RollingUpdate` (default): a template change replaces the pods one at a time, each new pod ready before the next old one stops. `Recreate`: every old pod stops before any new one starts.", Honoured})},
		{Name: "ReplicaSet", APIVersion: "apps/v1", Type: reflect.TypeOf(appsv1.ReplicaSet{}), Workload: true,
			Fields: workloadFields("ReplicaSet", "apps/v1", Field{"spec.replicas", "As a Deployment's.", Honoured})},
		{Name: "StatefulSet", APIVersion: "apps/v1", Type: reflect.TypeOf(appsv1.StatefulSet{}), Workload: true,
			Fields: workloadFields("StatefulSet", "apps/v1", statefulSetFields...)},
		{Name: "ReplicationController", Type: reflect.TypeOf(corev1.ReplicationController{}), Workload: true,
			Fields: workloadFields("ReplicationController", "v1", Field{"spec.replicas", "As a ReplicaSet's: pods `<name>-0` …, replaced one at a time.", Honoured})},
		{Name: "DaemonSet", APIVersion: "apps/v1", Type: reflect.TypeOf(appsv1.DaemonSet{}), Workload: true,
			Fields: workloadFields("DaemonSet", "apps/v1")},
		{Name: "Job", APIVersion: "batch/v1", Type: reflect.TypeOf(batchv1.Job{}), Workload: true,
			Fields: workloadFields("Job", "batch/v1", jobFields...)},
		{Name: "CronJob", APIVersion: "batch/v1", Type: reflect.TypeOf(batchv1.CronJob{}), Workload: true,
			TemplatePrefix: "spec.jobTemplate.spec.template.", Fields: cronJobFields()},
	}
	for _, k := range Kinds {
		k.tree = sync.OnceValue(func() *fieldNode { return buildTree(k.Fields) })
	}
}

func findKind(name string) *Kind {
	for _, k := range Kinds {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// kindNames lists the kinds for an error message.
func kindNames() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = k.Name
	}
	return "podunit reads kind " + strings.Join(names, ", ")
}

// supported is the kind's fields as a tree, for the decoder.
func (k *Kind) supported() *fieldNode { return k.tree() }

// metadataFields are the object metadata every kind accepts; note describes
// what the name is for.
func metadataFields(kind, note string) []Field {
	rows := []Field{
		{"apiVersion", "Must be `v1`.", Honoured},
		{"kind", "Must be `" + kind + "`.", Honoured},
		{"metadata.name", "Required. A DNS-1123 subdomain. " + note, Honoured},
		{"metadata.namespace", "Default `default`. Pods use the " + kind + "s of their own namespace.", Honoured},
		{"metadata.labels", "Kept; podunit does not select by them.", Honoured},
		{"metadata.annotations", "Kept.", Honoured},
		{"metadata.uid", "Written by an API server; dropped without a word.", Dropped},
	}
	return append(rows, serverFields("")...)
}

// jobFields are a Job's own fields.
var jobFields = []Field{
	{"spec.backoffLimit", "Default 6: how often a failed container is run again before the Job fails (its unit then stays failed). A Job that completed stays completed across syncs and reboots until its manifest changes.", Honoured},
	{"spec.completions", "Only 1 (the default): a Job runs one pod here.", Honoured},
	{"spec.parallelism", "Only 1 (the default).", Honoured},
}

// cronJobFields are a CronJob's: its own, then a Job's under
// spec.jobTemplate.
func cronJobFields() []Field {
	rows := []Field{
		{"apiVersion", "Must be `batch/v1`.", Honoured},
		{"kind", "Must be `CronJob`.", Honoured},
		{"metadata.name", "Required, at most 52 characters. Its timer is `cronjob-<name>.timer`; each run is a Job's pod of its own, `<name>-<minutes since the epoch of the scheduled time>` (as the CronJob controller names its Jobs), annotated `podunit.io/cronjob: <name>`.", Honoured},
		{"metadata.namespace", "Default `default`; its runs' namespace.", Honoured},
		{"metadata.labels", "Kept on the object; the runs get the pod template's.", Honoured},
		{"metadata.annotations", "Kept on the object; the runs get the pod template's.", Honoured},
		{"metadata.uid", "Written by an API server; dropped without a word (each run gets its own UID).", Dropped},
		{"spec.schedule", "Required. Five-field cron syntax as Kubernetes reads it (`*/5 * * * *`, names such as `mon-fri` and `jan`, `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`; not `@every`), turned into the timer's `OnCalendar=` expressions: systemd waits, persistently, so a run missed while the machine was off starts at boot (see `startingDeadlineSeconds`). `systemctl list-timers` shows the next run.", Honoured},
		{"spec.timeZone", "A tz database name (`Etc/UTC`, `Europe/Berlin`); default the machine's local time zone.", Honoured},
		{"spec.concurrencyPolicy", "`Allow` (default): runs may overlap. `Forbid`: a run whose previous one still runs is skipped. `Replace`: the running one is stopped and the new one starts.", Honoured},
		{"spec.suspend", "`true`: no timer, no new runs; runs under way go on.", Honoured},
		{"spec.startingDeadlineSeconds", "A run that starts later than this after its scheduled time (the machine was off or busy) is skipped, as the controller skips it. Default: never skipped.", Honoured},
		{"spec.successfulJobsHistoryLimit", "Default 3: finished runs kept, with their units (`systemctl status`, `podunit get pods`) and their journal lines; older ones are removed after each run.", Honoured},
		{"spec.failedJobsHistoryLimit", "Default 1: as `successfulJobsHistoryLimit`, for failed runs.", Honoured},
		{"spec.jobTemplate.metadata.labels", "Kept; the runs get the pod template's labels, as Jobs' pods do.", Honoured},
		{"spec.jobTemplate.metadata.annotations", "Kept; the runs get the pod template's annotations.", Honoured},
		{"spec.jobTemplate.metadata.name", "Jobs are named after the CronJob and the scheduled time, as the controller names them: accepted, no effect.", Noticed},
	}
	rows = append(rows, serverFields("")...)
	rows = append(rows, statusField)
	rows = append(rows, serverFields("spec.jobTemplate.")...)
	for _, f := range workloadFields("Job", "batch/v1", jobFields...) {
		if strings.HasPrefix(f.Path, "spec.") {
			rows = append(rows, Field{"spec.jobTemplate." + f.Path, f.Doc, f.Class})
		}
	}
	return rows
}

// statefulSetFields are a StatefulSet's own fields.
var statefulSetFields = append([]Field{
	{"spec.replicas", "Default 1: pods `<name>-0` … `<name>-<replicas-1>`, each with a stable name, host name and claims.", Honoured},
	{"spec.serviceName", "The pods' subdomain: pod `<name>-0` has host name `<name>-0` and the fully qualified name `<name>-0.<serviceName>.<namespace>.svc.cluster.local` in its `/etc/hosts`, as the StatefulSet controller sets them.", Honoured},
	{"spec.podManagementPolicy", "`OrderedReady` (default): pod `<name>-<i>` starts once `<name>-<i-1>` is ready, one at a time, by the StatefulSet's rollout unit (`podunit-rollout-…`; the sync never waits). `Parallel`: all at once.", Honoured},
	{"spec.volumeClaimTemplates[].metadata.name", "Required. Each pod gets its own claim `<template>-<name>-<i>`, a host directory kept across replacements and when the StatefulSet goes (`podunit volume rm` removes it), mounted where the template's volume `<template>` is.", Honoured},
	{"spec.volumeClaimTemplates[].metadata.labels", "Kept on the claims.", Honoured},
	{"spec.volumeClaimTemplates[].metadata.annotations", "Kept on the claims.", Honoured},
	{"spec.volumeClaimTemplates[].spec.accessModes", "As a PersistentVolumeClaim's.", Honoured},
	{"spec.volumeClaimTemplates[].spec.resources.requests", "As a PersistentVolumeClaim's.", Honoured},
	{"spec.volumeClaimTemplates[].spec.storageClassName", "As a PersistentVolumeClaim's.", Honoured},
	{"spec.volumeClaimTemplates[].spec.volumeMode", "As a PersistentVolumeClaim's.", Honoured},
	{"spec.volumeClaimTemplates[].status", "Written by an API server; dropped without a word.", Dropped},
}, serverFields("spec.volumeClaimTemplates[].")...)

var configMapFields = append(metadataFields("ConfigMap", "Pods refer to it by this name, from any manifest file."),
	Field{"data", "Keys (`[-._a-zA-Z0-9]+`) and their text values. A change restarts exactly the pods that use the ConfigMap.", Honoured},
	Field{"binaryData", "Keys and base64-encoded values; a key may not also be in `data`.", Honoured},
	Field{"immutable", "Accepted; every ConfigMap is read afresh at each sync.", Honoured},
)

var secretFields = append(metadataFields("Secret", "Pods refer to it by this name, from any manifest file."),
	Field{"data", "Keys and base64-encoded values. podunit keeps them only in root-only files (0600) and never logs them. A change restarts exactly the pods that use the Secret.", Honoured},
	Field{"stringData", "Keys and text values, merged over `data` as the API server does.", Honoured},
	Field{"type", "Default `Opaque`; any type is accepted and not checked.", Honoured},
	Field{"immutable", "Accepted; every Secret is read afresh at each sync.", Honoured},
)

var claimFields = append(metadataFields("PersistentVolumeClaim",
	"Its volume is the host directory `/var/lib/podunit/volumes/<namespace>/<name>`: made on first use, kept across pod replacements and when the claim's file is deleted, removed only by `podunit volume rm <namespace>/<name>`."),
	Field{"spec.accessModes", "Accepted (`ReadWriteOnce`, `ReadWriteOncePod`, `ReadOnlyMany`, `ReadWriteMany`); on one machine every mode holds.", Honoured},
	Field{"spec.resources.requests", "`storage` only, accepted and shown; a directory on the host's file system is not limited in size.", Honoured},
	Field{"spec.storageClassName", "Accepted and ignored: there is one kind of storage, the host directory.", Honoured},
	Field{"spec.volumeMode", "Only `Filesystem`.", Honoured},
	Field{"spec.volumeName", "Binding to a PersistentVolume is an API server's: the claim is a host directory here. Accepted, no effect.", Noticed},
	statusField,
)

// serviceFields are a Service's. What no row lists is rejected, among it
// spec.loadBalancerSourceRanges: podunit's rules do not filter by source,
// and a firewall that silently let everyone in would be worse than an error.
var serviceFields = append([]Field{
	{"apiVersion", "Must be `v1`.", Honoured},
	{"kind", "Must be `Service`.", Honoured},
	{"metadata.name", "Required. A DNS-1123 label (lower-case letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters), as the API server requires since Kubernetes v1.37 (before it, a letter first): the Service's DNS name is `<name>.<namespace>.svc.<clusterDomain>`, so no two Services' names can collide in DNS.", Honoured},
	{"metadata.namespace", "Default `default`. The Service selects the pods of its namespace; pods of the namespace resolve it by its name alone.", Honoured},
	{"metadata.labels", "Kept; nothing selects Services by them.", Honoured},
	{"metadata.annotations", "Kept.", Honoured},
	{"metadata.uid", "Written by an API server; dropped without a word.", Dropped},
	{"status", "The load balancer's state as an API server last saw it; dropped without a word. podunit serves a LoadBalancer Service on the node's own addresses, which the status API's `/services` and `podunit get services` report as its `status.loadBalancer.ingress`, as k3s's ServiceLB reports a node's.", Dropped},
	{"spec.type", "`ClusterIP` (default): a virtual address from `serviceClusterIPRange` (default 10.96.0.0/12) that spreads connections over the ready pods the selector matches. `NodePort`: also a port on every address of the node. `LoadBalancer`: as `NodePort`, and the Service's `port` on the node's own addresses, as k3s's ServiceLB serves it on one node. `ExternalName`: a DNS alias (a CNAME) to `externalName`, no address.", Honoured},
	{"spec.clusterIP", "Empty (default): the sync gives the Service a free address of `serviceClusterIPRange`, kept across edits, restarts and reboots until its manifest is removed. An IPv4 address inside the range (not its first or last, nor the resolver's `clusterDNS`): that address; two Services asking for one are an error naming both files, the first keeps it. An address the sync gave another Service before stays that Service's, as in Kubernetes the first to have it keeps it: a manifest asking for it is an error naming both, and its Service keeps its last good definition if it had one. `podunit get services` shows each Service's address. `None`: a headless Service without a virtual address, whose name answers the ready pods' addresses (ClusterIP Services only). Not with `ExternalName`.", Honoured},
	{"spec.clusterIPs", "What an API server writes: `[<clusterIP>]`. Its first address must be `clusterIP` (and gives it when `clusterIP` is empty); a dual-stack Service's second, IPv6, address is left out with a notice: podunit's Services are IPv4.", Honoured},
	{"spec.ipFamilies", "`[IPv4]` (default). A second family, `IPv6`, is left out with a notice; `IPv6` first is refused: podunit's Services are IPv4, as on a cluster without IPv6 Service addresses.", Honoured},
	{"spec.ipFamilyPolicy", "`SingleStack` (default). `PreferDualStack` gives a notice and the Service is single-stack IPv4, as on a cluster without IPv6 Service addresses; `RequireDualStack` is refused, as such a cluster's API server refuses it.", Honoured},
	{"spec.ports[].name", "A DNS-1123 label, unique in the Service; required when it has several ports. It names the port's SRV record (`_<name>._<protocol>.<service>.<namespace>.svc.<clusterDomain>`) and the endpoints' port.", Honoured},
	{"spec.ports[].protocol", "`TCP` (default) or `UDP`. `SCTP` is refused: podunit's rules do not carry it.", Honoured},
	{"spec.ports[].port", "Required, 1-65535: the port on the ClusterIP, on the external IPs and, for a LoadBalancer, on the node's addresses. Each port and protocol once in a Service; at most 100 ports, as an EndpointSlice holds.", Honoured},
	{"spec.ports[].targetPort", "The pods' port: a number (1-65535) or the name of a container port, resolved per pod as Kubernetes resolves it (a pod without a port of that name is no endpoint of it). Default `port`.", Honoured},
	{"spec.ports[].nodePort", "`NodePort` and `LoadBalancer` only: the port on every address of the node, inside the node port range (default 30000-32767). Empty: the sync picks a free one (never one a manifest asks for), kept across edits and reboots. Two Services asking for the same port and protocol, or a pod's `hostPort` on it, are an error naming both files; the first keeps it. A port the sync gave another Service stays that Service's; a pod's `hostPort` on a port the sync picked takes it, and that Service's node port moves (the sync's journal says so).", Honoured},
	{"spec.ports[].appProtocol", "Kept, a hint for ingress controllers and meshes; connections are forwarded by port whatever their protocol, as kube-proxy forwards them.", Honoured},
	{"spec.selector", "The labels of the pods that serve the Service, in its namespace: its endpoints are the ready ones among them. Empty: no endpoints (there are no hand-written Endpoints here to give it some). A selector that no pod of the manifests has gives a notice, even with `strict: true` not an error: Kubernetes accepts it, and the pods may come later.", Honoured},
	{"spec.externalIPs", "IPv4 addresses on which the node also accepts the Service's ports, as kube-proxy does (not 0.0.0.0, loopback, link-local or multicast); routing them to this node is the network's work.", Honoured},
	{"spec.externalName", "With `type: ExternalName`, required: a DNS name (a DNS-1123 subdomain), to which the Service's name answers a CNAME. Not with other types.", Honoured},
	{"spec.sessionAffinity", "`None` (default) or `ClientIP`: a client's connections go to the pod they reached before, until `timeoutSeconds` passed since its last one.", Honoured},
	{"spec.sessionAffinityConfig.clientIP.timeoutSeconds", "With `ClientIP` only: 1-86400, default 10800 (3 hours).", Honoured},
	{"spec.publishNotReadyAddresses", "Every selected pod is an endpoint whether ready or not (a StatefulSet's peers find each other's names before they are ready).", Honoured},
	{"spec.internalTrafficPolicy", "`Cluster` (default) or `Local`. On one node every endpoint is local, so both pick the same endpoints, exactly as Kubernetes would on this node: no notice.", Honoured},
	{"spec.externalTrafficPolicy", "`Cluster` (default) or `Local`, for `NodePort` and `LoadBalancer` Services and those with `externalIPs`. On one node every endpoint is local, so both pick the same endpoints; `Local` gives a notice, as the node's rules do not promise to keep the client's source address.", Honoured},
	{"spec.allocateLoadBalancerNodePorts", "`LoadBalancer` only. `true` (default): each port gets a node port as for `NodePort`; `false`: only the node ports given.", Honoured},
	{"spec.healthCheckNodePort", "Serves a cloud load balancer's health checks for `externalTrafficPolicy: Local`; no load balancer stands in front of this node: accepted, no port is served.", Noticed},
	{"spec.loadBalancerIP", "A LoadBalancer Service is served on the node's own addresses, as k3s's ServiceLB serves it, and cannot take another: accepted, this address is not used (the field is deprecated in Kubernetes too).", Noticed},
	{"spec.loadBalancerClass", "Chooses which controller implements a LoadBalancer; podunit serves every LoadBalancer Service itself: accepted, no effect.", Noticed},
	{"spec.trafficDistribution", "Prefers endpoints close to the client among zones and nodes; one node: accepted, no effect.", Noticed},
}, serverFields("")...)

// workloadFields are the fields of a workload kind: its own, then the
// Pod's under spec.template.
func workloadFields(kind, apiVersion string, own ...Field) []Field {
	pods := map[string]string{
		"Deployment": "Its pods", "ReplicaSet": "Its pods", "ReplicationController": "Its pods", "StatefulSet": "Its pods",
		"DaemonSet": "Its one pod (one machine)", "Job": "Its one pod",
	}[kind]
	rows := []Field{
		{"apiVersion", "Must be `" + apiVersion + "`.", Honoured},
		{"kind", "Must be `" + kind + "`.", Honoured},
		{"metadata.name", "Required. " + pods + " are named after it and annotated `podunit.io/owner: " + kind + "/<name>`.", Honoured},
		{"metadata.namespace", "Default `default`; its pods' namespace.", Honoured},
		{"metadata.labels", "Kept on the object; the pods get the template's.", Honoured},
		{"metadata.annotations", "Kept on the object; the pods get the template's.", Honoured},
	}
	// kubectl sends the template's name and the API server drops it;
	// `podman kube generate --type deployment` writes one.
	rows = append(rows, Field{"spec.template.metadata.name", "Ignored by Kubernetes too (the API server drops it): the pods are named after the " + kind + ". Accepted, no effect.", Noticed})
	if kind == "ReplicationController" {
		rows = append(rows, Field{"spec.selector", "Labels that must match the template's, as the API server checks; default the template's labels.", Honoured})
	} else {
		rows = append(rows, Field{"spec.selector.matchLabels", "Must match the template's labels, as the API server checks (`matchExpressions` is not supported).", Honoured})
	}
	rows = append(rows, own...)
	rows = append(rows, serverFields("")...)
	rows = append(rows, statusField)
	rows = append(rows, workloadPolicyFields(kind)...)
	for _, f := range Fields {
		switch {
		case strings.HasPrefix(f.Path, "spec."), f.Path == "metadata.labels", f.Path == "metadata.annotations":
			rows = append(rows, Field{"spec.template." + f.Path, f.Doc, f.Class})
		}
	}
	return append(rows, serverFields("spec.template.")...)
}

// fieldNode is a field list as a tree keyed by JSON field name, for the
// decoder. A node that a row names has that row's class and doc; a node
// without children covers everything below it.
type fieldNode struct {
	class    Class
	doc      string
	children map[string]*fieldNode
}

func buildTree(fields []Field) *fieldNode {
	root := &fieldNode{}
	for _, f := range fields {
		node := root
		for _, part := range strings.Split(strings.ReplaceAll(f.Path, "[]", ""), ".") {
			next, ok := node.children[part]
			if !ok {
				if node.children == nil {
					node.children = map[string]*fieldNode{}
				}
				next = &fieldNode{}
				node.children[part] = next
			}
			node = next
		}
		node.class, node.doc = f.Class, f.Doc
	}
	return root
}

// httpGetFields are the fields of an httpGet action (a probe's or a hook's)
// under base.
func httpGetFields(base string) []Field {
	return []Field{
		{base + ".httpGet.path", "Default `/`. The request is made by podunit from the host to the pod IP, never from inside the image.", Honoured},
		{base + ".httpGet.port", "A number or the name of a container port.", Honoured},
		{base + ".httpGet.host", "Default the pod IP.", Honoured},
		{base + ".httpGet.scheme", "`HTTP` (default) or `HTTPS` (certificates not verified, as the kubelet).", Honoured},
		{base + ".httpGet.httpHeaders[].name", "Header sent with the request.", Honoured},
		{base + ".httpGet.httpHeaders[].value", "Its value.", Honoured},
	}
}
