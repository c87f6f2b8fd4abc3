// The power-law trace served by the daemon (Controller: scheduler + adapter store + engine; requests
// submitted to its scheduler in open loop, no MQTT) with 1,000 registered adapters, to compare
// throughput and TTFT with the warm tier on and off. Two daemons live side by side, one per setting;
// both first see the trace's first part through their stores (its adapters acquired and released in
// order: the loads and tier moves without generating), then measured segments of the trace alternate
// between them, so the machine's slower phases fall on both.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { localConfig } from "../../test/helpers/local-config.js";
import { Controller } from "../../src/daemon/controller.js";
import { openNativeEngine } from "../../src/daemon/serve-command.js";
import type { LoraPoolType } from "../../src/engine/types.js";
import type { JobResult } from "../../src/scheduler/types.js";
import { Prng } from "../../src/gguf/prng.js";
import type { TraceRequest } from "./power-law-trace.js";

export interface TraceDaemonOptions {
  model: string;
  files: string[]; // distinct adapter files; the names link to them in turn
  adapters: number;
  pool: LoraPoolType;
  warmMb: number; // 0 = warm tier off
  slots: number;
  threads: number;
}

export interface Segment {
  results: JobResult[];
  errors: number;
  seconds: number;
  hits: { hot: number; warm: number; cold: number };
}

export interface TraceRunResult {
  warmMb: number;
  requests: number;
  errors: number;
  seconds: number;
  requestsPerS: number;
  tokensPerS: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  hitHot: number;
  hitWarm: number;
  hitCold: number;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

export class TraceDaemon {
  private readonly rng = new Prng(99);

  private constructor(
    readonly options: TraceDaemonOptions,
    private readonly ctl: Controller,
    private readonly dir: string,
  ) {}

  static async start(o: TraceDaemonOptions): Promise<TraceDaemon> {
    const dir = mkdtempSync(join(tmpdir(), "edgelora-bench-trace-"));
    mkdirSync(join(dir, "a"));
    for (let i = 0; i < o.adapters; i++) symlinkSync(o.files[i % o.files.length], join(dir, "a", `t${i}.gguf`));
    const c = localConfig({ model: o.model, dataDir: join(dir, "data"), threads: o.threads, nCtx: 512, loraSlots: o.slots, loraMaxRank: 16 });
    c.model.lora_pool_type = o.pool;
    c.scheduler.max_sequences = 8;
    c.scheduler.max_queue = 10_000;
    c.scheduler.per_tenant_queue = 10_000;
    c.scheduler.per_tenant_in_flight = 8;
    c.scheduler.max_tokens_limit = 512;
    c.scheduler.request_timeout_ms = 600_000;
    c.adapters.directory = join(dir, "a");
    c.adapters.warm.backend = o.warmMb > 0 ? "memory" : "off";
    c.adapters.warm.budget_mb = o.warmMb;
    c.adapters.prewarm = false; // the comparison is of the tiers themselves
    const ctl = new Controller({ config: c, logger: pino({ level: "silent" }), modelPath: o.model, env: {}, openEngine: (p) => openNativeEngine(p, c) });
    await ctl.start();
    return new TraceDaemon(o, ctl, dir);
  }

  /** The requests' adapters through the store, in order, without generating. */
  async warmUp(part: TraceRequest[], log: (s: string) => void): Promise<void> {
    const store = this.ctl.context.slots!;
    for (const [i, r] of part.entries()) {
      const name = `t${r.adapter}`;
      if (await store.acquire(name)) store.release(name);
      if ((i + 1) % 100 === 0) log(`  warm ${this.options.warmMb} MB: warm-up ${i + 1}/${part.length}`);
    }
  }

  /** Sends the requests at their trace times (from the first one's) and waits for every answer. */
  async serve(part: TraceRequest[], label: string): Promise<Segment> {
    const { scheduler, slots, engine } = this.ctl.context;
    const vocab = engine!.info.nVocab;
    const bos = engine!.info.bos;
    const h0 = slots!.stats().hits;
    const results: JobResult[] = [];
    let errors = 0;
    const t0 = performance.now();
    const base = part[0].at;
    await Promise.all(
      part.map(
        (r, i) =>
          new Promise<void>((resolve) => {
            setTimeout(() => {
              const prompt = [bos, ...Array.from({ length: r.inputTokens - 1 }, () => 3 + Math.floor(this.rng.uniform() * (vocab - 3)))];
              scheduler!.submit(
                {
                  id: `${label}/${i}`, tenant: `t${i % 8}`, promptTokens: prompt, adapter: `t${r.adapter}`, maxTokens: r.outputTokens,
                  sampling: { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, seed: i }, stop: [], timeoutMs: 600_000,
                },
                {
                  onDone: (res) => {
                    results.push(res);
                    resolve();
                  },
                  onError: () => {
                    errors++;
                    resolve();
                  },
                },
              );
            }, (r.at - base) * 1000);
          }),
      ),
    );
    const h1 = slots!.stats().hits;
    return { results, errors, seconds: (performance.now() - t0) / 1000, hits: { hot: h1.hot - h0.hot, warm: h1.warm - h0.warm, cold: h1.cold - h0.cold } };
  }

  async stop(): Promise<void> {
    await this.ctl.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Sums segments of one setting. */
export function summarize(warmMb: number, segments: Segment[]): TraceRunResult {
  const results = segments.flatMap((s) => s.results);
  const errors = segments.reduce((a, s) => a + s.errors, 0);
  const seconds = segments.reduce((a, s) => a + s.seconds, 0);
  const n = results.length + errors;
  const hit = (k: "hot" | "warm" | "cold") => segments.reduce((a, s) => a + s.hits[k], 0) / n;
  const ttft = results.map((r) => r.timings.ttft_ms);
  return {
    warmMb, requests: results.length, errors, seconds, requestsPerS: results.length / seconds,
    tokensPerS: results.reduce((a, r) => a + r.completionTokens, 0) / seconds,
    ttftP50Ms: quantile(ttft, 0.5), ttftP99Ms: quantile(ttft, 0.99), hitHot: hit("hot"), hitWarm: hit("warm"), hitCold: hit("cold"),
  };
}
