// Builds the page into dist/: one bundle (index.js, index.css) with esbuild,
// and the static files Cockpit reads (manifest.json, index.html).
// Usage: node build.js [--outdir DIR]
import * as esbuild from "esbuild";
import fs from "node:fs";
import path from "node:path";

const here = path.dirname(new URL(import.meta.url).pathname);
const at = process.argv.indexOf("--outdir");
const outdir = at > 0 ? path.resolve(process.argv[at + 1]) : path.join(here, "dist");

fs.rmSync(outdir, { recursive: true, force: true });
try {
    await esbuild.build({
        entryPoints: { index: path.join(here, "src/index.jsx") },
        bundle: true,
        minify: true,
        outdir,
        target: ["es2020"],
        jsx: "automatic",
        // PatternFly's fonts and images: files beside the bundle.
        loader: { ".woff": "file", ".woff2": "file", ".svg": "file", ".png": "file", ".jpg": "file" },
        legalComments: "external",
        logLevel: "warning",
    });
} catch (e) {
    process.exit(1); // esbuild has printed why
}
for (const f of ["manifest.json", "index.html"])
    fs.copyFileSync(path.join(here, "src", f), path.join(outdir, f));
