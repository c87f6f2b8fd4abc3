// The paper's workload end to end, side by side: our daemon (through its embedded MQTT broker, streaming) and
// llama.cpp served the ways a node-llama-cpp user would (one context per adapter up to 8, LRU; one context
// re-created per switch; 2 lanes x 1 thread), on the bench model (359M, Q4_0 by default) with n rank-16
// adapters, over a sweep of offered rates. The same seeded trace per rate for every server.
// Usage: npm run bench:workload -- [--rates 0.5,1,2,4] [--duration 120] [--find-slo-rate] [--adapters 100[,1000]] [--alpha 1[,0.5]] [--servers daemon,contexts,switch]
// A rate counts as sustained only when the server kept up with it (its backlog did not grow over the second half
// of the arrivals: metrics.ts) and met the TTFT objective for 95% of requests; --find-slo-rate bisects between
// the highest sustained rate and the lowest failed one above it, per server, until they are within
// --bisect-tolerance of each other (or --bisect-steps more runs).
// Prints a table and the targets' figures; writes bench-results/workload-<date>.json and, in
// bench-results/workload-<date>/, the traces, each run's records, the daemon's log and the figures (SVG, PNG);
// with lists for --adapters or --alpha, one such sweep (JSON and folder n<n>-alpha<a>/) per combination.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { parse as parseYaml } from "yaml";
import type { DriveResult } from "../src/bench/mqtt-driver.js";
import { sustained } from "../src/bench/metrics.js";
import { driveMqtt } from "../src/bench/mqtt-driver.js";
import { progressBar } from "../src/bench/progress.js";
import { bracket, nextRate } from "../src/bench/slo-search.js";
import { generateTrace, PAPER_TRACE, writeTrace } from "../src/bench/trace.js";
import { packageRoot } from "../src/engine/native.js";
import { LORA_POOL_TYPES, type LoraPoolType } from "../src/engine/types.js";
import type { SchedulerStats } from "../src/scheduler/types.js";
import { BENCH_TYPES, benchAdapters, benchModel, type BenchType } from "./lib/bench-model.js";
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";
import { sweepPoint, writeWorkloadFigures } from "./lib/workload-plots.js";
import { adapterFolder, LABEL, mqttTarget, runLlama, SERVERS, startDaemon, type Server } from "./lib/workload-servers.js";

const RANK = 16;
const ADAPTER_FILES = 8; // distinct adapter files; names beyond them link to these (each loaded as its own adapter)

const list = <T>(parse: (s: string) => T) => (v: string) => v.split(",").map((s) => parse(s.trim()));
const num = (s: string) => {
  const n = Number(s);
  if (!(n > 0)) throw new InvalidArgumentError(`expected a positive number, got ${s}`);
  return n;
};
const oneOf = <T extends string>(all: readonly T[]) => (s: string) => {
  if (!all.includes(s as T)) throw new InvalidArgumentError(`expected one of ${all.join(", ")}`);
  return s as T;
};

const opts = new Command()
  .name("bench-workload")
  .description("the EdgeLoRA paper's workload: our daemon vs llama.cpp over a sweep of request rates")
  .option("--rates <list>", "offered rates, requests/s", list(num), [0.5, 1, 2, 4])
  .option("--llama-rates <list>", "rates for llama.cpp (default: --rates)", list(num))
  .option("--duration <s>", "seconds of arrivals per rate (long enough for a server that falls behind to show a growing backlog)", num, 120)
  .option("--drain <s>", "seconds to wait for answers after the last arrival", num, 60)
  .option("--find-slo-rate", "after the rates, bisect towards each server's highest sustained rate", false)
  .option("--bisect-steps <n>", "most runs --find-slo-rate adds per server", num, 4)
  .option("--bisect-tolerance <x>", "--find-slo-rate stops once (failed - sustained) / failed is this small", num, 0.1)
  .option("--adapters <list>", "adapters in the trace; a list sweeps them too", list(num), [PAPER_TRACE.adapters])
  .option("--alpha <list>", "popularity skew; a list sweeps it too", list(num), [PAPER_TRACE.alpha])
  .option("--cv <cv>", "inter-arrival coefficient of variation", num, PAPER_TRACE.cv)
  .option("--tenants <n>", "tenants (MQTT connections)", num, PAPER_TRACE.tenants)
  .option("--seed <n>", "trace seed", num, 1)
  .option("--slo-ms <ms>", "TTFT objective", num, 6000)
  .option("--servers <list>", "daemon, contexts (llama.cpp), switch (llama.cpp)", list(oneOf(SERVERS)), [...SERVERS])
  .option("--type <t>", "bench model weight type", oneOf(BENCH_TYPES), "q4_0" as BenchType)
  .option("--threads <n>", "daemon engine threads; llama.cpp gets this many lanes of 1 thread", num, 2)
  .option("--max-sequences <n>", "daemon scheduler.max_sequences (config/default.yaml's)", num, 32)
  .option("--lora-slots <n>", "daemon model.lora_slots", num, 32)
  .option("--lora-pool <t>", "daemon model.lora_pool_type", oneOf(LORA_POOL_TYPES), "f16" as LoraPoolType)
  .option("--max-contexts <n>", "llama.cpp contexts kept (context-per-adapter mode)", num, 8)
  .option("--cdf-rate <r>", "rate of the TTFT CDF figure (default: the highest rate every server ran)", num)
  .option("--set <section.key=value>", "more daemon config (YAML value), repeatable, e.g. --set mqtt.stream_chunk_ms=0", (v: string, acc: string[]) => [...acc, v], [] as string[])
  .parse()
  .opts<{
    rates: number[]; llamaRates?: number[]; duration: number; drain: number; findSloRate: boolean; bisectSteps: number; bisectTolerance: number; adapters: number[]; alpha: number[]; cv: number; tenants: number;
    seed: number; sloMs: number; servers: Server[]; type: BenchType; threads: number; maxSequences: number; loraSlots: number;
    loraPool: LoraPoolType; maxContexts: number; cdfRate?: number; set: string[];
  }>();

/** --set section.key=value pairs as config sections. */
function configOverrides(pairs: string[]): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const pair of pairs) {
    const m = /^(\w+)\.(\w+)=(.*)$/.exec(pair);
    if (!m) throw new InvalidArgumentError(`--set ${pair}: expected section.key=value`);
    (out[m[1]] ??= {})[m[2]] = parseYaml(m[3]);
  }
  return out;
}

/** a / b as "2.50x"; "n/a" when b is 0 (llama.cpp met no SLO in the sweep) or either is missing. */
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : "n/a");
const log = (s: string) => process.stderr.write(`${s}\n`);
const cache = join(packageRoot(), ".tmp", "bench-models");

interface Run {
  server: Server;
  rate: number;
  result: DriveResult;
  steps?: StepBreakdown;
}

/** Where the daemon's wall time went during a run, from the scheduler's totals before and after it. */
interface StepBreakdown {
  steps: number;
  engineShare: number; // engine compute / wall
  handoverShare: number; // step awaited beyond its compute (thread hand-over, a busy event loop) / wall
  gapShare: number; // engine idle between back-to-back steps while the loop worked / wall
  idleShare: number; // the rest: no work (waiting for requests or adapter loads)
  sequencesPerStep: number;
  decodeTokensPerStep: number;
  prefillTokensPerStep: number;
  msPerStep: number; // engine compute
}

function stepBreakdown(a: SchedulerStats, b: SchedulerStats, wallS: number): StepBreakdown {
  const d = (k: keyof SchedulerStats["totals"]) => b.totals[k] - a.totals[k];
  const steps = b.steps - a.steps;
  const wallMs = wallS * 1000;
  const engine = d("engineMs") / wallMs;
  const handover = (d("waitMs") - d("engineMs")) / wallMs;
  const gap = d("gapMs") / wallMs;
  return {
    steps, engineShare: engine, handoverShare: handover, gapShare: gap, idleShare: Math.max(0, 1 - engine - handover - gap),
    sequencesPerStep: d("sequences") / steps, decodeTokensPerStep: d("decodeTokens") / steps, prefillTokensPerStep: d("prefillTokens") / steps,
    msPerStep: d("engineMs") / steps,
  };
}

async function main(): Promise<void> {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const modelPath = await benchModel(cache, opts.type, log);
  const files = await benchAdapters(cache, modelPath, ADAPTER_FILES, RANK, log);
  const several = opts.adapters.length * opts.alpha.length > 1;
  // Every (n, alpha) of the sweep is a sweep over the rates of its own, in a folder of its own.
  for (const n of opts.adapters) {
    for (const alpha of opts.alpha) {
      const outDir = join(packageRoot(), "bench-results", `workload-${stamp}`, ...(several ? [`n${n}-alpha${alpha}`] : []));
      mkdirSync(outDir, { recursive: true });
      if (several) log(`---- ${n} adapters, alpha ${alpha} ----`);
      await sweep(modelPath, files, n, alpha, outDir);
    }
  }
}

const say = (r: Run) => {
  const s = r.result.summary;
  log(`  ${LABEL[r.server]} @ ${r.rate} req/s: ${fmt(s.requestsPerS, 2)} req/s, SLO ${fmt(s.sloAttainment * 100, 0)}%, ` +
    `TTFT p50 ${fmt(s.ttftMs.p50 / 1000, 2)} s, ${fmt(s.cpuSPer1kTokens ?? undefined, 2)} CPU s/1k tok, ` +
    `answered ${fmt(s.keepUp.servedRps, 2)} of ${fmt(s.keepUp.offeredRps, 2)} req/s arriving in the second half: ${sustained(s) ? "sustained" : "not sustained"}`);
};

/** One server's runs: each of `rates`, then (--find-slo-rate) bisection towards its highest sustained rate. */
async function overRates(server: Server, rates: number[], runs: Run[], runOne: (rate: number) => Promise<Run>): Promise<void> {
  const mine: Run[] = [];
  const add = (r: Run) => {
    mine.push(r);
    runs.push(r);
    say(r);
  };
  for (const rate of rates) add(await runOne(rate));
  if (!opts.findSloRate) return;
  for (let step = 0; step < opts.bisectSteps; step++) {
    const results = mine.map((r) => ({ rate: r.rate, sustained: sustained(r.result.summary) }));
    const rate = nextRate(results, opts.bisectTolerance);
    if (rate === null || mine.some((r) => r.rate === rate)) break;
    const { lo, hi } = bracket(results);
    log(`${LABEL[server]}: sustained ${lo} req/s, not ${hi ?? "(none yet)"}: trying ${rate} req/s`);
    add(await runOne(rate));
  }
}

async function sweep(modelPath: string, files: string[], n: number, alpha: number, outDir: string): Promise<void> {
  const adapterDir = adapterFolder(join(outDir, "adapters"), files, n);
  const traceFor = (rate: number) =>
    generateTrace({ ...PAPER_TRACE, adapters: n, alpha, cv: opts.cv, tenants: opts.tenants, rate, durationS: opts.duration, seed: opts.seed });
  const runs: Run[] = [];

  if (opts.servers.includes("daemon")) {
    log(`daemon: ${opts.type} bench model, ${n} adapters (${opts.loraPool} pool, ${opts.loraSlots} slots), ${opts.threads} threads, max_sequences ${opts.maxSequences} ${opts.set.join(" ")}`);
    const daemon = await startDaemon(
      {
        modelPath, adapterDir, tenants: opts.tenants, threads: opts.threads, maxSequences: opts.maxSequences, loraSlots: opts.loraSlots,
        loraPoolType: opts.loraPool, extra: configOverrides(opts.set),
      },
      outDir, log,
    );
    try {
      await overRates("daemon", opts.rates, runs, async (rate) => {
        const trace = traceFor(rate);
        writeTrace(join(outDir, `rate-${rate}.trace.jsonl`), trace);
        const bar = progressBar(`daemon @ ${rate} req/s`);
        try {
          const before = await daemon.schedulerStats();
          const result = await driveMqtt(trace, mqttTarget(daemon.url, opts.tenants), { sloMs: opts.sloMs, drainS: opts.drain, serverPid: daemon.pid, onProgress: (p) => bar.update(p) });
          return { server: "daemon", rate, result, steps: stepBreakdown(before, await daemon.schedulerStats(), result.summary.wallS) };
        } finally {
          bar.stop();
        }
      });
    } finally {
      await daemon.stop();
    }
  }
  for (const mode of ["contexts", "switch"] as const) {
    if (!opts.servers.includes(mode)) continue;
    await overRates(mode, opts.llamaRates ?? opts.rates, runs, async (rate) => {
      log(`llama.cpp (${mode}) @ ${rate} req/s ...`);
      const result = await runLlama(
        traceFor(rate),
        { modelPath, adapterDir, mode, maxContexts: opts.maxContexts, lanes: opts.threads, threads: 1 },
        outDir, `llama-${mode}-rate-${rate}`, opts.sloMs, opts.drain,
      );
      return { server: mode, rate, result };
    });
  }

  // ---- the table, the targets and the figures ----
  const header = [
    "server", "offered req/s", "req/s", "tok/s", "generated tok/s", "TTFT p50 s", "TTFT p90 s", "TTFT p99 s", "SLO", "errors", "CPU s/1k tok", "peak RSS MiB",
    "2nd half answered/arrived req/s", "backlog", "sustained",
  ];
  const ordered = [...runs].sort((a, b) => SERVERS.indexOf(a.server) - SERVERS.indexOf(b.server) || a.rate - b.rate);
  const rows = ordered.map(({ server, rate, result: { summary: s } }) => [
    LABEL[server], fmt(rate, 2), fmt(s.requestsPerS, 2), fmt(s.tokensPerS, 0), fmt(s.generatedTokensPerS, 0), fmt(s.ttftMs.p50 / 1000, 2), fmt(s.ttftMs.p90 / 1000, 2),
    fmt(s.ttftMs.p99 / 1000, 2), fmt(s.sloAttainment * 100, 0, "%"), String(s.errors), fmt(s.cpuSPer1kTokens ?? undefined, 3), fmt(s.peakRssMiB ?? undefined, 0),
    `${fmt(s.keepUp.servedRps, 2)} / ${fmt(s.keepUp.offeredRps, 2)}`, `${s.keepUp.backlogStart} -> ${s.keepUp.backlogEnd}`, sustained(s) ? "yes" : "no",
  ]);
  process.stdout.write(`${renderTable(header, rows)}\n\n`);
  const daemonRuns = ordered.filter((r) => r.steps);
  if (daemonRuns.length) {
    const bHeader = ["daemon @ req/s", "steps", "engine", "hand-over", "gap", "idle", "seqs/step", "decode tok/step", "prefill tok/step", "engine ms/step"];
    const pct = (x: number) => fmt(x * 100, 0, "%");
    const bRows = daemonRuns.map(({ rate, steps: b }) => [
      fmt(rate, 2), String(b!.steps), pct(b!.engineShare), pct(b!.handoverShare), pct(b!.gapShare), pct(b!.idleShare),
      fmt(b!.sequencesPerStep, 1), fmt(b!.decodeTokensPerStep, 1), fmt(b!.prefillTokensPerStep, 1), fmt(b!.msPerStep, 1),
    ]);
    process.stdout.write(`where the daemon's wall time went (shares of the run's wall time):\n${renderTable(bHeader, bRows)}\n\n`);
  }

  const targets = SERVERS.filter((s) => runs.some((r) => r.server === s)).map((server) => {
    const mine = runs.filter((r) => r.server === server);
    const best = mine.reduce((a, b) => (b.result.summary.requestsPerS > a.result.summary.requestsPerS ? b : a));
    const results = mine.map((r) => ({ rate: r.rate, sustained: sustained(r.result.summary) }));
    const { lo, hi } = bracket(results);
    // CPU per token where every request was answered (unfinished requests' tokens are not counted), the busiest such run.
    const complete = mine.filter((r) => r.result.summary.errors === 0);
    const cpuRun = complete.length ? complete.reduce((a, b) => (b.rate > a.rate ? b : a)) : best;
    return {
      server,
      saturatedRps: best.result.summary.requestsPerS,
      atRate: best.rate,
      highestRateSlo95: lo, // the highest sustained rate
      lowestFailedAbove: hi,
      cpuSPer1kTokens: cpuRun.result.summary.cpuSPer1kTokens,
      cpuAtRate: cpuRun.rate,
    };
  });
  const llama = targets.filter((t) => t.server !== "daemon");
  const ours = targets.find((t) => t.server === "daemon");
  const bestLlama = (f: (t: (typeof targets)[number]) => number, low = false) =>
    llama.length ? llama.map(f).reduce((a, b) => (low ? Math.min(a, b) : Math.max(a, b))) : NaN;
  const tHeader = ["server", "saturated req/s (at rate)", "highest sustained rate (next failed)", "CPU s / 1k tokens (at rate)"];
  const tRows = targets.map((t) => [
    LABEL[t.server], `${fmt(t.saturatedRps, 2)} (${t.atRate})`, `${fmt(t.highestRateSlo95, 2)} (${t.lowestFailedAbove ?? "none"})`,
    `${fmt(t.cpuSPer1kTokens ?? NaN, 3)} (${t.cpuAtRate})`,
  ]);
  if (ours && llama.length) {
    tRows.push([
      "daemon / llama.cpp's best", ratio(ours.saturatedRps, bestLlama((t) => t.saturatedRps)),
      ratio(ours.highestRateSlo95, bestLlama((t) => t.highestRateSlo95)),
      ratio(ours.cpuSPer1kTokens ?? NaN, bestLlama((t) => t.cpuSPer1kTokens ?? Infinity, true)),
    ]);
  }
  process.stdout.write(`${renderTable(tHeader, tRows)}\n`);
  process.stdout.write(
    "(highest sustained rate: a rate run, kept up with (backlog over the second half of the arrivals grew by at most 10% of them) and with SLO >= 95%;\n" +
      " 0 when none was; next failed: the lowest rate above it that was not sustained. CPU: the highest rate where every request was answered, the busiest run if none)\n",
  );

  const everyone = [...new Set(runs.map((r) => r.server))];
  const common = [...new Set(runs.map((r) => r.rate))].filter((rate) => everyone.every((s) => runs.some((r) => r.server === s && r.rate === rate)));
  const cdfRate = opts.cdfRate ?? (common.length ? Math.max(...common) : runs[0]?.rate);
  const points = runs.map(({ server, rate, result }) => sweepPoint(server, rate, result.summary, result.records));
  const caption = `${opts.type}, ${n} adapters, alpha ${alpha}, cv ${opts.cv}`;
  const figures = runs.length ? await writeWorkloadFigures(points, outDir, cdfRate, caption) : [];
  for (const f of figures) log(`wrote ${f}`);
  const json = writeBenchResults("workload", {
    model: modelPath, options: { ...opts, adapters: n, alpha }, outDir, figures, targets,
    runs: runs.map((r) => ({ server: r.server, rate: r.rate, summary: r.result.summary, steps: r.steps, records: r.result.records })),
  });
  log(`wrote ${json}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-workload: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
