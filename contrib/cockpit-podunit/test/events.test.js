// The page's events read as podunit describe's (cmd/podunit TestEventMessage).
import { test } from "node:test";
import assert from "node:assert/strict";
import { eventMessage, toEvent } from "../src/events.js";

test("eventMessage", () => {
    const cases = [
        ['level=WARN msg="container exited; restarting it" container=web exitCode=1', "container exited; restarting it: container=web exitCode=1"],
        ['level=INFO msg="pod running" sandbox=abc ip=10.88.0.4', "pod running: sandbox=abc ip=10.88.0.4"],
        ['level=INFO msg="started container" pod=default/web container=web', "started container: container=web"],
        ["level=INFO msg=done", "done"],
        ['level=INFO msg="say \\"hi\\""', 'say "hi"'],
        ["Started pod-web.service - Pod default/web.", "Started pod-web.service - Pod default/web."],
    ];
    for (const [line, want] of cases)
        assert.equal(eventMessage(line), want, line);
});

test("toEvent leaves container output out and names the source", () => {
    assert.equal(toEvent({ at: 1, container: "web", pid: "42", message: "hello" }), null);
    assert.deepEqual(toEvent({ at: 1, container: "", pid: "1", message: "Started pod-web.service." }),
                     { at: 1, source: "systemd", message: "Started pod-web.service." });
    assert.deepEqual(toEvent({ at: 2, container: "", pid: "42", message: "level=INFO msg=done" }),
                     { at: 2, source: "podshim", message: "done" });
});
