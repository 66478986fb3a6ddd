// Builds web/dist, the dashboard's assets that `kairoscope serve` embeds
// (web/web.go): the page's own files from src/, unchanged, and uPlot's ES
// module and stylesheet from node_modules (pinned by package-lock.json)
// under vendor/uplot/. No bundler: the browser loads the ES modules as they
// are. Run it through `make web` (npm ci, then this). web_test.go checks
// that dist is what this script makes, so change both together.
import { cpSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");

// vendored: [from node_modules, to dist]
const vendored = [
  ["uplot/dist/uPlot.esm.js", "vendor/uplot/uPlot.esm.js"],
  ["uplot/dist/uPlot.min.css", "vendor/uplot/uPlot.min.css"],
  ["uplot/LICENSE", "vendor/uplot/LICENSE"],
];

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
for (const name of readdirSync(join(root, "src"))) {
  cpSync(join(root, "src", name), join(dist, name), { recursive: true });
}
for (const [from, to] of vendored) {
  mkdirSync(dirname(join(dist, to)), { recursive: true });
  cpSync(join(root, "node_modules", from), join(dist, to));
}
console.log("web/dist built");
