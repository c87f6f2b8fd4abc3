// Where a decode step's CPU goes, and what the thread pool's waits cost: batches of 8 and 16
// sequences, each with its own rank-16 adapter (8 adapters, mixed), decoding on the bench model
// (Q4_0 by default) at 2 threads. Per step: wall time, CPU time of this process (all threads,
// process.cpuUsage), and the pool's own wait counters (CPU spent spinning; time asleep). The
// pool's waits are switched per context (EL_POOL_WAIT / EL_POOL_SPIN_US, read when a context is
// created), so every wait policy runs in this one process, alternated step run by step run, on
// a quiet machine and with a busy process beside it (one more runnable thread than cores:
// the oversubscribed case). A gap between steps (--gaps) stands for the daemon's JavaScript
// work between two steps, where helpers that spin burn CPU and helpers that sleep do not.
// Against the physical limits: the bytes a step must read (weights, each adapter once) over
// the memory bandwidth measured in the same run, and the batch's multiply-adds.
// Usage: npm run bench:pool -- [--batches 8,16] [--waits legacy,spin20] [--gaps 0,2] [--steps 24] [--rounds 3] [--no-busy]
// Prints tables; writes bench-results/pool-<date>.json.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

import { Command, InvalidArgumentError } from "commander";

import { createSampler, type NativeContext } from "../src/engine/context.js";
import { GREEDY } from "../src/engine/engine.js";
import { NativeModel } from "../src/engine/model.js";
import { packageRoot } from "../src/engine/native.js";
import { measureBandwidth } from "./lib/bandwidth.js";
import { ALL_BENCH_TYPES, benchAdapters, benchModel, type BenchType } from "./lib/bench-model.js";

const BENCH_ADAPTER_RANK = 16; // as bench:workload's adapters
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";
import { median, promptIds } from "./lib/workload.js";

const N_ADAPTERS = 8;
const PROMPT = 8;

/** A wait policy: "legacy" (the earlier pool), or "spin<us>" (spin that long, then sleep). */
function waitArg(s: string): string {
  if (s !== "legacy" && !/^spin\d+$/.test(s)) throw new InvalidArgumentError(`expected legacy or spin<microseconds>, got ${s}`);
  return s;
}
const ints = (min: number) => (v: string) =>
  v.split(",").map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected integers >= ${min}`);
    return n;
  });
const int = (min: number) => (v: string) => ints(min)(v)[0];

const opts = new Command()
  .name("bench-pool")
  .description("CPU per token of batched mixed-adapter decode steps, per thread-pool wait policy, quiet and oversubscribed")
  .option("--type <t>", "bench model weight type", (s: string) => {
    if (!(ALL_BENCH_TYPES as readonly string[]).includes(s)) throw new InvalidArgumentError(`expected one of ${ALL_BENCH_TYPES.join(", ")}`);
    return s as BenchType;
  }, "q4_0" as BenchType)
  .option("--threads <n>", "engine threads", int(1), 2)
  .option("--batches <list>", "sequences per step", ints(1), [8, 16])
  .option("--waits <list>", "pool wait policies: legacy, spin<us>", (v: string) => v.split(",").map((s) => waitArg(s.trim())), ["legacy", "spin20"])
  .option("--gaps <list>", "milliseconds between steps (the daemon's JS work; idle here)", ints(0), [0, 2])
  .option("--steps <n>", "timed decode steps per run", int(1), 24)
  .option("--rounds <n>", "runs of every configuration, alternated", int(1), 3)
  .option("--no-busy", "skip the oversubscribed runs")
  .parse()
  .opts<{ type: BenchType; threads: number; batches: number[]; waits: string[]; gaps: number[]; steps: number; rounds: number; busy: boolean }>();

const log = (s: string) => process.stderr.write(`${s}\n`);
const cache = join(packageRoot(), ".tmp", "bench-models");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Per-step means of one run. */
interface StepFigures {
  wallMs: number;
  cpuMs: number; // this process, every thread
  spinMs: number; // the pool's threads polling (CPU)
  sleepMs: number; // the pool's threads asleep
  sleeps: number;
}

interface Cell {
  load: "quiet" | "busy";
  batch: number;
  gapMs: number;
  wait: string;
  runs: StepFigures[];
}

function envFor(wait: string): Record<string, string | undefined> {
  const timed = { EL_POOL_STATS: "1" }; // the pool times its waits (costs system calls: benchmark only)
  return wait === "legacy" ? { ...timed, EL_POOL_WAIT: "legacy", EL_POOL_SPIN_US: undefined } : { ...timed, EL_POOL_WAIT: undefined, EL_POOL_SPIN_US: wait.slice(4) };
}

/** A context whose pool waits as `wait` says (the pool reads the environment when it is created). */
async function contextFor(model: NativeModel, wait: string, adapters: string[]): Promise<NativeContext> {
  const saved = { EL_POOL_WAIT: process.env.EL_POOL_WAIT, EL_POOL_SPIN_US: process.env.EL_POOL_SPIN_US, EL_POOL_STATS: process.env.EL_POOL_STATS };
  const set = (env: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  };
  set(envFor(wait));
  try {
    const batch = Math.max(...opts.batches);
    const ctx = await model.createContext({
      threads: opts.threads, nCtx: PROMPT + opts.steps + 8, nSeqMax: batch, nBatchMax: batch * PROMPT, kvType: "f16",
      loraSlots: N_ADAPTERS, loraMaxRank: BENCH_ADAPTER_RANK, loraPoolType: "f16",
    });
    for (const [i, p] of adapters.entries()) await ctx.loadAdapter(i, p);
    return ctx;
  } finally {
    set(saved);
  }
}

/** `batch` sequences, sequence i on adapter i % 8: the prompt untimed, then `steps` timed decode steps. */
async function run(ctx: NativeContext, bos: number, batch: number, gapMs: number, steps: number): Promise<StepFigures> {
  const seqs = Array.from({ length: batch }, (_, i) => i);
  const samplers = seqs.map(() => createSampler(GREEDY));
  const slot = (i: number) => i % N_ADAPTERS;
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
  const sum: StepFigures = { wallMs: 0, cpuMs: 0, spinMs: 0, sleepMs: 0, sleeps: 0 };
  for (let step = 0; step < steps; step++) {
    if (gapMs > 0) await sleep(gapMs); // counted: the pool's helpers wait through it
    const st0 = ctx.stats();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    r = await ctx.decode(
      {
        tokens: seqs.map((i) => r.tokens[i]), pos: seqs.map(() => PROMPT + step), seq: seqs,
        loraSlot: seqs.map(slot), loraScale: seqs.map(() => 1), logits: seqs.map(() => 1),
      },
      samplers,
    );
    sum.wallMs += performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    sum.cpuMs += (cpu.user + cpu.system) / 1000;
    // The counters include the gap before this step (a helper's wait ends when the step starts).
    const st1 = ctx.stats();
    sum.spinMs += (st1.poolSpinNs - st0.poolSpinNs) / 1e6;
    sum.sleepMs += (st1.poolSleepNs - st0.poolSleepNs) / 1e6;
    sum.sleeps += st1.poolSleeps - st0.poolSleeps;
  }
  seqs.forEach((i) => ctx.seqClear(i));
  return { wallMs: sum.wallMs / steps, cpuMs: sum.cpuMs / steps, spinMs: sum.spinMs / steps, sleepMs: sum.sleepMs / steps, sleeps: sum.sleeps / steps };
}

/** A process that keeps one core busy: with the engine's threads, one more runnable thread than cores. */
function busyProcess(): ChildProcess {
  return spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
}

async function main(): Promise<void> {
  const modelPath = await benchModel(cache, opts.type, log);
  const adapters = await benchAdapters(cache, modelPath, N_ADAPTERS, BENCH_ADAPTER_RANK, log);
  const model = await NativeModel.load(modelPath);
  const contexts = new Map<string, NativeContext>();
  const cells: Cell[] = [];
  let bandwidthGbPerS = NaN;
  try {
    for (const w of opts.waits) contexts.set(w, await contextFor(model, w, adapters));
    const slotBytes = contexts.get(opts.waits[0])!.adapterSlot(0).bytes;
    [{ gbPerS: bandwidthGbPerS }] = await measureBandwidth([opts.threads]);
    log(`memory read bandwidth, ${opts.threads} threads: ${bandwidthGbPerS.toFixed(1)} GB/s`);
    const loads: Cell["load"][] = opts.busy ? ["quiet", "busy"] : ["quiet"];
    const cell = (load: Cell["load"], batch: number, gapMs: number, wait: string) => {
      let c = cells.find((x) => x.load === load && x.batch === batch && x.gapMs === gapMs && x.wait === wait);
      if (!c) cells.push((c = { load, batch, gapMs, wait, runs: [] }));
      return c;
    };
    for (const w of opts.waits) await run(contexts.get(w)!, model.info.bos, opts.batches[0], 0, 2); // warm-up
    for (let round = 0; round < opts.rounds; round++) {
      for (const load of loads) {
        const busy = load === "busy" ? busyProcess() : null;
        try {
          if (busy) await sleep(200);
          for (const batch of opts.batches)
            for (const gapMs of opts.gaps)
              for (const w of opts.waits) cell(load, batch, gapMs, w).runs.push(await run(contexts.get(w)!, model.info.bos, batch, gapMs, opts.steps));
        } finally {
          busy?.kill();
        }
        log(`round ${round + 1}/${opts.rounds} ${load} done`);
      }
    }
    report(model, slotBytes, bandwidthGbPerS, cells);
  } finally {
    for (const c of contexts.values()) c.dispose();
    model.dispose();
  }
}

function report(model: NativeModel, slotBytes: number, bandwidthGbPerS: number, cells: Cell[]): void {
  const info = model.info;
  const med = (c: Cell, f: (s: StepFigures) => number) => median(c.runs.map(f));
  const header = ["load", "batch", "gap ms", "waits", "ms/step", "tok/s", "CPU ms/step", "CPU s/1k tok", "cores busy", "spin ms/step", "sleep ms/step", "sleeps/step", "vs " + opts.waits[0]];
  const rows = cells.map((c) => {
    const base = cells.find((x) => x.load === c.load && x.batch === c.batch && x.gapMs === c.gapMs && x.wait === opts.waits[0])!;
    const cpuPerTok = (x: Cell) => med(x, (s) => s.cpuMs) / x.batch; // ms per token = s per 1k tokens
    return [
      c.load, String(c.batch), String(c.gapMs), c.wait, fmt(med(c, (s) => s.wallMs), 1), fmt((c.batch * 1000) / med(c, (s) => s.wallMs), 0),
      fmt(med(c, (s) => s.cpuMs), 1), fmt(cpuPerTok(c), 2), fmt(med(c, (s) => s.cpuMs / (s.wallMs + c.gapMs)), 2),
      fmt(med(c, (s) => s.spinMs), 2), fmt(med(c, (s) => s.sleepMs), 2), fmt(med(c, (s) => s.sleeps), 1),
      c === base ? "" : `CPU ${fmt((cpuPerTok(c) / cpuPerTok(base) - 1) * 100, 0, "%")}, wall ${fmt((med(c, (s) => s.wallMs) / med(base, (s) => s.wallMs) - 1) * 100, 0, "%")}`,
    ];
  });
  // The physical limits of one step: every weight read once, each distinct adapter once (KV
  // reads are a few hundred KiB here); two operations per multiply-add of the base weights.
  const limits = opts.batches.map((batch) => {
    const bytes = info.weightBytes + Math.min(batch, N_ADAPTERS) * slotBytes;
    const readMs = (bytes / (bandwidthGbPerS * 1e9)) * 1000;
    const gflop = (2 * info.nParams * batch) / 1e9;
    const quiet = cells.filter((c) => c.load === "quiet" && c.batch === batch && c.gapMs === 0);
    const best = Math.min(...quiet.map((c) => med(c, (s) => s.wallMs)));
    return { batch, bytes, readMs, gflop, bestMsPerStep: best, gflopPerS: gflop / (best / 1000) };
  });
  process.stdout.write(
    [
      `bench model ${opts.type} (${(info.nParams / 1e6).toFixed(0)}M parameters, ${(info.weightBytes / 2 ** 20).toFixed(0)} MiB), ${info.kernelPath}, ` +
        `${opts.threads} threads, ${N_ADAPTERS} rank-${BENCH_ADAPTER_RANK} F16 adapters (${(slotBytes / 2 ** 20).toFixed(1)} MiB each), sequence i on adapter i % ${N_ADAPTERS}`,
      `medians over ${opts.rounds} round(s) of ${opts.steps}-step means; waits alternated run by run; "busy": a spinning process beside the engine (${opts.threads + 1} runnable threads on ${opts.threads} cores when threads = cores)`,
      "CPU = this process (engine threads + JS); spin = the pool's threads polling (CPU, the gap before a step included); sleep = asleep in the kernel",
      renderTable(header, rows),
      "",
      `physical limits of one step (memory read bandwidth ${bandwidthGbPerS.toFixed(1)} GB/s, measured in this run):`,
      renderTable(
        ["batch", "bytes read MiB", "read-time floor ms", "GFLOP/step", "best quiet ms/step", "floor / best", "achieved GFLOP/s"],
        limits.map((l) => [String(l.batch), fmt(l.bytes / 2 ** 20, 0), fmt(l.readMs, 1), fmt(l.gflop, 2), fmt(l.bestMsPerStep, 1), fmt((l.readMs / l.bestMsPerStep) * 100, 0, "%"), fmt(l.gflopPerS, 0)]),
      ),
      "",
    ].join("\n"),
  );
  const path = writeBenchResults("pool", { model: { type: opts.type, nParams: info.nParams, weightBytes: info.weightBytes, kernelPath: info.kernelPath }, options: opts, slotBytes, bandwidthGbPerS, limits, cells });
  log(`wrote ${path}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-pool: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
