// Model load time by the number of threads that place the weights (EDGELORA_LOAD_THREADS, read
// at each load, so every setting runs in this one process, alternated load by load). Cold: the
// file evicted from the page cache first (lib/load-time.ts); warm: loaded again at once. Against
// the physical limits measured in the same run: the file read cold by dd (a sequential read,
// nothing computed), and the weights' bytes read and written once at the memory bandwidth.
// Usage: npm run bench:load -- [--types q4_k_m,q5_k_m,q4_0,q8_0] [--threads 1,2] [--rounds 3]
// Prints a table; writes bench-results/load-<date>.json.
import { execFileSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { join } from "node:path";

import { Command, InvalidArgumentError } from "commander";

import { NativeModel } from "../src/engine/model.js";
import { packageRoot } from "../src/engine/native.js";
import { measureBandwidth } from "./lib/bandwidth.js";
import { ALL_BENCH_TYPES, benchModel, type BenchType } from "./lib/bench-model.js";
import { evictFromPageCache, measureLoad } from "./lib/load-time.js";
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";
import { median } from "./lib/workload.js";

const ints = (v: string) =>
  v.split(",").map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected integers >= 1");
    return n;
  });

const opts = new Command()
  .name("bench-load")
  .description("model load time (cold and warm) by the number of threads placing the weights")
  .option("--types <list>", "bench model weight types", (v: string) =>
    v.split(",").map((s) => {
      if (!(ALL_BENCH_TYPES as readonly string[]).includes(s.trim())) throw new InvalidArgumentError(`expected some of ${ALL_BENCH_TYPES.join(", ")}`);
      return s.trim() as BenchType;
    }), ["q4_k_m", "q5_k_m", "q4_0", "q8_0"] as BenchType[])
  .option("--threads <list>", "load threads to compare", ints, [1, availableParallelism()])
  .option("--rounds <n>", "loads of every setting, alternated", (v: string) => ints(v)[0], 3)
  .parse()
  .opts<{ types: BenchType[]; threads: number[]; rounds: number }>();

const log = (line: string) => process.stderr.write(`${line}\n`);

interface Run {
  type: BenchType;
  threads: number;
  round: number;
  coldMs: number;
  warmMs: number;
  residentBeforeColdBytes: number | null;
}

/** `fn` with EDGELORA_LOAD_THREADS set to `threads` (the engine reads it at each load). */
async function withLoadThreads<T>(threads: number, fn: () => Promise<T>): Promise<T> {
  process.env.EDGELORA_LOAD_THREADS = String(threads);
  try {
    return await fn();
  } finally {
    delete process.env.EDGELORA_LOAD_THREADS;
  }
}

/** Seconds to read `path` cold with dd: the disk's part of a cold load, nothing else. */
function coldReadSeconds(path: string): number {
  evictFromPageCache(path);
  const t0 = performance.now();
  execFileSync("dd", [`if=${path}`, "of=/dev/null", "bs=4M", "status=none"]);
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  const cache = join(packageRoot(), ".tmp", "bench-models");
  const paths = new Map<BenchType, string>();
  for (const type of opts.types) paths.set(type, await benchModel(cache, type, log));
  const [{ gbPerS }] = await measureBandwidth([Math.max(...opts.threads)]);
  log(`memory read bandwidth, ${Math.max(...opts.threads)} threads: ${gbPerS.toFixed(1)} GB/s`);
  const runs: Run[] = [];
  const facts = new Map<BenchType, { weightBytes: number; packed: string; ddSeconds: number[] }>();
  for (const type of opts.types) {
    const path = paths.get(type)!;
    const m = await NativeModel.load(path); // also warms the code paths; its time is not kept
    const packed = Object.entries(m.info.packedTypes).map(([t, n]) => `${t} x${n}`).join(", ");
    facts.set(type, { weightBytes: m.info.weightBytes, packed, ddSeconds: [] });
    m.dispose();
  }
  for (let round = 0; round < opts.rounds; round++) {
    for (const type of opts.types) {
      const path = paths.get(type)!;
      facts.get(type)!.ddSeconds.push(coldReadSeconds(path));
      // Alternated, and in reverse order every other round, so that a drift hits each alike.
      const order = round % 2 === 0 ? opts.threads : [...opts.threads].reverse();
      for (const threads of order) {
        const { coldMs, warmMs, residentBeforeColdBytes } = await withLoadThreads(threads, () => measureLoad(path));
        runs.push({ type, threads, round, coldMs, warmMs, residentBeforeColdBytes });
      }
    }
    log(`round ${round + 1}/${opts.rounds} done`);
  }

  const rows: string[][] = [];
  const table: Record<string, unknown>[] = [];
  for (const type of opts.types) {
    const f = facts.get(type)!;
    const ddMs = median(f.ddSeconds) * 1000;
    const copyFloorMs = ((2 * f.weightBytes) / (gbPerS * 1e9)) * 1000; // read once, write once
    const base = (threads: number, k: "coldMs" | "warmMs") => median(runs.filter((r) => r.type === type && r.threads === threads).map((r) => r[k]));
    for (const threads of opts.threads) {
      const cold = base(threads, "coldMs");
      const warm = base(threads, "warmMs");
      const vs1 = threads === opts.threads[0] ? "" : `cold ${fmt(base(opts.threads[0], "coldMs") / cold, 2, "x")}, warm ${fmt(base(opts.threads[0], "warmMs") / warm, 2, "x")}`;
      rows.push([type, String(threads), fmt(cold, 0), fmt(warm, 0), fmt(ddMs, 0), fmt(copyFloorMs, 0), vs1, f.packed || "-"]);
      table.push({ type, threads, coldMs: cold, warmMs: warm, ddColdReadMs: ddMs, copyFloorMs, weightBytes: f.weightBytes, packed: f.packed });
    }
  }
  process.stdout.write(
    [
      `medians over ${opts.rounds} round(s); settings alternated load by load; memory bandwidth ${gbPerS.toFixed(1)} GB/s (this run)`,
      "floors: dd = the file read cold by dd, no compute; copy = the weights read and written once at that bandwidth",
      renderTable(["type", "threads", "cold ms", "warm ms", "dd cold read ms", "copy floor ms", `vs ${opts.threads[0]} thread(s)`, "repacked at load"], rows),
      "",
    ].join("\n"),
  );
  log(`wrote ${writeBenchResults("load", { bandwidthGbPerS: gbPerS, rounds: opts.rounds, table, runs })}`);
}

main().catch((e: unknown) => {
  log(e instanceof Error ? e.stack ?? e.message : String(e));
  process.exitCode = 1;
});
