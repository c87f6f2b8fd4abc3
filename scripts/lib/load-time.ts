// Model load time, cold and warm. Cold: the file is first dropped from the page cache with GNU
// dd's `iflag=nocache count=0` (posix_fadvise(POSIX_FADV_DONTNEED) on the whole file; it drops
// only pages no process maps, so no model of this file may be loaded then), and util-linux
// `fincore` reports how much of it stayed resident, so a failed eviction shows in the results.
// Warm: loaded again at once, from the page cache.
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";

import { NativeModel } from "../../src/engine/model.js";

export interface LoadTime {
  fileBytes: number;
  residentBeforeColdBytes: number | null; // after the eviction (null: fincore missing)
  coldMs: number;
  warmMs: number;
  coldMbPerS: number; // file MiB / cold seconds
}

/** Bytes of `path` in the page cache, or null when fincore is not installed. */
export function residentBytes(path: string): number | null {
  try {
    const out = execFileSync("fincore", ["--bytes", "--noheadings", "--output", "RES", path], { encoding: "utf8" });
    return Number(out.trim());
  } catch {
    return null;
  }
}

/** Drops `path` from the page cache. */
export function evictFromPageCache(path: string): void {
  execFileSync("dd", [`if=${path}`, "iflag=nocache", "count=0", "status=none"]);
}

async function timedLoad(path: string): Promise<number> {
  const t0 = performance.now();
  const m = await NativeModel.load(path);
  const ms = performance.now() - t0;
  m.dispose();
  return ms;
}

export async function measureLoad(path: string): Promise<LoadTime> {
  const fileBytes = statSync(path).size;
  evictFromPageCache(path);
  const residentBeforeColdBytes = residentBytes(path);
  const coldMs = await timedLoad(path);
  const warmMs = await timedLoad(path);
  return { fileBytes, residentBeforeColdBytes, coldMs, warmMs, coldMbPerS: fileBytes / (1024 * 1024) / (coldMs / 1000) };
}
