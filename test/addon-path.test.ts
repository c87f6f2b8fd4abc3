// Which addon file the loader picks: EDGELORA_ADDON alone when set; else the source build, then
// the prebuilt for this platform; a file that exists but does not load is passed over.
import test from "ava";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

import { addonCandidates, loadFirstAddon, prebuiltAddonPath, sourceBuildAddonPath } from "../src/engine/addon-path.js";
import { packageRoot } from "../src/engine/native.js";

const root = mkdtempSync(join(tmpdir(), "edgelora-addon-path-"));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

function place(path: string, bytes: string | Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
}

test("candidates: source build first, then prebuilds/<platform>-<arch>; EDGELORA_ADDON replaces both", (t) => {
  t.deepEqual(addonCandidates("/pkg", {}, "linux", "arm64"), [
    { path: "/pkg/build/native/Release/edgelora.node", origin: "source build" },
    { path: "/pkg/prebuilds/linux-arm64/edgelora.node", origin: "prebuilt" },
  ]);
  t.deepEqual(addonCandidates("/pkg", { EDGELORA_ADDON: "/elsewhere/x.node" }, "linux", "x64"), [
    { path: "/elsewhere/x.node", origin: "EDGELORA_ADDON" },
  ]);
});

test("a source build that does not load (another CPU's) is passed over for the prebuilt", (t) => {
  const dir = mkdtempSync(join(root, "fake-"));
  place(sourceBuildAddonPath(dir), "not an ELF file");
  place(prebuiltAddonPath(dir, "linux", "arm64"), "prebuilt");
  const loaded: string[] = [];
  const got = loadFirstAddon<string>(addonCandidates(dir, {}, "linux", "arm64"), (p) => {
    loaded.push(p);
    if (p.includes("/build/native/")) throw new Error("invalid ELF header");
    return "the prebuilt addon";
  });
  t.is(got.addon, "the prebuilt addon");
  t.is(got.from.origin, "prebuilt");
  t.is(loaded.length, 2);
});

test("no loadable candidate: one error naming each candidate and why", (t) => {
  const dir = mkdtempSync(join(root, "none-"));
  place(prebuiltAddonPath(dir, "linux", "arm64"), "garbage");
  const err = t.throws(() => loadFirstAddon(addonCandidates(dir, {}, "linux", "arm64")));
  t.regex(err!.message, /source build .*build\/native\/Release\/edgelora\.node: missing/);
  t.regex(err!.message, /prebuilt .*prebuilds\/linux-arm64\/edgelora\.node: does not load/);
  t.regex(err!.message, /npm run build:native/);
});

test("the real addon loads from prebuilds/ when the package has no source build", (t) => {
  const built = sourceBuildAddonPath(packageRoot());
  const dir = mkdtempSync(join(root, "real-"));
  const target = prebuiltAddonPath(dir);
  mkdirSync(dirname(target), { recursive: true });
  try {
    copyFileSync(built, target);
  } catch {
    return t.pass("skipped: no source build to copy");
  }
  const got = loadFirstAddon<{ kernelPath(): string }>(addonCandidates(dir, {}));
  t.is(got.from.origin, "prebuilt");
  t.is(typeof got.addon.kernelPath(), "string");
});
