// Table-driven tests of src/status.js: the page's words are get pods'.
import { test } from "node:test";
import assert from "node:assert/strict";
import { statusWord, podRows, summary, parseHealth, shortDuration, containerRows, serviceRows, cpuPercent, logsLocation } from "../src/status.js";

function pod(name, status, spec) {
    return {
        metadata: { namespace: "default", name, annotations: { "podunit.io/unit": `pod-${name}.service`, "podunit.io/manifest": `/etc/podunit/manifests/${name}.yaml` } },
        spec: spec || { containers: [{ name: "c", image: "busybox" }] },
        status,
    };
}

const running = pod("web", { phase: "Running", podIP: "10.88.0.5", startTime: "2026-12-07T10:00:00Z", containerStatuses: [{ name: "c", ready: true, restartCount: 0, state: { running: { startedAt: "2026-12-07T10:00:01Z" } } }] });
const crashing = pod("crash", { phase: "Running", containerStatuses: [{ name: "c", ready: false, restartCount: 4, state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 40s" } }, lastState: { terminated: { exitCode: 1, reason: "Error", finishedAt: "2026-12-07T10:01:00Z" } } }] });
const rolledBack = pod("gate", { phase: "Running", conditions: [{ type: "podunit.io/UpToDate", status: "False", reason: "RolledBack", message: "generation 2 crashed" }], containerStatuses: [{ name: "c", ready: true, restartCount: 0, state: { running: {} } }] });
const invalid = pod("bad", { phase: "Running", conditions: [{ type: "podunit.io/ManifestValid", status: "False", reason: "InvalidManifest" }, { type: "podunit.io/UpToDate", status: "False", reason: "RolledBack" }], containerStatuses: [{ name: "c", ready: true, state: { running: {} } }] });

test("statusWord speaks get pods' words", () => {
    const cases = [
        ["running", running, "Running"],
        ["crash loop", crashing, "CrashLoopBackOff"],
        ["rolled back", rolledBack, "RolledBack"],
        ["rolling back: the failed generation still stops", pod("gate", { phase: "Running", conditions: [{ type: "podunit.io/UpToDate", status: "False", reason: "RollingBack" }], containerStatuses: [{ name: "c", state: { waiting: { reason: "CrashLoopBackOff" } } }] }), "RollingBack"],
        ["invalid manifest wins over rolled back", invalid, "InvalidManifest"],
        ["not admitted", pod("na", { phase: "Failed", reason: "NodeAffinity" }), "NodeAffinity"],
        ["succeeded", pod("job", { phase: "Succeeded" }), "Completed"],
        ["failed", pod("job", { phase: "Failed" }), "Error"],
        ["no status yet", pod("new", {}), "Pending"],
        ["init waiting", pod("i", { phase: "Pending", initContainerStatuses: [{ state: { waiting: { reason: "ImagePullBackOff" } } }] }, { containers: [{}], initContainers: [{}] }), "Init:ImagePullBackOff"],
        ["init running", pod("i", { phase: "Pending", initContainerStatuses: [{ state: { running: {} } }] }, { containers: [{}], initContainers: [{}] }), "Init:0/1"],
        ["sidecar running", pod("i", { phase: "Running", initContainerStatuses: [{ state: { running: {} } }], containerStatuses: [{ state: { running: {} } }] }, { containers: [{}], initContainers: [{ restartPolicy: "Always" }] }), "Running"],
        ["terminated container", pod("t", { phase: "Running", containerStatuses: [{ state: { terminated: { reason: "OOMKilled" } } }] }), "OOMKilled"],
    ];
    for (const [what, p, want] of cases)
        assert.equal(statusWord(p), want, what);
});

test("podRows: columns, order and filter", () => {
    const now = Date.parse("2026-12-07T10:05:00Z");
    const rows = podRows([running, crashing, rolledBack, invalid], now, "");
    assert.deepEqual(rows.map(r => [r.name, r.ready, r.status, r.restarts]), [
        ["bad", "1/1", "InvalidManifest", 0],
        ["crash", "0/1", "CrashLoopBackOff", 4],
        ["gate", "1/1", "RolledBack", 0],
        ["web", "1/1", "Running", 0],
    ]);
    const web = rows[3];
    assert.deepEqual([web.age, web.ip, web.unit, web.source], ["5m", "10.88.0.5", "pod-web.service", "/etc/podunit/manifests/web.yaml"]);
    assert.equal(rows[0].age, "<unknown>");
    assert.deepEqual(podRows([running, crashing], now, "crashloop").map(r => r.name), ["crash"]);
    assert.deepEqual(podRows([running, crashing], now, "10.88").map(r => r.name), ["web"]);
});

test("summary counts running and failing pods", () => {
    assert.deepEqual(summary([running, crashing, rolledBack, invalid]), { total: 4, running: 1, failing: 1 });
});

test("parseHealth reads /healthz?verbose", () => {
    assert.deepEqual(parseHealth("[+]ping ok\n[-]runtime failed: connection refused\nhealthz check failed\n"), [
        { name: "ping", ok: true, text: "ok" },
        { name: "runtime", ok: false, text: "failed: connection refused" },
    ]);
});

test("shortDuration is kubectl's AGE", () => {
    for (const [ms, want] of [[-5, "0s"], [45e3, "45s"], [125e3, "2m"], [3 * 3600e3, "3h"], [72 * 3600e3, "3d"]])
        assert.equal(shortDuration(ms), want);
});

test("containerRows joins spec and status, with the last termination", () => {
    const [c] = containerRows(crashing);
    assert.equal(c.state, "waiting: CrashLoopBackOff (back-off 40s)");
    assert.equal(c.restarts, 4);
    assert.equal(c.lastTermination, "Error (exit 1) at 2026-12-07T10:01:00Z");
});

test("serviceRows joins Services and their EndpointSlices", () => {
    const services = [
        { metadata: { namespace: "default", name: "web" }, spec: { clusterIP: "10.96.0.20", clusterIPs: ["10.96.0.20"], ports: [{ port: 8080, protocol: "TCP" }] } },
        { metadata: { namespace: "default", name: "lb" }, spec: { type: "LoadBalancer", clusterIP: "10.96.0.21", ports: [{ port: 80, nodePort: 30080 }] } },
        { metadata: { namespace: "default", name: "headless" }, spec: { clusterIP: "None", clusterIPs: ["None"] } },
    ];
    const slices = [
        {
            metadata: { namespace: "default", labels: { "kubernetes.io/service-name": "web" } },
            ports: [{ port: 80 }],
            endpoints: [
                { addresses: ["10.88.0.5"], conditions: { ready: true } },
                { addresses: ["10.88.0.4"], conditions: { ready: true } },
                { addresses: ["10.88.0.6"], conditions: { ready: false } },
            ],
        },
        { metadata: { namespace: "other", labels: { "kubernetes.io/service-name": "web" } }, ports: [{ port: 1 }], endpoints: [{ addresses: ["10.88.9.9"] }] },
    ];
    assert.deepEqual(serviceRows(services, slices).map(r => [r.key, r.type, r.clusterIP, r.ports, r.endpoints, r.notReady]), [
        ["default/headless", "ClusterIP", "None", "", [], 0],
        ["default/lb", "LoadBalancer", "10.96.0.21", "80:30080/TCP", [], 0],
        ["default/web", "ClusterIP", "10.96.0.20", "8080/TCP", ["10.88.0.4:80", "10.88.0.5:80"], 1],
    ]);
});

test("cpuPercent: the share of one CPU between samples", () => {
    assert.deepEqual(cpuPercent([
        { at: 1000, cpuNSec: 0 },
        { at: 3000, cpuNSec: 1e9 }, // 1 s of CPU in 2 s
        { at: 5000, cpuNSec: 1e9 }, // idle
        { at: 7000, cpuNSec: null }, // not counted
    ]).map(s => s.value), [null, 50, 0, null]);
});

test("logsLocation: Cockpit's Logs page on the pod's unit, or on one container", () => {
    assert.equal(logsLocation("pod-web.service", ""), "/system/logs#/?prio=debug&service=pod-web.service");
    assert.equal(logsLocation("pod-web.service", "app"), "/system/logs#/?prio=debug&_SYSTEMD_UNIT=pod-web.service&CONTAINER_NAME=app");
    assert.equal(logsLocation("pod-a\\x2db.service", "c"), "/system/logs#/?prio=debug&_SYSTEMD_UNIT=pod-a%5Cx2db.service&CONTAINER_NAME=c");
});
