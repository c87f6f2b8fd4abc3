// The npm package's install step, run where a user installs edgelora: keep the prebuilt addon when
// one for this platform loads (no compiler needed), else build from source with cmake-js (needs
// cmake and a C++17 compiler). Plain JavaScript, not TypeScript: it runs where nothing is compiled
// yet. In a git checkout (no dist/ yet) it does nothing: there `npm run build` builds the addon.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const say = (msg) => process.stderr.write(`edgelora install: ${msg}\n`);
const paths = join(root, "dist", "src", "engine", "addon-path.js");

if (!existsSync(paths)) {
  say("no dist/ (a source checkout): run `npm run build`");
  process.exit(0);
}
const { addonCandidates, loadFirstAddon } = await import(paths);
try {
  const { from } = loadFirstAddon(addonCandidates(root));
  say(`using the ${from.origin} addon ${from.path}`);
  process.exit(0);
} catch (err) {
  say(`no addon loads here (${err.reasons ? err.reasons.join("; ") : err.message}): building it from source`);
}
const require = createRequire(import.meta.url);
const cmakeJs = join(dirname(require.resolve("cmake-js/package.json")), "bin", "cmake-js");
const r = spawnSync(process.execPath, [cmakeJs, "compile", "--out", "build/native", "--CDEL_BUILD_TESTS=OFF"], { cwd: root, stdio: "inherit" });
if (r.status !== 0) {
  say("building the addon from source failed: it needs cmake and a C++17 compiler (apt install cmake g++)");
  process.exit(1);
}
say("built the addon from source");
