// Engine speed benchmark against llama.cpp, on one synthetic model of realistic size per
// weight type (F16, Q8_0, Q4_0), at 1 and 2 threads: one-sequence decode and 128-token prefill
// tokens/s, the ratio to llama.cpp (its own CPU choice, AVX-512 here, and its AVX2 build), and
// decode as a share of the memory-bandwidth roofline measured in the same run.
// Usage: npm run bench:engine -- [--types f16,q8_0,q4_0] [--threads 1,2] [--quick] [--no-baseline]
// Progress goes to stderr; the tables to stdout; all figures to bench-results/engine-<date>.json.

import { join } from "node:path";

import { Command, InvalidArgumentError } from "commander";

import { packageRoot } from "../src/engine/native.js";
import { measureBandwidth, type BandwidthResult } from "./lib/bandwidth.js";
import { BENCH_SHAPE, BENCH_TYPES, benchModel, type BenchType } from "./lib/bench-model.js";
import type { LlamaChildResult } from "./lib/llama-child.js";
import { avx2Install, defaultInstall, runLlama, type LlamaInstall } from "./lib/llama-baseline.js";
import { benchOurs } from "./lib/ours.js";
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";
import { FULL, QUICK, type Speed } from "./lib/workload.js";

function list<T>(parse: (s: string) => T) {
  return (v: string): T[] => v.split(",").map((s) => parse(s.trim()));
}

function benchType(s: string): BenchType {
  if (!(BENCH_TYPES as string[]).includes(s)) throw new InvalidArgumentError(`expected ${BENCH_TYPES.join(", ")}`);
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
  .option("--quick", "fewer tokens, one run each", false)
  .option("--no-baseline", "skip llama.cpp")
  .option("--no-avx2", "skip llama.cpp's AVX2 build")
  .parse()
  .opts<{ types: BenchType[]; threads: number[]; quick: boolean; baseline: boolean; avx2: boolean }>();

const log = (s: string) => process.stderr.write(`${s}\n`);
const root = packageRoot();
const workload = opts.quick ? QUICK : FULL;

interface Row {
  type: BenchType;
  threads: number;
  weightBytes: number;
  ours: Speed;
  llama: Record<string, Speed | { error: string }>; // by install name
}

async function bandwidth(when: string): Promise<BandwidthResult[]> {
  log(`memory bandwidth (${when})...`);
  const r = await measureBandwidth(opts.threads);
  for (const b of r) log(`  ${b.threads}t: ${b.gbPerS.toFixed(1)} GB/s (passes ${b.passesGbPerS.map((x) => x.toFixed(1)).join(", ")})`);
  return r;
}

const installs: LlamaInstall[] = [];
if (opts.baseline) {
  installs.push(defaultInstall(join(root, "node_modules")));
  if (opts.avx2) installs.push(avx2Install(join(root, "node_modules")));
}

const bwStart = await bandwidth("start");
const rows: Row[] = [];
const llamaBuilds: Record<string, Omit<LlamaChildResult, "speed">> = {};
let kernelPath = "";
let vocab = 0;
try {
  for (const type of opts.types) {
    const modelPath = await benchModel(join(root, ".tmp", "bench-models"), type, log);
    log(`${type}: ${modelPath}`);
    // One thread count at a time, ours then each llama.cpp build, so slow drifts in the
    // machine's load hit both engines alike.
    for (const threads of opts.threads) {
      const ours = await benchOurs(modelPath, [threads], workload, log);
      kernelPath = ours.info.kernelPath;
      vocab = ours.info.nVocab;
      const row: Row = { type, threads, weightBytes: ours.info.weightBytes, ours: ours.speeds.get(threads)!, llama: {} };
      for (const install of installs) {
        try {
          const { speed, ...build } = await runLlama(install, modelPath, threads, workload);
          llamaBuilds[install.name] = build;
          row.llama[install.name] = speed;
          log(`  llama ${install.name.padEnd(7)} ${threads}t: decode ${speed.decode.toFixed(1)} tok/s, prefill ${speed.prefill.toFixed(1)} tok/s (${build.cpuLibrary})`);
        } catch (e) {
          row.llama[install.name] = { error: String(e) };
          log(`  llama ${install.name}: ${String(e)}`);
        }
      }
      rows.push(row);
    }
  }
} finally {
  for (const i of installs) i.dispose();
}
const bwEnd = await bandwidth("end");

// The roofline uses the best bandwidth seen at that thread count in this run.
const bestBw = new Map(opts.threads.map((t) => [t, Math.max(...[...bwStart, ...bwEnd].filter((b) => b.threads === t).map((b) => b.gbPerS))]));
const speedOf = (r: Row, name: string): Speed | undefined => {
  const s = r.llama[name];
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
  const roofline = (bestBw.get(r.threads)! * 1e9) / r.weightBytes;
  const l = names.map((n) => speedOf(r, n));
  decodeRows.push([
    r.type, String(r.threads), fmt(r.ours.decode),
    ...l.flatMap((s) => [fmt(s?.decode), fmt(ratio(r.ours.decode, s?.decode), 2, "x")]),
    fmt(roofline), fmt((100 * r.ours.decode) / roofline, 0, "%"),
    ...l.map((s) => fmt(s && (100 * s.decode) / roofline, 0, "%")),
  ]);
  prefillRows.push([
    r.type, String(r.threads), fmt(r.ours.prefill),
    ...l.flatMap((s) => [fmt(s?.prefill), fmt(ratio(r.ours.prefill, s?.prefill), 2, "x")]),
  ]);
  return { ...r, rooflineDecodeTps: roofline, bandwidthGbPerS: bestBw.get(r.threads) };
});

const w = workload;
process.stdout.write(
  [
    `Synthetic llama ${BENCH_SHAPE.nEmbd}x${BENCH_SHAPE.nLayer}, ffn ${BENCH_SHAPE.nFf}, heads ${BENCH_SHAPE.nHead}/${BENCH_SHAPE.nHeadKv}, vocab ${vocab}; KV cache F16 in both engines; our kernels: ${kernelPath}`,
    `Memory read bandwidth (wasm SIMD sum over ${bwStart[0].bytes / 2 ** 20} MiB, best pass, start/end of run): ` +
      opts.threads.map((t) => `${t}t ${fmt(bwStart.find((b) => b.threads === t)?.gbPerS)}/${fmt(bwEnd.find((b) => b.threads === t)?.gbPerS)} GB/s`).join(", "),
    "",
    `Decode, one sequence, tokens/s (median of ${w.runs}; ${w.decodeTokens} tokens after a ${w.promptTokens}-token prompt); ratio = ours / llama.cpp;`,
    "roofline = bandwidth / weight bytes per token (all weights read once per token; KV reads are negligible here)",
    renderTable(decodeHeader, decodeRows),
    "",
    `Prefill, ${w.prefillTokens}-token prompt in one batch, tokens/s (median of ${w.runs})`,
    renderTable(prefillHeader, prefillRows),
    "",
  ].join("\n"),
);

const outPath = writeBenchResults("engine", {
  model: { ...BENCH_SHAPE, vocab },
  workload,
  kvCache: "f16",
  ourKernelPath: kernelPath,
  llamaBuilds,
  bandwidth: { method: "wasm SIMD i32x4 sum, worker_threads, best pass", start: bwStart, end: bwEnd },
  rows: records,
});
log(`wrote ${outPath}`);
