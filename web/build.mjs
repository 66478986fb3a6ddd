// Vendors uPlot for the dashboard: copies its ES module, stylesheet and
// licence from node_modules (the version package-lock.json pins) into
// static/vendor/uplot/, which is committed and embedded with the page's own
// files (web/web.go). No bundler: the browser loads the ES modules as they
// are, so editing static/ needs no build. Run it through `make web` (npm ci,
// then this); web_test.go checks the vendored files, so change both
// together.
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const vendor = join(root, "static", "vendor");

// vendored: [from node_modules, to static/vendor]
const vendored = [
  ["uplot/dist/uPlot.esm.js", "uplot/uPlot.esm.js"],
  ["uplot/dist/uPlot.min.css", "uplot/uPlot.min.css"],
  ["uplot/LICENSE", "uplot/LICENSE"],
];

rmSync(vendor, { recursive: true, force: true });
for (const [from, to] of vendored) {
  mkdirSync(dirname(join(vendor, to)), { recursive: true });
  cpSync(join(root, "node_modules", from), join(vendor, to));
}
console.log("web/static/vendor built");
