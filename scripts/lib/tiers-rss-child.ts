// A child process of bench:tiers, so each memory figure starts from a fresh process:
//   daemon: the daemon (Controller, embedded broker) with `count` registered adapters (symbolic
//           links to a few rank-16 files, each link its own adapter to the registry and the tiers):
//           start-up time with no index and again with the index written, RSS after start and after
//           requests for 16 of them (slots and warm filled);
//   llama:  node-llama-cpp with the model and `count` of the adapters loaded (it keeps every
//           loaded adapter resident), RSS before and after.
// Prints one JSON line on stdout.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { pino } from "pino";
import { localConfig } from "../../test/helpers/local-config.js";
import { LLAMA_OPTIONS, loraContextOptions } from "../../src/bench/llama-options.js";
import { Controller } from "../../src/daemon/controller.js";
import { openNativeEngine } from "../../src/daemon/serve-command.js";
import type { NativeEngine } from "../../src/engine/engine.js";

export interface RssJob {
  mode: "daemon" | "llama";
  model: string;
  files: string[]; // distinct adapter files; names link to them in turn
  count: number;
  warmMb: number;
  llamaEntry?: string; // node-llama-cpp's dist/index.js
}

const rss = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss;
};

function linkDir(files: string[], count: number): string {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-bench-links-"));
  mkdirSync(join(dir, "a"));
  for (let i = 0; i < count; i++) symlinkSync(files[i % files.length], join(dir, "a", `r${i}.gguf`));
  return dir;
}

async function daemon(job: RssJob): Promise<Record<string, number>> {
  const dir = linkDir(job.files, job.count);
  const c = localConfig({ model: job.model, dataDir: join(dir, "data"), threads: 2, nCtx: 256, loraSlots: 8, loraMaxRank: 16 });
  c.adapters.directory = join(dir, "a");
  c.adapters.warm.budget_mb = job.warmMb;
  c.adapters.prewarm = false;
  const logger = pino({ level: "silent" });
  let engine: NativeEngine | null = null;
  const make = () =>
    new Controller({ config: c, logger, modelPath: job.model, env: {}, openEngine: async (p) => (engine = await openNativeEngine(p, c)) });
  try {
    const before = rss();
    let t0 = performance.now();
    let ctl = make();
    await ctl.start();
    const startFreshMs = performance.now() - t0;
    await ctl.stop(); // writes the index
    t0 = performance.now();
    ctl = make();
    await ctl.start();
    const startIndexedMs = performance.now() - t0;
    const afterStart = rss();
    const ctx = ctl.context;
    for (let i = 0; i < 16; i++) {
      await new Promise<void>((resolve, reject) =>
        ctx.scheduler!.submit(
          {
            id: `b/${i}`, tenant: "b", promptTokens: [1, 2, 3, 4], adapter: `r${i * 37 % job.count}`, maxTokens: 2,
            sampling: { temperature: 0, topK: 0, topP: 1, minP: 0, seed: 1 }, stop: [], timeoutMs: 60_000,
          },
          { onDone: () => resolve(), onError: (code, m) => reject(new Error(`${code}: ${m}`)) },
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 200)); // warm writes land
    const afterRequests = rss();
    const tiers = ctx.slots!.stats();
    const kv = (engine as NativeEngine | null)?.context.stats().kvBytes ?? 0;
    const weights = ctx.engine!.info.weightBytes;
    await ctl.stop();
    return {
      count: job.count, registered: ctx.registry.size, startFreshMs, startIndexedMs, rssBeforeModel: before, rssAfterStart: afterStart,
      rssAfterRequests: afterRequests, warmUsedBytes: tiers.warm?.usedBytes ?? 0, hotUsedBytes: tiers.hot.used_bytes, kvBytes: kv, weightBytes: weights,
      heapUsed: process.memoryUsage().heapUsed,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function llama(job: RssJob): Promise<Record<string, number>> {
  const dir = linkDir(job.files, job.count);
  try {
    const { getLlama } = (await import(pathToFileURL(job.llamaEntry!).href)) as typeof import("node-llama-cpp");
    const l = await getLlama(LLAMA_OPTIONS);
    const model = await l.loadModel({ modelPath: job.model });
    const afterModel = rss();
    const t0 = performance.now();
    for (let i = 0; i < job.count; i++) {
      // node-llama-cpp keeps an adapter loaded in the model once a context used it.
      const ctx = await model.createContext(loraContextOptions({ filePath: join(dir, "a", `r${i}.gguf`), contextSize: 64 }));
      await ctx.dispose();
    }
    const loadMs = performance.now() - t0;
    const afterAdapters = rss();
    await model.dispose();
    return { count: job.count, rssAfterModel: afterModel, rssAfterAdapters: afterAdapters, loadMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const job = JSON.parse(process.argv[2]) as RssJob;
  (job.mode === "daemon" ? daemon(job) : llama(job)).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
