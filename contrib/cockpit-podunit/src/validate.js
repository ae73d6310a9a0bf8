// messagesByLine sorts `podunit validate FILE`'s output ("FILE:LINE: what")
// into the lines of FILE they name: a Map from line number to messages.
export function messagesByLine(output, path) {
    const byLine = new Map();
    const prefix = path + ":";
    for (const l of (output || "").split("\n")) {
        if (!l.startsWith(prefix)) continue;
        const m = /^(\d+): (.*)$/.exec(l.slice(prefix.length));
        if (!m) continue;
        const n = Number(m[1]);
        byLine.set(n, (byLine.get(n) || []).concat([m[2]]));
    }
    return byLine;
}
