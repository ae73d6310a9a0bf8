// Chart: a small line chart (SVG) of samples over time, newest on the right;
// empty says why there is no data, when that is known.
export function Chart({ id, title, samples, format, empty }) {
    const w = 480;
    const h = 120;
    const pts = samples.filter(s => s.value !== null);
    const last = pts.length ? pts[pts.length - 1].value : null;
    let line = "";
    if (pts.length > 0) {
        const t0 = pts[0].at;
        const t1 = Math.max(pts[pts.length - 1].at, t0 + 1);
        const max = Math.max(...pts.map(p => p.value), 1);
        line = pts.map(p => `${((p.at - t0) / (t1 - t0) * w).toFixed(1)},${(h - p.value / max * (h - 10)).toFixed(1)}`).join(" ");
    }
    return (
        <figure className="podunit-chart" id={id} data-samples={pts.length}>
            <figcaption>{title}: <strong>{last === null ? (empty || "no data") : format(last)}</strong></figcaption>
            <svg viewBox={`0 0 ${w} ${h}`} width={w} height={h} role="img" aria-label={title}
                 style={{ border: "1px solid var(--pf-v5-global--BorderColor--100)" }}>
                {line && <polyline points={line} fill="none" stroke="var(--pf-v5-global--primary-color--100)" strokeWidth="2" />}
            </svg>
        </figure>
    );
}
