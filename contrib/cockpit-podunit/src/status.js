// Pure translation of the status API's answers into what the page shows:
// the same words and numbers as `podunit get pods` (cmd/podunit/get.go).
// No I/O here: api.js fetches, the views render.

export const ConditionManifestValid = "podunit.io/ManifestValid";
export const ConditionUpToDate = "podunit.io/UpToDate";

// statusWord is kubectl's STATUS column as podunit's CLI prints it:
// InvalidManifest for a pod running on its last good spec, RolledBack,
// RollingBack or ImagePullBackOff for one whose new generation did not
// replace it, then the
// pod's reason, a waiting or terminated container's reason, or the phase.
export function statusWord(pod) {
    const st = pod.status || {};
    for (const c of st.conditions || []) {
        if (c.type === ConditionManifestValid && c.status === "False")
            return "InvalidManifest";
        if (c.type === ConditionUpToDate && c.status === "False" &&
            (c.reason === "RolledBack" || c.reason === "RollingBack" || c.reason === "ImagePullBackOff"))
            return c.reason;
    }
    if (st.phase === "Failed" && st.reason)
        return st.reason;
    if (st.phase === "Succeeded")
        return "Completed";
    if (st.phase === "Failed")
        return "Error";
    const inits = (pod.spec && pod.spec.initContainers) || [];
    const initStatuses = st.initContainerStatuses || [];
    for (let i = 0; i < initStatuses.length; i++) {
        const cs = initStatuses[i];
        const state = cs.state || {};
        const sidecar = i < inits.length && inits[i].restartPolicy !== undefined;
        if (state.waiting && state.waiting.reason && state.waiting.reason !== "PodInitializing")
            return "Init:" + state.waiting.reason;
        if (sidecar && state.running)
            continue;
        if (state.terminated && (state.terminated.exitCode || 0) === 0)
            continue;
        return `Init:${i}/${inits.length}`;
    }
    for (const cs of st.containerStatuses || []) {
        const state = cs.state || {};
        if (state.waiting && state.waiting.reason)
            return state.waiting.reason;
        if (state.terminated && state.terminated.reason)
            return state.terminated.reason;
    }
    return st.phase || "Pending";
}

// severity sorts a status word into what a person should look at:
// "ok" (runs as asked), "warning" (runs, but not as the manifest asks) or
// "danger" (does not run).
export function severity(word) {
    switch (word) {
    case "Running":
    case "Completed":
        return "ok";
    case "InvalidManifest":
    case "RolledBack":
    case "RollingBack":
    case "Pending":
    case "ContainerCreating":
    case "PodInitializing":
        return "warning";
    default:
        return word.startsWith("Init:") ? "warning" : "danger";
    }
}

// shortDuration is kubectl's AGE: 45s, 12m, 5h, 3d.
export function shortDuration(ms) {
    const s = Math.floor(ms / 1000);
    if (s < 0) return "0s";
    if (s < 120) return `${s}s`;
    if (s < 7200) return `${Math.floor(s / 60)}m`;
    if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`;
    return `${Math.floor(s / 86400)}d`;
}

// podRow is one row of the overview: get pods -o wide with the namespace.
export function podRow(pod, now) {
    const st = pod.status || {};
    const ann = (pod.metadata && pod.metadata.annotations) || {};
    let ready = 0;
    let restarts = 0;
    for (const cs of st.containerStatuses || []) {
        if (cs.ready) ready++;
        restarts += cs.restartCount || 0;
    }
    for (const cs of st.initContainerStatuses || [])
        restarts += cs.restartCount || 0;
    const total = ((pod.spec && pod.spec.containers) || []).length;
    const word = statusWord(pod);
    return {
        key: `${pod.metadata.namespace}/${pod.metadata.name}`,
        namespace: pod.metadata.namespace,
        name: pod.metadata.name,
        ready: `${ready}/${total}`,
        status: word,
        severity: severity(word),
        restarts,
        age: st.startTime ? shortDuration(now - Date.parse(st.startTime)) : "<unknown>",
        ip: st.podIP || "<none>",
        unit: ann["podunit.io/unit"] || "",
        source: ann["podunit.io/manifest"] || "",
    };
}

// podRows is the overview's table: sorted by namespace and name as get pods
// sorts, keeping the rows whose any column holds filter (case-insensitive).
export function podRows(pods, now, filter) {
    const f = (filter || "").trim().toLowerCase();
    return pods.map(p => podRow(p, now))
            .filter(r => !f || [r.namespace, r.name, r.status, r.ip, r.source, r.unit]
                    .some(v => v.toLowerCase().includes(f)))
            .sort((a, b) => a.namespace === b.namespace
                ? a.name.localeCompare(b.name)
                : a.namespace.localeCompare(b.namespace));
}

// summary counts the node's pods: running (Running and ready), failing
// (status of severity danger), and all.
export function summary(pods) {
    let running = 0;
    let failing = 0;
    for (const p of pods) {
        const r = podRow(p, 0);
        if (r.status === "Running") running++;
        if (r.severity === "danger") failing++;
    }
    return { total: pods.length, running, failing };
}

// parseHealth reads /healthz?verbose ("[+]name ok", "[-]name failed: why")
// into checks.
export function parseHealth(text) {
    const checks = [];
    for (const line of (text || "").split("\n")) {
        const m = /^\[([+-])\](\S+) (.*)$/.exec(line);
        if (m) checks.push({ name: m[2], ok: m[1] === "+", text: m[3] });
    }
    return checks;
}

// condition returns the pod's condition of type, or undefined.
export function condition(pod, type) {
    return ((pod.status && pod.status.conditions) || []).find(c => c.type === type);
}

// containerRows is the pod page's containers: spec and status joined by name.
export function containerRows(pod) {
    const statuses = new Map(((pod.status && pod.status.containerStatuses) || []).map(cs => [cs.name, cs]));
    return ((pod.spec && pod.spec.containers) || []).map(c => {
        const cs = statuses.get(c.name) || {};
        const state = cs.state || {};
        let stateText = "unknown";
        if (state.running)
            stateText = "running since " + state.running.startedAt;
        else if (state.waiting)
            stateText = "waiting: " + (state.waiting.reason || "") + (state.waiting.message ? " (" + state.waiting.message + ")" : "");
        else if (state.terminated)
            stateText = `terminated: ${state.terminated.reason || ""} exit ${state.terminated.exitCode}`;
        const last = cs.lastState && cs.lastState.terminated;
        return {
            name: c.name,
            image: c.image,
            imageID: cs.imageID || "",
            ready: !!cs.ready,
            state: stateText,
            restarts: cs.restartCount || 0,
            lastTermination: last
                ? `${last.reason || "exited"} (exit ${last.exitCode}) at ${last.finishedAt}` + (last.message ? ": " + last.message : "")
                : "",
        };
    });
}

// bytes prints a byte count as systemd does: 12.3M.
export function bytes(n) {
    const units = ["B", "K", "M", "G", "T"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
    return (i === 0 ? String(n) : n.toFixed(1)) + units[i];
}

// serviceRows is the overview's Services: each Service (as `podunit get
// services -o wide` shows it) with its endpoints from the EndpointSlices
// labelled with its name: "IP:PORT" of the ready ones, and how many are not.
export function serviceRows(services, slices) {
    const bySvc = new Map();
    for (const sl of slices || []) {
        const name = ((sl.metadata && sl.metadata.labels) || {})["kubernetes.io/service-name"];
        if (!name) continue;
        const key = `${sl.metadata.namespace}/${name}`;
        bySvc.set(key, (bySvc.get(key) || []).concat([sl]));
    }
    return (services || []).map(s => {
        const key = `${s.metadata.namespace}/${s.metadata.name}`;
        const spec = s.spec || {};
        const ready = [];
        let notReady = 0;
        for (const sl of bySvc.get(key) || []) {
            const ports = (sl.ports || []).map(p => p.port).filter(p => p !== undefined);
            for (const ep of sl.endpoints || []) {
                const isReady = !ep.conditions || ep.conditions.ready !== false;
                for (const addr of ep.addresses || []) {
                    if (!isReady) { notReady++; continue }
                    if (ports.length === 0) ready.push(addr);
                    for (const p of ports) ready.push(addr.includes(":") ? `[${addr}]:${p}` : `${addr}:${p}`);
                }
            }
        }
        return {
            key,
            namespace: s.metadata.namespace,
            name: s.metadata.name,
            type: spec.type || "ClusterIP",
            clusterIP: (spec.clusterIPs || [spec.clusterIP]).filter(Boolean).join(",") || "<none>",
            ports: (spec.ports || []).map(p => `${p.port}${p.nodePort ? ":" + p.nodePort : ""}/${p.protocol || "TCP"}`).join(","),
            endpoints: ready.sort(),
            notReady,
        };
    }).sort((a, b) => a.key.localeCompare(b.key));
}

// cpuPercent turns samples of a slice's CPU time ({at: ms, cpuNSec}) into
// its use between each sample and the one before, in percent of one CPU;
// null where systemd counts none (cgroup v1) or for the first sample.
export function cpuPercent(samples) {
    return samples.map((s, i) => {
        const p = samples[i - 1];
        const value = p && s.cpuNSec !== null && p.cpuNSec !== null && s.at > p.at
            ? (s.cpuNSec - p.cpuNSec) / 1e6 / (s.at - p.at) * 100
            : null;
        return { at: s.at, value };
    });
}

// logsLocation is where Cockpit's own Logs page shows the journal of unit
// (all of it, at every priority) or of one of its containers: the page
// turns an upper-case option into a journal match, as journalctl does
// with FIELD=value, so the container's lines are its unit's entries with
// that CONTAINER_NAME.
export function logsLocation(unit, container) {
    const q = container
        ? `prio=debug&_SYSTEMD_UNIT=${encodeURIComponent(unit)}&CONTAINER_NAME=${encodeURIComponent(container)}`
        : `prio=debug&service=${encodeURIComponent(unit)}`;
    return "/system/logs#/?" + q;
}
