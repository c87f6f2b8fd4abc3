// Engine speed benchmark against llama.cpp, on one synthetic model of realistic size per
// weight type (F16, Q8_0, Q4_0), at 1 and 2 threads: one-sequence decode and 128-token prefill
// tokens/s, the ratio to llama.cpp (its own CPU choice, AVX-512 here, and its AVX2 build), and
// decode as a share of the memory-bandwidth roofline measured in the same run.
// The whole sweep runs in rounds (3 by default), and every figure is the median over rounds: a
// shared machine's memory speed drifts in phases of seconds to minutes, which one sweep would
// take for the engines' own differences. For the same reason the bandwidth is measured just
// before each (type, threads) row of a round, with that row's thread count, and that row's
// decode is set against it: a round takes minutes, long enough for the phase to change.
// Usage: npm run bench:engine -- [--types f16,q8_0,q4_0] [--threads 1,2] [--rounds N] [--quick] [--no-baseline]
// Also the model's load time, per type and round: cold (the file evicted from the page cache
// first, lib/load-time.ts) and warm.
// Progress goes to stderr; the tables to stdout; all figures to bench-results/engine-<date>.json.

import { join } from "node:path";

import { Command, InvalidArgumentError } from "commander";

import { packageRoot } from "../src/engine/native.js";
import { measureBandwidth, type BandwidthResult } from "./lib/bandwidth.js";
import { ALL_BENCH_TYPES, BENCH_SHAPE, BENCH_TYPES, benchModel, type BenchType } from "./lib/bench-model.js";
import type { LlamaChildResult } from "./lib/llama-child.js";
import { avx2Install, defaultInstall, runLlama, type LlamaInstall } from "./lib/llama-baseline.js";
import { measureLoad, type LoadTime } from "./lib/load-time.js";
import { benchOurs } from "./lib/ours.js";
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";
import { FULL, median, QUICK, type Speed } from "./lib/workload.js";

function list<T>(parse: (s: string) => T) {
  return (v: string): T[] => v.split(",").map((s) => parse(s.trim()));
}

function benchType(s: string): BenchType {
  if (!(ALL_BENCH_TYPES as readonly string[]).includes(s)) throw new InvalidArgumentError(`expected ${ALL_BENCH_TYPES.join(", ")}`);
  return s as BenchType;
}

function threadCount(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected positive integers");
  return n;
}

const opts = new Command()
  .name("bench-engine")
  .description("Decode/prefill speed of the engine vs llama.cpp on a synthetic 359M-parameter model")
  .option("--types <list>", "weight types", list(benchType), BENCH_TYPES)
  .option("--threads <list>", "thread counts", list(threadCount), [1, 2])
  .option("--rounds <n>", "sweeps over every row, each after a bandwidth measurement (default 3, 1 with --quick)", threadCount)
  .option("--quick", "fewer tokens, one run each", false)
  .option("--no-baseline", "skip llama.cpp")
  .option("--no-avx2", "skip llama.cpp's AVX2 build")
  .parse()
  .opts<{ types: BenchType[]; threads: number[]; rounds?: number; quick: boolean; baseline: boolean; avx2: boolean }>();

const log = (s: string) => process.stderr.write(`${s}\n`);
const root = packageRoot();
const workload = opts.quick ? QUICK : FULL;
const rounds = opts.rounds ?? (opts.quick ? 1 : 3);

/** One row's figures in one round, with the bandwidth measured just before that round. */
interface RoundFigures {
  bandwidthGbPerS: number;
  ours: Speed;
  llama: Record<string, Speed | { error: string }>; // by install name
}

interface Row {
  type: BenchType;
  threads: number;
  weightBytes: number;
  rounds: RoundFigures[];
}

async function bandwidth(threads: number): Promise<BandwidthResult> {
  const [b] = await measureBandwidth([threads]);
  log(`  memory bandwidth ${threads}t: ${b.gbPerS.toFixed(1)} GB/s (passes ${b.passesGbPerS.map((x) => x.toFixed(1)).join(", ")})`);
  return b;
}

const installs: LlamaInstall[] = [];
if (opts.baseline) {
  installs.push(defaultInstall(join(root, "node_modules")));
  if (opts.avx2) installs.push(avx2Install(join(root, "node_modules")));
}

/** Every bandwidth measurement, in order: the round and row it was taken for. */
const bandwidthRuns: (BandwidthResult & { round: number; type: BenchType })[] = [];
const rows: Row[] = [];
const loads: (LoadTime & { type: BenchType; round: number })[] = [];
const llamaBuilds: Record<string, Omit<LlamaChildResult, "speed">> = {};
let kernelPath = "";
let vocab = 0;
try {
  for (let round = 0; round < rounds; round++) {
    log(`round ${round + 1} of ${rounds}`);
    for (const type of opts.types) {
      const modelPath = await benchModel(join(root, ".tmp", "bench-models"), type, log);
      log(`${type}: ${modelPath}`);
      const load = await measureLoad(modelPath);
      loads.push({ ...load, type, round });
      log(`  load: cold ${load.coldMs.toFixed(0)} ms (${load.coldMbPerS.toFixed(0)} MiB/s; ${load.residentBeforeColdBytes ?? "?"} bytes cached before), warm ${load.warmMs.toFixed(0)} ms`);
      // One thread count at a time, ours then each llama.cpp build, so slow drifts in the
      // machine's load hit both engines alike.
      for (const threads of opts.threads) {
        const bw = await bandwidth(threads);
        bandwidthRuns.push({ ...bw, round, type });
        const ours = await benchOurs(modelPath, [threads], workload, log);
        kernelPath = ours.info.kernelPath;
        vocab = ours.info.nVocab;
        let row = rows.find((r) => r.type === type && r.threads === threads);
        if (!row) rows.push((row = { type, threads, weightBytes: ours.info.weightBytes, rounds: [] }));
        const figures: RoundFigures = {
          bandwidthGbPerS: bw.gbPerS,
          ours: ours.speeds.get(threads)!,
          llama: {},
        };
        for (const install of installs) {
          try {
            const { speed, ...build } = await runLlama(install, modelPath, threads, workload);
            llamaBuilds[install.name] = build;
            figures.llama[install.name] = speed;
            log(`  llama ${install.name.padEnd(7)} ${threads}t: decode ${speed.decode.toFixed(1)} tok/s, prefill ${speed.prefill.toFixed(1)} tok/s (${build.cpuLibrary})`);
          } catch (e) {
            figures.llama[install.name] = { error: String(e) };
            log(`  llama ${install.name}: ${String(e)}`);
          }
        }
        row.rounds.push(figures);
      }
    }
  }
} finally {
  for (const i of installs) i.dispose();
}

// Medians over rounds; a round's roofline is its own bandwidth over the weight bytes per token,
// and a share of the roofline is taken round by round before the median.
const medianOrUndefined = (xs: (number | undefined)[]) => {
  const v = xs.filter((x): x is number => x !== undefined);
  return v.length ? median(v) : undefined;
};
const rooflineOf = (r: Row, f: RoundFigures) => (f.bandwidthGbPerS * 1e9) / r.weightBytes;
const llamaSpeed = (f: RoundFigures, name: string): Speed | undefined => {
  const s = f.llama[name];
  return s && "decode" in s ? s : undefined;
};
const ratio = (a: number, b: number | undefined) => (b ? a / b : undefined);

const names = installs.map((i) => i.name);
const label = (name: string) => `llama ${name === "default" ? (llamaBuilds[name]?.cpuLibrary.replace(/^libggml-cpu-|\.so$/g, "") ?? "default") : name}`;
const decodeHeader = ["type", "thr", "ours", ...names.flatMap((n) => [label(n), "ratio"]), "roofline", "ours %roof", ...names.map((n) => `${label(n)} %roof`)];
const prefillHeader = ["type", "thr", "ours", ...names.flatMap((n) => [label(n), "ratio"])];
const decodeRows: string[][] = [];
const prefillRows: string[][] = [];
const records = rows.map((r) => {
  const ours = { decode: median(r.rounds.map((f) => f.ours.decode)), prefill: median(r.rounds.map((f) => f.ours.prefill)) };
  const llama = names.map((n) => ({
    decode: medianOrUndefined(r.rounds.map((f) => llamaSpeed(f, n)?.decode)),
    prefill: medianOrUndefined(r.rounds.map((f) => llamaSpeed(f, n)?.prefill)),
    shareOfRoofline: medianOrUndefined(r.rounds.map((f) => {
      const s = llamaSpeed(f, n);
      return s && s.decode / rooflineOf(r, f);
    })),
  }));
  const roofline = median(r.rounds.map((f) => rooflineOf(r, f)));
  const oursShare = median(r.rounds.map((f) => f.ours.decode / rooflineOf(r, f)));
  decodeRows.push([
    r.type, String(r.threads), fmt(ours.decode),
    ...llama.flatMap((l) => [fmt(l.decode), fmt(ratio(ours.decode, l.decode), 2, "x")]),
    fmt(roofline), fmt(100 * oursShare, 0, "%"),
    ...llama.map((l) => fmt(l.shareOfRoofline && 100 * l.shareOfRoofline, 0, "%")),
  ]);
  prefillRows.push([
    r.type, String(r.threads), fmt(ours.prefill),
    ...llama.flatMap((l) => [fmt(l.prefill), fmt(ratio(ours.prefill, l.prefill), 2, "x")]),
  ]);
  return {
    ...r, ours, llama: Object.fromEntries(names.map((n, i) => [n, llama[i]])),
    rooflineDecodeTps: roofline, oursShareOfRoofline: oursShare,
  };
});

const w = workload;
process.stdout.write(
  [
    `Synthetic llama ${BENCH_SHAPE.nEmbd}x${BENCH_SHAPE.nLayer}, ffn ${BENCH_SHAPE.nFf}, heads ${BENCH_SHAPE.nHead}/${BENCH_SHAPE.nHeadKv}, vocab ${vocab}; KV cache F16 in both engines; our kernels: ${kernelPath}`,
    `Memory read bandwidth (wasm SIMD sum over ${bandwidthRuns[0].bytes / 2 ** 20} MiB, best of ${bandwidthRuns[0].passesGbPerS.length} passes, before each row of each round): ` +
      opts.threads.map((t) => {
        const gbPerS = bandwidthRuns.filter((b) => b.threads === t).map((b) => b.gbPerS);
        return `${t}t ${fmt(Math.min(...gbPerS))}–${fmt(Math.max(...gbPerS))} GB/s`;
      }).join(", "),
    "",
    `Decode, one sequence, tokens/s (median over ${rounds} round(s) of the median of ${w.runs} runs; ${w.decodeTokens} tokens after a ${w.promptTokens}-token prompt);`,
    "ratio = ours / llama.cpp; roofline = bandwidth / weight bytes per token (all weights read once per token; KV reads are",
    "negligible here), from the bandwidth measured just before the row; %roof = median over rounds of decode / that roofline",
    renderTable(decodeHeader, decodeRows),
    "",
    `Prefill, ${w.prefillTokens}-token prompt in one batch, tokens/s (median over ${rounds} round(s) of the median of ${w.runs} runs)`,
    renderTable(prefillHeader, prefillRows),
    "",
    `Model load (ours), median over ${rounds} round(s): cold = file evicted from the page cache first (dd iflag=nocache; resident bytes checked with fincore), warm = loaded again at once`,
    renderTable(["type", "file MiB", "cold ms", "cold MiB/s", "warm ms", "cached before cold"], opts.types.map((type) => {
      const l = loads.filter((x) => x.type === type);
      return [type, fmt(l[0].fileBytes / 2 ** 20), fmt(median(l.map((x) => x.coldMs))), fmt(median(l.map((x) => x.coldMbPerS))),
        fmt(median(l.map((x) => x.warmMs))), l.map((x) => x.residentBeforeColdBytes ?? "?").join("/")];
    })),
    "",
  ].join("\n"),
);

const outPath = writeBenchResults("engine", {
  model: { ...BENCH_SHAPE, vocab },
  workload,
  kvCache: "f16",
  ourKernelPath: kernelPath,
  llamaBuilds,
  rounds,
  bandwidth: { method: "wasm SIMD i32x4 sum, worker_threads, best pass, before each row of each round", runs: bandwidthRuns },
  rows: records,
  load: { method: "cold: dd iflag=nocache count=0 (posix_fadvise DONTNEED) then NativeModel.load; warm: load again", runs: loads },
});
log(`wrote ${outPath}`);
