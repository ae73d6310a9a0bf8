// A pod's events, as `podunit describe pod` shows them: the entries of its
// unit's journal that are not a container's output (podshim's and systemd's
// own lines about the pod), podshim's log lines made to read as events.

// eventMessage makes podshim's log line (slog's key=value text) read as an
// event: `level=WARN msg="container exited; restarting it" container=web`
// becomes `container exited; restarting it: container=web`.
export function eventMessage(line) {
    if (!line.startsWith("level=")) return line;
    let rest = line.slice("level=".length);
    const sp = rest.indexOf(" ");
    rest = sp < 0 ? "" : rest.slice(sp + 1);
    if (!rest.startsWith("msg=")) return line;
    rest = rest.slice("msg=".length);
    let msg;
    if (rest.startsWith('"')) {
        const m = /^"((?:[^"\\]|\\.)*)"/.exec(rest);
        if (!m) return line;
        try {
            msg = JSON.parse(m[0]); // Go's quoting, JSON's escapes: the same for what slog writes
        } catch (_) {
            msg = m[1];
        }
        rest = rest.slice(m[0].length).trim();
    } else {
        const i = rest.indexOf(" ");
        msg = i < 0 ? rest : rest.slice(0, i);
        rest = i < 0 ? "" : rest.slice(i + 1);
    }
    // Every line of a pod's journal is about the pod: its pod= says nothing.
    const first = rest.split(/\s+/)[0];
    if (first && first.startsWith("pod="))
        rest = rest.slice(first.length).trim();
    return rest === "" ? msg : msg + ": " + rest;
}

// toEvent is a journal entry ({at, container, pid, message}) as an event,
// or null for a container's output.
export function toEvent(entry) {
    if (entry.container) return null;
    return {
        at: entry.at,
        source: entry.pid === "1" ? "systemd" : "podshim",
        message: eventMessage(entry.message),
    };
}
