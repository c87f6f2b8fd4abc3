// Adapter tiers benchmark (npm run bench:tiers): on the bench model (Q4_0, n_embd 896, 24 layers)
// with rank-16 adapters on every module:
//   1. promotion into a slot from each tier, per pool type (cold with the file out of the page cache,
//      cold from the page cache, warm from memory, warm from a zram directory), and the compression
//      each warm form gets; what an SD card's 40-90 MB/s would make of a cold load;
//   2. the daemon with 100 / 1,000 / 10,000 registered adapters (symbolic links to 16 files: each
//      name is its own adapter to the registry and the tiers, while the disk holds 16 files):
//      start-up time, RSS, per registered adapter bytes; llama.cpp's RSS with adapters resident;
//   3. hit ratios on the paper's power-law trace (1,000 adapters, 8 slots, warm budgets of 5, 10
//      and 25% of all adapters' bytes), LRU against LFU, against an ideal static cache and an online
//      LFU with exact counts;
//   4. the trace served by the daemon with 1,000 adapters (outputs shortened to 8-32 tokens, so the
//      adapter loads are what differs): throughput and TTFT, warm tier on and off, alternating.
// Prints tables, writes bench-results/tiers-<date>.json. Tests never assert on these figures.
import { spawnSync } from "node:child_process";
import { existsSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { packageRoot } from "../src/engine/native.js";
import { LORA_POOL_TYPES, type LoraPoolType } from "../src/engine/types.js";
import { writeSyntheticAdapter } from "../src/lora/synthetic.js";
import { BENCH_SHAPE, benchModel } from "./lib/bench-model.js";
import { powerLawTrace } from "./lib/power-law-trace.js";
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";
import { measurePromotions } from "./lib/tiers-promotion.js";
import type { RssJob } from "./lib/tiers-rss-child.js";
import { idealStaticHit, onlineLfuHit, simulate } from "./lib/tiers-sim.js";
import { summarize, TraceDaemon, type Segment } from "./lib/tiers-trace-run.js";

const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
const opts = new Command()
  .name("bench-tiers")
  .option("--quick", "fewer runs, smaller counts, a short trace")
  .option("--pools <list>", "pool types", (s) => list(s) as LoraPoolType[], [...LORA_POOL_TYPES])
  .option("--counts <list>", "registered adapter counts", (s) => list(s).map(Number), [100, 1000, 10000])
  .option("--llama <list>", "adapters llama.cpp loads (RSS)", (s) => list(s).map(Number), [8, 32])
  .option("--parts <list>", "which parts to run: 1 promotions, 2 scale and RSS, 3 hit ratios, 4 served trace", (s) => list(s).map(Number), [1, 2, 3, 4])
  .option("--alpha <n>", "power-law popularity exponent of the trace", Number, 0.5)
  .option("--rate <n>", "trace requests per second (part 4)", Number, 1)
  .option("--trace-pool <type>", "pool type for the served trace", "q4")
  .option("--threads <n>", "engine threads", Number, 2)
  .parse()
  .opts<{ quick?: boolean; pools: LoraPoolType[]; counts: number[]; llama: number[]; parts: number[]; alpha: number; rate: number; tracePool: LoraPoolType; threads: number }>();

const log = (s: string) => process.stderr.write(`${s}\n`);
const root = packageRoot();
const cache = join(root, ".tmp", "bench-models");
const RANK = 16;
const DISTINCT = 16;
const MB = 1e6;

async function adapterFiles(model: string): Promise<string[]> {
  const s = BENCH_SHAPE;
  const paths: string[] = [];
  for (let i = 0; i < DISTINCT; i++) {
    const path = join(cache, `lora-${s.arch}-${s.nEmbd}x${s.nLayer}-ff${s.nFf}-r${RANK}-seed${i + 1}.gguf`);
    if (!existsSync(path)) {
      log(`writing ${path} (once)`);
      const tmp = `${path}.${process.pid}.tmp`;
      await writeSyntheticAdapter({ model, out: tmp, format: "gguf", rank: RANK, seed: i + 1, dtype: "f16" });
      renameSync(tmp, path);
    }
    paths.push(path);
  }
  return paths;
}

function child(job: RssJob): Record<string, number> {
  const script = fileURLToPath(new URL("./lib/tiers-rss-child.js", import.meta.url));
  const r = spawnSync(process.execPath, ["--expose-gc", script, JSON.stringify(job)], { encoding: "utf8", maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${job.mode} child (${job.count}) failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, number>;
}

async function main(): Promise<void> {
  const model = await benchModel(cache, "q4_0", log);
  const files = await adapterFiles(model);
  const runs = opts.quick ? 3 : 7;
  const out: Record<string, unknown> = { model, rank: RANK, distinctFiles: DISTINCT };

  // 1. promotions
  const prom = opts.parts.includes(1) ? await measurePromotions(model, files[0], opts.pools, runs, log) : { rows: [], zram: [], zramSkipped: "part 1 not run" };
  out.promotions = prom;
  if (prom.rows.length > 0) console.log(`\n## Promotion into a slot (rank ${RANK}, all modules; median of ${runs})\n`);
  if (prom.rows.length > 0) console.log(renderTable(
    ["pool", "from", "stored MB", "slot MB", "ms", "MB/s of slot bytes"],
    prom.rows.map((r) => [r.pool, r.source, fmt(r.storedBytes / MB, 2), fmt(r.slotBytes / MB, 2), fmt(r.ms, 2), fmt(r.mbPerS, 0)]),
  ));
  if (prom.zramSkipped && prom.rows.length > 0) console.log(`\n(zram rows skipped: ${prom.zramSkipped})`);
  const fileBytes = statSync(files[0]).size;
  if (prom.rows.length > 0) console.log(`\n## A cold load from an SD card (the file's ${fmt(fileBytes / MB, 1)} MB read at the card's rate, then the conversion as from the page cache)\n`);
  const sd = (prom.rows.length > 0 ? opts.pools : []).map((pool) => {
    const cached = prom.rows.find((r) => r.pool === pool && r.source === "cold: file in page cache")!;
    const warm = prom.rows.find((r) => r.pool === pool && r.source === "warm: memory, image as is")!;
    const at = (rate: number) => cached.ms + (fileBytes / (rate * MB)) * 1000;
    return { pool, ms40: at(40), ms90: at(90), warmMs: warm.ms };
  });
  out.sdCard = sd;
  if (sd.length > 0) console.log(renderTable(["pool", "cold at 40 MB/s, ms", "cold at 90 MB/s, ms", "warm (memory), ms", "warm speed-up at 90 MB/s"],
    sd.map((r) => [r.pool, fmt(r.ms40, 0), fmt(r.ms90, 0), fmt(r.warmMs, 2), fmt(r.ms90 / r.warmMs, 0, "x")])));
  if (prom.zram.length > 0) {
    console.log("\n## Compression of slot images\n");
    console.log(renderTable(["pool", "image MB", "shuffle+deflate ratio", `zram (${prom.zram[0].algorithm}) ratio`],
      opts.pools.map((pool) => {
        const img = prom.rows.find((r) => r.pool === pool && r.source === "warm: memory, image as is")!;
        const def = prom.rows.find((r) => r.pool === pool && r.source === "warm: memory, shuffle + deflate")!;
        const z = prom.zram.find((x) => x.pool === pool);
        return [pool, fmt(img.storedBytes / MB, 2), fmt(img.storedBytes / def.storedBytes, 3, "x"), z ? fmt(z.origBytes / Math.max(1, z.comprBytes), 3, "x") : "n/a"];
      })));
  }

  // 2. scale: daemon RSS by registered count, llama.cpp RSS with adapters resident
  const counts = !opts.parts.includes(2) ? [] : opts.quick ? opts.counts.filter((n) => n <= 1000) : opts.counts;
  const scale = counts.map((count) => {
    log(`daemon with ${count} registered adapters`);
    return child({ mode: "daemon", model, files, count, warmMb: 256 });
  });
  out.scale = scale;
  const base = scale[0];
  if (base) console.log("\n## The daemon by registered adapters (8 f16 slots, warm budget 256 MB, 16 requests served)\n");
  if (base) console.log(renderTable(
    ["registered", "start (no index), ms", "start (index), ms", "RSS after start, MB", "RSS after requests, MB", "warm used, MiB", "bytes per registered adapter"],
    scale.map((s) => [String(s.registered), fmt(s.startFreshMs, 0), fmt(s.startIndexedMs, 0), fmt(s.rssAfterStart / MB, 0), fmt(s.rssAfterRequests / MB, 0),
      fmt(s.warmUsedBytes / 1048576, 0), s === base ? "n/a" : fmt((s.rssAfterStart - base.rssAfterStart) / (s.count - base.count), 0)]),
  ));
  if (base) console.log(`\n(model weights ${fmt(base.weightBytes / MB, 0)} MB, KV cache ${fmt(base.kvBytes / MB, 0)} MB)`);
  const llamaCounts = !opts.parts.includes(2) ? [] : opts.quick ? opts.llama.slice(0, 1) : opts.llama;
  const llama = llamaCounts.map((count) => {
    log(`llama.cpp with ${count} adapters loaded`);
    return child({ mode: "llama", model, files, count, warmMb: 0, llamaEntry: join(root, "node_modules", "node-llama-cpp", "dist", "index.js") });
  });
  out.llama = llama;
  if (llama.length > 0) {
    const per = (l: Record<string, number>) => (l.rssAfterAdapters - l.rssAfterModel) / l.count;
    const perMax = per(llama[llama.length - 1]);
    console.log("\n## llama.cpp (node-llama-cpp) keeps every loaded adapter resident\n");
    console.log(renderTable(["adapters loaded", "RSS with model, MB", "RSS with adapters, MB", "MB per adapter", "load s"],
      llama.map((l) => [String(l.count), fmt(l.rssAfterModel / MB, 0), fmt(l.rssAfterAdapters / MB, 0), fmt(per(l) / MB, 1), fmt(l.loadMs / 1000, 1)])));
    console.log(`\nAt ${fmt(perMax / MB, 1)} MB per adapter: 100 adapters ${fmt((100 * perMax) / 1e9, 1)} GB, 1,000 ${fmt((1000 * perMax) / 1e9, 1)} GB, 10,000 ${fmt((10000 * perMax) / 1e9, 0)} GB on top of the model.`);
  }

  // 3. hit ratios against an ideal static cache
  const sims: Record<string, unknown>[] = [];
  for (const n of !opts.parts.includes(3) ? [] : opts.quick ? [20_000] : [20_000, 100_000]) {
    const reqs = powerLawTrace({ adapters: 1000, alpha: opts.alpha, rate: 1, cv: 1.5, requests: n, seed: 1 }).map((r) => r.adapter);
    for (const f of [0.05, 0.1, 0.25]) {
      const lru = await simulate(reqs, 1000, 8, f, "lru");
      const lfu = await simulate(reqs, 1000, 8, f, "lfu");
      const idealWarm = idealStaticHit(reqs, Math.floor(1000 * f));
      const onlineLfu = onlineLfuHit(reqs, 8 + Math.floor(1000 * f));
      sims.push({ requests: n, budget: f, lru: lru.hotWarmHit, lfu: lfu.hotWarmHit, lfuHot: lfu.hotHit, idealWarmBytes: idealWarm, idealSlotsAndWarm: lfu.idealHit, onlineLfu });
    }
  }
  out.hitRatios = { alpha: opts.alpha, adapters: 1000, slots: 8, rows: sims };
  if (sims.length > 0) console.log(`\n## Hot+warm hit ratio on the power-law trace (alpha ${opts.alpha}, 1,000 adapters, 8 slots)\n`);
  if (sims.length > 0) console.log(renderTable(["requests", "warm budget", "LRU", "LFU (of it hot)", "ideal static (slots + warm)", "LRU / ideal", "LFU / ideal", "online LFU, exact counts / ideal"],
    sims.map((s) => {
      const r = s as { requests: number; budget: number; lru: number; lfu: number; lfuHot: number; idealSlotsAndWarm: number; onlineLfu: number };
      return [String(r.requests), fmt(r.budget * 100, 0, "%"), fmt(r.lru, 3), `${fmt(r.lfu, 3)} (${fmt(r.lfuHot, 3)})`, fmt(r.idealSlotsAndWarm, 3),
        fmt(r.lru / r.idealSlotsAndWarm, 3), fmt(r.lfu / r.idealSlotsAndWarm, 3), fmt(r.onlineLfu / r.idealSlotsAndWarm, 3)];
    })));

  // 4. the served trace, warm on vs off: two daemons, measured segments alternating between them
  if (opts.parts.includes(4)) {
    const warmup = opts.quick ? 100 : 300;
    const segments = opts.quick ? 2 : 4;
    const perSegment = opts.quick ? 10 : 20;
    const trace = powerLawTrace({
      adapters: 1000, alpha: opts.alpha, rate: opts.rate, cv: 1.5, requests: warmup + segments * perSegment, seed: 7, outputTokens: [8, 32],
    });
    // The pool's image size, from part 1 when it ran (q4: 5.25 MB, q8: 9.65, f16: 17.6 on this model).
    const image = prom.rows.find((r) => r.pool === opts.tracePool && r.source === "warm: memory, image as is")?.storedBytes;
    const imageMb = (image ?? { f16: 17.6e6, q8: 9.65e6, q4: 5.25e6 }[opts.tracePool]) / MB;
    const warmMb = Math.round(imageMb * 1000 * 0.1);
    const daemons = [];
    for (const w of [warmMb, 0]) daemons.push(await TraceDaemon.start({ model, files, adapters: 1000, pool: opts.tracePool, warmMb: w, slots: 8, threads: opts.threads }));
    try {
      for (const d of daemons) await d.warmUp(trace.slice(0, warmup), log);
      const segs: Segment[][] = daemons.map(() => []);
      for (let k = 0; k < segments; k++) {
        const part = trace.slice(warmup + k * perSegment, warmup + (k + 1) * perSegment);
        for (const [i, d] of daemons.entries()) {
          log(`trace segment ${k + 1}/${segments}, warm ${d.options.warmMb} MB`);
          segs[i].push(await d.serve(part, `s${k}`));
        }
      }
      const served = daemons.map((d, i) => summarize(d.options.warmMb, segs[i]));
      out.trace = { alpha: opts.alpha, rate: opts.rate, cv: 1.5, outputTokens: [8, 32], pool: opts.tracePool, warmup, segments, perSegment, results: served };
      console.log(`\n## The trace served, 1,000 adapters (${opts.tracePool} pool, 8 slots, rate ${opts.rate}/s, alpha ${opts.alpha}, outputs 8-32 tokens; ${segments} x ${perSegment} requests per setting, alternating, after ${warmup} whose adapters went through each store first)\n`);
      console.log(renderTable(["warm budget", "req/s", "tokens/s", "TTFT p50 ms", "TTFT p99 ms", "hot hits", "warm hits", "cold loads", "errors"],
        served.map((r) => [r.warmMb > 0 ? `${r.warmMb} MB (10%)` : "off", fmt(r.requestsPerS, 2), fmt(r.tokensPerS, 0), fmt(r.ttftP50Ms, 0), fmt(r.ttftP99Ms, 0),
          fmt(r.hitHot, 2), fmt(r.hitWarm, 2), fmt(r.hitCold, 2), String(r.errors)])));
    } finally {
      for (const d of daemons) await d.stop();
    }
  }

  const path = writeBenchResults("tiers", out);
  log(`\nwrote ${path}`);
}

main().catch((err: unknown) => {
  log(`bench-tiers failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
