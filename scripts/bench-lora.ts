// Batched multi-LoRA speed: aggregate decode tokens/s of our engine at batch 1, 2, 4 and 8 with
// (a) no adapter, (b) one rank-16 adapter (all 7 modules) shared by every sequence, (c) a different
// adapter per sequence; the LoRA overhead versus (a); and, in the same run, llama.cpp
// (node-llama-cpp) serving the same 8 different adapters the ways it allows: 8 contexts (one per
// adapter) generating concurrently, and one context re-created for each adapter switch. Our
// engine runs with each LoRA pool type: f16 (llama.cpp's arithmetic), q8 (8-bit adapters) and q4
// (4-bit adapters).
// Usage: npm run bench:lora -- [--types f16,q4_0] [--pools f16,q8,q4] [--threads 2] [--quick] [--no-baseline]
// With a different adapter per sequence, a step reads each adapter once, so the report also gives,
// at batch 8, the adapter bytes a step reads, the time they add, the read rate that implies, the
// rate the 15% target would ask for, and the machine's read bandwidth measured just before
// each pool's runs (the bench:engine probe, with the same thread count).
// Progress goes to stderr; the tables to stdout; all figures to bench-results/lora-<date>.json.
import { join } from "node:path";

import { Command, InvalidArgumentError } from "commander";
import { getLlama, type LlamaContext, type LlamaContextSequence, type Token } from "node-llama-cpp";

import { LLAMA_OPTIONS, loraContextOptions } from "../src/bench/llama-options.js";
import { createSampler, type NativeContext } from "../src/engine/context.js";
import { GREEDY } from "../src/engine/engine.js";
import { NativeModel } from "../src/engine/model.js";
import { LORA_POOL_TYPES, type LoraPoolType } from "../src/engine/types.js";
import { packageRoot } from "../src/engine/native.js";
import { measureBandwidth } from "./lib/bandwidth.js";
import { BENCH_SHAPE, BENCH_TYPES, benchAdapters, benchModel, type BenchType } from "./lib/bench-model.js";
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";
import { median, promptIds } from "./lib/workload.js";

const BATCHES = [1, 2, 4, 8];
const N_ADAPTERS = 8;
const RANK = 16;
const PROMPT = 8; // tokens before the timed decode (BOS included)
const MODES = ["none", "shared", "distinct"] as const;
type Mode = (typeof MODES)[number];

const opts = new Command()
  .name("bench-lora")
  .description("Aggregate decode speed with many LoRA adapters: our batched engine vs llama.cpp")
  .option("--types <list>", "weight types", (v: string) =>
    v.split(",").map((s) => {
      if (!(BENCH_TYPES as string[]).includes(s.trim())) throw new InvalidArgumentError(`expected ${BENCH_TYPES.join(", ")}`);
      return s.trim() as BenchType;
    }), ["f16", "q4_0"] as BenchType[])
  .option("--pools <list>", "LoRA pool types of our engine", (v: string) =>
    v.split(",").map((s) => {
      if (!LORA_POOL_TYPES.includes(s.trim() as LoraPoolType)) throw new InvalidArgumentError(`expected ${LORA_POOL_TYPES.join(", ")}`);
      return s.trim() as LoraPoolType;
    }), [...LORA_POOL_TYPES])
  .option("--threads <n>", "compute threads (both engines)", (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a positive integer");
    return n;
  }, 2)
  .option("--quick", "fewer tokens, one run each", false)
  .option("--no-baseline", "skip llama.cpp")
  .parse()
  .opts<{ types: BenchType[]; pools: LoraPoolType[]; threads: number; quick: boolean; baseline: boolean }>();

const log = (s: string) => process.stderr.write(`${s}\n`);
const root = packageRoot();
const cache = join(root, ".tmp", "bench-models");
const DECODE = opts.quick ? 8 : 32; // timed decode steps
const RUNS = opts.quick ? 1 : 5; // ours: cheap, and the machine's noise needs it
const LLAMA_RUNS = opts.quick ? 1 : 3; // 8 contexts x 2 threads on 2 cores runs at a few tok/s

// ---- ours ------------------------------------------------------------------------------------

/** Aggregate tokens/s of `batch` sequences decoding together for `steps` steps (prompt untimed). */
async function oursRun(ctx: NativeContext, bos: number, batch: number, mode: Mode, steps: number): Promise<number> {
  const slot = (i: number) => (mode === "none" ? -1 : mode === "shared" ? 0 : i);
  const seqs = Array.from({ length: batch }, (_, i) => i);
  const samplers = seqs.map(() => createSampler(GREEDY));
  seqs.forEach((i) => ctx.seqClear(i));
  const prompt = promptIds(bos, PROMPT);
  const all = seqs.flatMap((i) => prompt.map((t, p) => ({ t, p, i })));
  let r = await ctx.decode(
    {
      tokens: all.map((x) => x.t), pos: all.map((x) => x.p), seq: all.map((x) => x.i),
      loraSlot: all.map((x) => slot(x.i)), loraScale: all.map(() => 1), logits: all.map((x) => (x.p === PROMPT - 1 ? 1 : 0)),
    },
    samplers,
  );
  const t0 = performance.now();
  for (let step = 0; step < steps; step++) {
    r = await ctx.decode(
      {
        tokens: seqs.map((i) => r.tokens[i]), pos: seqs.map(() => PROMPT + step), seq: seqs,
        loraSlot: seqs.map(slot), loraScale: seqs.map(() => 1), logits: seqs.map(() => 1),
      },
      samplers,
    );
  }
  const tps = (batch * steps) / ((performance.now() - t0) / 1000);
  seqs.forEach((i) => ctx.seqClear(i));
  return tps;
}

type OursTable = Record<number, Record<Mode, number[]>>; // batch -> mode -> runs

async function benchOurs(
  modelPath: string, adapters: string[], pool: LoraPoolType,
): Promise<{ kernelPath: string; runs: OursTable; slotBytes: number }> {
  const model = await NativeModel.load(modelPath);
  try {
    const ctx = await model.createContext({
      threads: opts.threads, nCtx: PROMPT + DECODE + 8, nSeqMax: 8, nBatchMax: 8 * PROMPT, kvType: "f16",
      loraSlots: N_ADAPTERS, loraMaxRank: RANK, loraPoolType: pool,
    });
    try {
      let slotBytes = 0;
      for (const [i, p] of adapters.entries()) slotBytes = (await ctx.loadAdapter(i, p)).bytes;
      const runs: OursTable = {};
      for (const batch of BATCHES) {
        runs[batch] = { none: [], shared: [], distinct: [] };
        for (const mode of MODES) await oursRun(ctx, model.info.bos, batch, mode, 2); // warm-up
        // Modes interleaved within each round, so slow drifts in the machine's load hit all alike.
        for (let k = 0; k < RUNS; k++) for (const mode of MODES) runs[batch][mode].push(await oursRun(ctx, model.info.bos, batch, mode, DECODE));
        log(`  ours (${pool} pool) batch ${batch}: ` + MODES.map((m) => `${m} ${median(runs[batch][m]).toFixed(1)}`).join(", ") + " tok/s");
      }
      return { kernelPath: model.info.kernelPath, runs, slotBytes };
    } finally {
      ctx.dispose();
    }
  } finally {
    model.dispose();
  }
}

// ---- llama.cpp -------------------------------------------------------------------------------

interface LlamaResult {
  threads: number; // per context
  contextsTps: number[]; // 8 contexts generating concurrently, aggregate decode tok/s per run
  switchTps: number[]; // one context re-created per adapter: decode tokens over total time
  switchMs: number[]; // context creation with the adapter (median per run)
}

async function benchLlama(modelPath: string, adapters: string[], threads: number): Promise<LlamaResult> {
  const llama = await getLlama(LLAMA_OPTIONS);
  const model = await llama.loadModel({ modelPath });
  const bos = model.tokens.bos;
  if (bos === null) throw new Error("model has no BOS token");
  const prompt = promptIds(bos, PROMPT) as Token[];
  const create = (filePath: string) =>
    model.createContext(loraContextOptions({ filePath, contextSize: 256, threads }));
  const decode = async (seq: LlamaContextSequence, steps: number) => {
    let got = 0;
    for await (const _ of seq.evaluate(prompt.slice(-1), { temperature: 0 })) if (++got === steps) break;
  };
  const result: LlamaResult = { threads, contextsTps: [], switchTps: [], switchMs: [] };
  try {
    // (1) one context per adapter, all generating at once.
    const contexts: LlamaContext[] = [];
    for (const a of adapters) contexts.push(await create(a));
    const seqs = contexts.map((c) => c.getSequence());
    try {
      for (let k = 0; k <= LLAMA_RUNS; k++) {
        const steps = k === 0 ? 2 : DECODE; // k = 0: warm-up
        for (const s of seqs) {
          await s.clearHistory();
          await s.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
        }
        const t0 = performance.now();
        await Promise.all(seqs.map((s) => decode(s, steps)));
        if (k > 0) result.contextsTps.push((adapters.length * steps) / ((performance.now() - t0) / 1000));
      }
    } finally {
      for (const c of contexts) await c.dispose();
    }
    log(`  llama.cpp ${threads}t, 8 contexts: ${median(result.contextsTps).toFixed(1)} tok/s`);
    // (2) one context at a time, created with the adapter and disposed after its request.
    for (let k = 0; k < LLAMA_RUNS; k++) {
      const creates: number[] = [];
      const t0 = performance.now();
      for (const a of adapters) {
        const c0 = performance.now();
        const ctx = await create(a);
        creates.push(performance.now() - c0);
        const seq = ctx.getSequence();
        await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
        await decode(seq, DECODE);
        await ctx.dispose();
      }
      result.switchTps.push((adapters.length * DECODE) / ((performance.now() - t0) / 1000));
      result.switchMs.push(median(creates));
    }
    log(`  llama.cpp ${threads}t, context per switch: ${median(result.switchTps).toFixed(1)} tok/s, ${median(result.switchMs).toFixed(0)} ms per context`);
    return result;
  } finally {
    await model.dispose();
    await llama.dispose();
  }
}

// ---- run -------------------------------------------------------------------------------------

interface TypeRecord {
  type: BenchType;
  ours: Partial<Record<LoraPoolType, OursTable>>;
  slotBytes: Partial<Record<LoraPoolType, number>>;
  bandwidthGbPerS: Partial<Record<LoraPoolType, number>>; // measured just before the pool's runs
  llama: LlamaResult[];
  llamaErrors: string[];
}

const records: TypeRecord[] = [];
const inputs: { modelPath: string; adapters: string[] }[] = [];
let kernelPath = "";
// Every run of ours first, then llama.cpp's: measured, our runs after a llama.cpp run in this
// process were up to 40% slower (batch 8, Q4_0) than in a process where none had run.
for (const type of opts.types) {
  const modelPath = await benchModel(cache, type, log);
  const adapters = await benchAdapters(cache, modelPath, N_ADAPTERS, RANK, log);
  log(`${type}: ${modelPath}`);
  const rec: TypeRecord = { type, ours: {}, slotBytes: {}, bandwidthGbPerS: {}, llama: [], llamaErrors: [] };
  for (const pool of opts.pools) {
    const [bw] = await measureBandwidth([opts.threads]);
    rec.bandwidthGbPerS[pool] = bw.gbPerS;
    log(`  memory read bandwidth ${opts.threads}t: ${bw.gbPerS.toFixed(1)} GB/s`);
    const ours = await benchOurs(modelPath, adapters, pool);
    kernelPath = ours.kernelPath;
    rec.ours[pool] = ours.runs;
    rec.slotBytes[pool] = ours.slotBytes;
  }
  records.push(rec);
  inputs.push({ modelPath, adapters });
}
for (const [i, rec] of records.entries()) {
  if (opts.baseline) log(`${rec.type}: llama.cpp`);
  // llama.cpp at 1 thread per context as well: with 8 contexts (or other load) on few cores, its
  // spinning worker threads can make more threads per context far slower.
  for (const threads of opts.baseline ? [...new Set([1, opts.threads])] : []) {
    try {
      rec.llama.push(await benchLlama(inputs[i].modelPath, inputs[i].adapters, threads));
    } catch (e) {
      rec.llamaErrors.push(String(e));
      log(`  llama.cpp ${rec.type} ${threads}t: ${String(e)}`);
    }
  }
}

const pct = (x: number, base: number) => (100 * (x - base)) / base;
const oursRows: string[][] = [];
const llamaRows: string[][] = [];
const bytesRows: string[][] = [];
// (c) within 15% of (a): t_c <= t_a / 0.85, so the adapters may add at most this share of t_a.
const TARGET_EXTRA = 1 / 0.85 - 1;
const summary = records.flatMap((r) => {
  const llamaBest = r.llama.length ? Math.max(...r.llama.flatMap((l) => [median(l.contextsTps), median(l.switchTps)])) : undefined;
  for (const l of r.llama)
    llamaRows.push([r.type, String(l.threads), fmt(median(l.contextsTps)), fmt(median(l.switchTps)), fmt(median(l.switchMs), 0),
      ...opts.pools.map((pool) => fmt(median(r.ours[pool]![8].distinct) / Math.max(median(l.contextsTps), median(l.switchTps)), 2, "x"))]);
  return opts.pools.map((pool) => {
    const runs = r.ours[pool]!;
    const m = (b: number, mode: Mode) => median(runs[b][mode]);
    for (const b of BATCHES) {
      oursRows.push([
        r.type, pool, String(b), fmt(m(b, "none")), fmt(m(b, "shared")), fmt(m(b, "distinct")),
        fmt(pct(m(b, "shared"), m(b, "none")), 1, "%"), fmt(pct(m(b, "distinct"), m(b, "none")), 1, "%"),
      ]);
    }
    const c8 = m(8, "distinct");
    // One step of batch 8 reads each of the 8 adapters once: the bytes, the seconds they add
    // over (a), and the read rate those imply and the one the target would need.
    const adapterBytes = N_ADAPTERS * (r.slotBytes[pool] ?? 0);
    const stepA = 8 / m(8, "none"), stepC = 8 / c8;
    const loraGbPerS = stepC > stepA ? adapterBytes / (stepC - stepA) / 1e9 : undefined;
    const neededGbPerS = adapterBytes / (TARGET_EXTRA * stepA) / 1e9;
    bytesRows.push([
      r.type, pool, fmt(adapterBytes / 2 ** 20), fmt(1000 * stepA, 2), fmt(1000 * (stepC - stepA), 2),
      loraGbPerS === undefined ? "-" : fmt(loraGbPerS), fmt(neededGbPerS), fmt(r.bandwidthGbPerS[pool] ?? NaN),
    ]);
    return {
      type: r.type,
      pool,
      slotBytes: r.slotBytes[pool],
      adapterBytesPerStepAt8: adapterBytes,
      loraMsPerStepAt8: 1000 * (stepC - stepA),
      loraReadGbPerSAt8: loraGbPerS,
      targetNeedsGbPerS: neededGbPerS,
      bandwidthGbPerS: r.bandwidthGbPerS[pool],
      distinctAt8: c8,
      overheadDistinctAt8Pct: pct(c8, m(8, "none")),
      withinFifteenPct: pct(c8, m(8, "none")) >= -15,
      llamaBest,
      speedupVsLlamaBest: llamaBest && c8 / llamaBest,
      atLeastThreeTimesLlama: llamaBest === undefined ? undefined : c8 >= 3 * llamaBest,
    };
  });
});

process.stdout.write(
  [
    `Synthetic llama ${BENCH_SHAPE.nEmbd}x${BENCH_SHAPE.nLayer}, ffn ${BENCH_SHAPE.nFf}, heads ${BENCH_SHAPE.nHead}/${BENCH_SHAPE.nHeadKv}; ` +
      `${N_ADAPTERS} adapters of rank ${RANK} on q,k,v,o,gate,up,down (F16); ${opts.threads} threads; KV cache F16; our kernels: ${kernelPath}`,
    `Aggregate decode tokens/s (median of ${RUNS}, llama.cpp ${LLAMA_RUNS}; ${DECODE} steps after a ${PROMPT}-token prompt per sequence);`,
    "(a) no adapter, (b) one adapter shared by all sequences, (c) a different adapter per sequence; overhead vs (a)",
    renderTable(["type", "pool", "batch", "(a) none", "(b) shared", "(c) distinct", "(b) vs (a)", "(c) vs (a)"], oursRows),
    `Bytes per adapter in the pool: ${records.map((r) => `${r.type} ` + opts.pools.map((p) => `${p} ${((r.slotBytes[p] ?? 0) / 1048576).toFixed(1)} MiB`).join(", ")).join("; ")}`,
    "",
    `Batch 8, a different adapter per sequence: what the adapters cost in reads. A step reads each adapter once; ` +
      "LoRA ms = step time (c) - (a); LoRA GB/s = adapter bytes / LoRA ms; the 15% target allows LoRA at most " +
      `${fmt(100 * TARGET_EXTRA, 1, "%")} of (a)'s step time, so it needs the adapters read at "target GB/s"; ` +
      `"machine GB/s": the bench:engine probe (${opts.threads} threads) just before the pool's runs`,
    renderTable(["type", "pool", "adapter MiB/step", "(a) ms/step", "LoRA ms/step", "LoRA GB/s", "target GB/s", "machine GB/s"], bytesRows),
    "",
    ...(opts.baseline
      ? [
          `llama.cpp (node-llama-cpp) serving the same ${N_ADAPTERS} adapters, one request each (${DECODE} tokens): ` +
            "8 contexts generating concurrently, or one context created per adapter switch (creation time included)",
          renderTable(["type", "llama thr/ctx", "llama 8 contexts", "llama ctx per switch", "ms per ctx",
            ...opts.pools.map((p) => `ours (c) b8 ${p} / this`)], llamaRows),
          "",
        ]
      : []),
    "Targets: (c) within 15% of (a) at batch 8; (c) at batch 8 >= 3x llama.cpp's best for 8 different adapters",
    ...summary.map((s) =>
      `  ${s.type}, ${s.pool} pool: (c) ${fmt(s.distinctAt8)} tok/s, vs (a) at batch 8 ${fmt(s.overheadDistinctAt8Pct, 1, "%")} -> ${s.withinFifteenPct ? "met" : "NOT met"}` +
        (s.speedupVsLlamaBest === undefined ? "" : `; ours / llama.cpp best ${fmt(s.speedupVsLlamaBest, 2, "x")} -> ${s.atLeastThreeTimesLlama ? "met" : "NOT met"}`),
    ),
    "",
  ].join("\n"),
);

const outPath = writeBenchResults("lora", {
  model: BENCH_SHAPE,
  adapters: { count: N_ADAPTERS, rank: RANK, modules: "q,k,v,o,gate,up,down", fileType: "f16" },
  workload: { promptTokens: PROMPT, decodeSteps: DECODE, runs: RUNS, llamaRuns: LLAMA_RUNS, threads: opts.threads, kvCache: "f16" },
  ourKernelPath: kernelPath,
  records,
  summary,
});
log(`wrote ${outPath}`);
