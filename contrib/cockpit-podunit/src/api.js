// The page's I/O: the status API over Cockpit's HTTP channel on its unix
// socket, systemd over D-Bus, and commands through cockpit.spawn. Each call
// asks for administrative access when the session has it ("try") and runs as
// the logged-in user otherwise (a member of the podunit group may read the
// status socket; systemd then refuses actions, and the page says why).
import cockpit from "./cockpit.js";

// StatusSocket is podunit-status.socket's ListenStream=.
export const StatusSocket = "/run/podunit/status.sock";

const http = cockpit.http(StatusSocket, { superuser: "try" });

// promise turns a Cockpit deferred into a Promise that rejects with an Error
// whose message says why (and keeps the answer's body when there is one).
function promise(d) {
    return new Promise((resolve, reject) => {
        d.then(resolve, (ex, body) => {
            const e = new Error(cockpit.message(ex));
            e.status = ex && ex.status;
            e.body = body;
            reject(e);
        });
    });
}

// getPods is /pods: the kubelet's PodList.
export async function getPods() {
    const body = await promise(http.get("/pods"));
    return JSON.parse(body).items || [];
}

// getPod is /pods/NAMESPACE/NAME.
export async function getPod(namespace, name) {
    return JSON.parse(await promise(http.get(`/pods/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`)));
}

// getHealth is /healthz?verbose's text, whether healthy (200) or not (500).
export async function getHealth() {
    try {
        return await promise(http.get("/healthz", { verbose: "" }));
    } catch (e) {
        if (e.status === 500 && e.body) return e.body;
        throw e;
    }
}

// getServices is /services: the Services podunit has, or [] when it has none.
export async function getServices() {
    try {
        return JSON.parse(await promise(http.get("/services"))).items || [];
    } catch (e) {
        if (e.status === 404) return [];
        throw e;
    }
}

// getEndpointSlices is /endpointslices: the Services' endpoints.
export async function getEndpointSlices() {
    try {
        return JSON.parse(await promise(http.get("/endpointslices"))).items || [];
    } catch (e) {
        if (e.status === 404) return [];
        throw e;
    }
}

const systemd = () => cockpit.dbus("org.freedesktop.systemd1", { superuser: "try" });
const managerPath = "/org/freedesktop/systemd1";
const manager = "org.freedesktop.systemd1.Manager";

async function unitPath(unit) {
    const [path] = await promise(systemd().call(managerPath, manager, "LoadUnit", [unit]));
    return path;
}

async function properties(path, iface) {
    const [props] = await promise(systemd().call(path, "org.freedesktop.DBus.Properties", "GetAll", [iface]));
    const out = {};
    for (const k in props) out[k] = props[k].v;
    return out;
}

// unitState is a unit's state as systemctl status shows it, with its
// service's restarts and slice.
export async function unitState(unit) {
    const path = await unitPath(unit);
    const u = await properties(path, "org.freedesktop.systemd1.Unit");
    const s = await properties(path, "org.freedesktop.systemd1.Service");
    return {
        activeState: u.ActiveState,
        subState: u.SubState,
        since: Number(u.StateChangeTimestamp || 0) / 1000, // µs → ms
        activeEnter: Number(u.ActiveEnterTimestamp || 0),
        mainPID: s.MainPID,
        restarts: s.NRestarts,
        statusText: s.StatusText,
        slice: s.Slice,
    };
}

// sliceUsage is one sample of systemd's accounting of a slice: memory,
// CPU time (absent where systemd keeps none: cgroup v1) and tasks.
export async function sliceUsage(slice) {
    const p = await properties(await unitPath(slice), "org.freedesktop.systemd1.Slice");
    // systemd says "not counted" with UINT64_MAX, which reaches the page as
    // -1 (cockpit-bridge writes D-Bus integers as JSON's signed 64 bits) or,
    // where a bridge keeps it unsigned, as 2^64 (a JavaScript number).
    const num = v => (v === undefined || v === null || Number(v) < 0 || Number(v) >= 2 ** 64 - 1 ? null : Number(v));
    return { at: Date.now(), memory: num(p.MemoryCurrent), cpuNSec: num(p.CPUUsageNSec), tasks: num(p.TasksCurrent) };
}

// unitAction is systemctl restart|stop|start UNIT, through systemd's Manager.
export async function unitAction(action, unit) {
    const method = { restart: "RestartUnit", stop: "StopUnit", start: "StartUnit" }[action];
    await promise(systemd().call(managerPath, manager, method, [unit, "replace"]));
}

// followJournal streams the journal of unit (and container, when given)
// into onEntry, from the last lines on; it returns a function that stops.
export function followJournal(unit, container, onEntry, onError) {
    const argv = ["journalctl", "--no-pager", "-o", "json", "-n", "100", "-f", "-u", unit];
    if (container) argv.push("CONTAINER_NAME=" + container);
    // journalctl's own words (its stderr) come in the stream too: "No
    // journal files were opened due to insufficient permissions." is why a
    // user outside systemd-journal sees nothing, and the page says so.
    const proc = cockpit.spawn(argv, { superuser: "try", err: "out" });
    let partial = "";
    proc.stream(data => {
        const lines = (partial + data).split("\n");
        partial = lines.pop();
        for (const l of lines) {
            if (!l) continue;
            if (!l.startsWith("{")) {
                if (!l.startsWith("-- ")) onError(new Error(l)); // not "-- No entries --"
                continue;
            }
            try {
                const e = JSON.parse(l);
                onEntry({
                    at: Number(e.__REALTIME_TIMESTAMP) / 1000,
                    container: e.CONTAINER_NAME || "",
                    pid: e._PID || "",
                    message: Array.isArray(e.MESSAGE) ? new TextDecoder().decode(new Uint8Array(e.MESSAGE)) : String(e.MESSAGE ?? ""),
                });
            } catch (_) { /* a line cut by the stream's end */ }
        }
    });
    proc.then(() => {}, ex => { if (ex.problem !== "cancelled") onError(new Error(cockpit.message(ex))) });
    return () => proc.close("cancelled");
}

// readManifest is the manifest file's text.
export function readManifest(path) {
    return promise(cockpit.file(path, { superuser: "try" }).read());
}

// validate runs podunit validate FILE: its output, and whether it passed.
export async function validate(path) {
    try {
        const out = await promise(cockpit.spawn(["podunit", "validate", path], { superuser: "try", err: "out" }));
        return { ok: true, output: out };
    } catch (e) {
        return { ok: false, output: e.body || e.message };
    }
}

// removeManifest removes the manifest file; the path unit then stops the pod.
export function removeManifest(path) {
    return promise(cockpit.spawn(["rm", "--", path], { superuser: "require", err: "message" }));
}

// admin tells whether the session may act (administrative access), and
// calls onChange when that changes.
export function watchAdmin(onChange) {
    const perm = cockpit.permission({ admin: true });
    const update = () => onChange(perm.allowed === true);
    perm.addEventListener("changed", update);
    update();
    return () => perm.close();
}
