// Where the benchmarks leave their figures: bench-results/<name>-<date>.json (untracked), with
// the date and the machine, so runs on different boards can be told apart.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";

import { packageRoot } from "../../src/engine/native.js";

/** Writes the figures and returns the file's path. */
export function writeBenchResults(name: string, figures: Record<string, unknown>): string {
  const date = new Date();
  const dir = join(packageRoot(), "bench-results");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}-${date.toISOString().replace(/[:.]/g, "-")}.json`);
  const machine = { cpu: cpus()[0]?.model, logicalCpus: cpus().length, node: process.version };
  writeFileSync(path, `${JSON.stringify({ date: date.toISOString(), machine, ...figures }, null, 2)}\n`);
  return path;
}
