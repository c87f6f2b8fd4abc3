// The power-law trace served by the daemon (Controller: scheduler + adapter store + engine; requests
// submitted to its scheduler in open loop, no MQTT) with 1,000 registered adapters: throughput and
// TTFT with the warm tier on and off. The first part of the trace warms the store up and is not
// measured: its requests are sent at once and answered with one token each, so the store sees the
// trace's popularity before the measured part is sent at the trace's own times.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { loadConfig } from "../../src/config/index.js";
import { Controller } from "../../src/daemon/controller.js";
import { openNativeEngine } from "../../src/daemon/serve-command.js";
import type { LoraPoolType } from "../../src/engine/types.js";
import type { JobResult } from "../../src/scheduler/types.js";
import { Prng } from "../../src/gguf/prng.js";
import type { TraceRequest } from "./power-law-trace.js";

export interface TraceRunOptions {
  model: string;
  files: string[]; // distinct adapter files; the 1,000 names link to them in turn
  adapters: number;
  trace: TraceRequest[];
  warmupRequests: number;
  pool: LoraPoolType;
  warmMb: number; // 0 = warm tier off
  slots: number;
  threads: number;
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

export async function runTrace(o: TraceRunOptions, log: (s: string) => void): Promise<TraceRunResult> {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-bench-trace-"));
  mkdirSync(join(dir, "a"));
  for (let i = 0; i < o.adapters; i++) symlinkSync(o.files[i % o.files.length], join(dir, "a", `t${i}.gguf`));
  const c = loadConfig({ env: {} });
  c.daemon.data_dir = join(dir, "data");
  c.daemon.log_level = "silent";
  c.mqtt.port = 0;
  c.metrics.interval_s = 0;
  c.model.path = o.model;
  c.model.threads = o.threads;
  c.model.n_ctx = 512;
  c.model.lora_slots = o.slots;
  c.model.lora_max_rank = 16;
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
  c.adapters.prewarm = false; // the trace never idles long; keep the comparison to the tiers themselves
  const ctl = new Controller({ config: c, logger: pino({ level: "silent" }), modelPath: o.model, env: {}, openEngine: (p) => openNativeEngine(p, c) });
  await ctl.start();
  try {
    const scheduler = ctl.context.scheduler!;
    const store = ctl.context.slots!;
    const vocab = ctl.context.engine!.info.nVocab;
    const bos = ctl.context.engine!.info.bos;
    const rng = new Prng(99);
    // burst: all at once with one output token each (warming the store up, not measured).
    const run = async (part: TraceRequest[], label: string, burst = false) => {
      const results: JobResult[] = [];
      let errors = 0;
      const t0 = performance.now();
      const base = part[0].at;
      let done = 0;
      await Promise.all(
        part.map(
          (r, i) =>
            new Promise<void>((resolve) => {
              setTimeout(() => {
                const prompt = [bos, ...Array.from({ length: r.inputTokens - 1 }, () => 3 + Math.floor(rng.uniform() * (vocab - 3)))];
                scheduler.submit(
                  {
                    id: `${label}/${i}`, tenant: `t${i % 8}`, promptTokens: prompt, adapter: `t${r.adapter}`, maxTokens: burst ? 1 : r.outputTokens,
                    sampling: { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, seed: i }, stop: [], timeoutMs: 600_000,
                  },
                  {
                    onDone: (res) => {
                      results.push(res);
                      if (++done % 20 === 0) log(`  ${label}: ${done}/${part.length}`);
                      resolve();
                    },
                    onError: () => {
                      errors++;
                      resolve();
                    },
                  },
                );
              }, burst ? 0 : (r.at - base) * 1000);
            }),
        ),
      );
      return { results, errors, seconds: (performance.now() - t0) / 1000 };
    };
    log(`trace, warm ${o.warmMb} MB: warm-up (${o.warmupRequests} requests, one token each)`);
    await run(o.trace.slice(0, o.warmupRequests), "warmup", true);
    const h0 = store.stats().hits;
    log(`trace, warm ${o.warmMb} MB: measured (${o.trace.length - o.warmupRequests} requests)`);
    const m = await run(o.trace.slice(o.warmupRequests), "measured");
    const h1 = store.stats().hits;
    const n = m.results.length + m.errors;
    const ttft = m.results.map((r) => r.timings.ttft_ms);
    const tokens = m.results.reduce((s, r) => s + r.completionTokens, 0);
    return {
      warmMb: o.warmMb, requests: m.results.length, errors: m.errors, seconds: m.seconds,
      requestsPerS: m.results.length / m.seconds, tokensPerS: tokens / m.seconds,
      ttftP50Ms: quantile(ttft, 0.5), ttftP99Ms: quantile(ttft, 0.99),
      hitHot: (h1.hot - h0.hot) / n, hitWarm: (h1.warm - h0.warm) / n, hitCold: (h1.cold - h0.cold) / n,
    };
  } finally {
    await ctl.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
