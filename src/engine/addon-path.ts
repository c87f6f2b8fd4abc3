// Where the native addon comes from, in order: EDGELORA_ADDON (a build made elsewhere), the
// package's own build from source (build/native, what `npm run build` and the install fallback
// make), then the prebuilt binary for this platform (prebuilds/<platform>-<arch>, shipped in the
// npm package). A file that exists but does not load (another CPU's build, a missing library) is
// skipped, so a checkout holding an x64 build still loads the arm64 prebuilt under arm64.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

export const ADDON_FILE = "edgelora.node";

export type AddonOrigin = "EDGELORA_ADDON" | "source build" | "prebuilt";

export interface AddonCandidate {
  path: string;
  origin: AddonOrigin;
}

/** prebuilds/<platform>-<arch>/edgelora.node under `root`: the layout `npm run prebuild` writes. */
export function prebuiltAddonPath(root: string, platform: string = process.platform, arch: string = process.arch): string {
  return join(root, "prebuilds", `${platform}-${arch}`, ADDON_FILE);
}

export function sourceBuildAddonPath(root: string): string {
  return join(root, "build", "native", "Release", ADDON_FILE);
}

export function addonCandidates(
  root: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: string = process.platform,
  arch: string = process.arch,
): AddonCandidate[] {
  if (env.EDGELORA_ADDON) return [{ path: resolve(env.EDGELORA_ADDON), origin: "EDGELORA_ADDON" }];
  return [
    { path: sourceBuildAddonPath(root), origin: "source build" },
    { path: prebuiltAddonPath(root, platform, arch), origin: "prebuilt" },
  ];
}

/** No candidate loads: `reasons` says, per candidate, why not. */
export class AddonNotAvailableError extends Error {
  constructor(
    readonly reasons: string[],
    hint: string,
  ) {
    super(`native addon not available for ${process.platform}-${process.arch}: ${reasons.join("; ")}${hint}`);
    this.name = "AddonNotAvailableError";
  }
}

export interface Loaded<T> {
  addon: T;
  from: AddonCandidate;
}

/**
 * The first candidate that exists and loads. Throws one error naming every candidate and why it
 * was not used, and what to run.
 */
export function loadFirstAddon<T>(candidates: AddonCandidate[], load: (path: string) => unknown = createRequire(import.meta.url)): Loaded<T> {
  const reasons: string[] = [];
  for (const c of candidates) {
    if (!existsSync(c.path)) {
      reasons.push(`${c.origin} ${c.path}: missing`);
      continue;
    }
    try {
      return { addon: load(c.path) as T, from: c };
    } catch (err) {
      reasons.push(`${c.origin} ${c.path}: does not load (${(err as Error).message.split("\n")[0]})`);
    }
  }
  const only = candidates.length === 1 && candidates[0].origin === "EDGELORA_ADDON";
  throw new AddonNotAvailableError(
    reasons,
    only ? "" : " (in a checkout run `npm run build:native`; in an installed package reinstall it, which builds from source when no prebuilt matches)",
  );
}
