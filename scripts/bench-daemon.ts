// Daemon benchmark: 8 tenants, each with its own rank-8 adapter, against the demo model (or --model), through
// the embedded broker, as clients see it (publish to first streamed chunk, publish to final reply).
// Runs the same workload with batching on (max_sequences 8: mixed-adapter batches) and off
// (max_sequences 1: one request at a time), in one process, one after the other.
// Usage: npm run bench:daemon -- [--requests 6] [--max-tokens 32] [--threads 2] [--no-stream]
// Progress goes to stderr; the table to stdout; all figures to bench-results/daemon-<date>.json.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { Command, InvalidArgumentError } from "commander";
import { connectAsync, type MqttClient } from "mqtt";
import { pino } from "pino";
import { loadConfig, type Config } from "../src/config/index.js";
import { Controller } from "../src/daemon/controller.js";
import { ensureDemoAssets } from "../src/daemon/demo.js";
import { openNativeEngine } from "../src/daemon/serve-command.js";
import { writeSyntheticAdapter } from "../src/lora/synthetic.js";
import { hashPassword } from "../src/mqtt/password.js";
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";

const TENANTS = 8;
const PROMPTS = [
  "Once upon a time",
  "The little dog ran to the park",
  "She opened the box and found",
  "Tom wanted to play with his friends, but",
];

function positive(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

interface Options {
  requests: number;
  maxTokens: number;
  threads: number;
  stream: boolean;
  model?: string;
}

function parseOptions(): Options {
  return new Command()
    .name("bench-daemon")
    .description("requests/s, TTFT and latency of the daemon for 8 tenants x 8 adapters, batching on vs off")
    .option("--requests <n>", "requests per tenant (each tenant has one in flight at a time)", positive, 6)
    .option("--max-tokens <n>", "tokens generated per request", positive, 32)
    .option("--threads <n>", "engine threads", positive, 2)
    .option("--no-stream", "final replies only (TTFT is then the daemon's own timings.ttft_ms)")
    .option("--model <path>", "a GGUF model instead of the demo model (8 rank-8 adapters are written for it)")
    .parse()
    .opts<Options>();
}

// The worker thread (the clients) gets the options from the main thread.
const opts: Options = isMainThread ? parseOptions() : (workerData as { opts: Options }).opts;

const log = (s: string) => process.stderr.write(`${s}\n`);

interface Sample {
  ttftMs: number;
  latencyMs: number;
  completionTokens: number;
}

interface RunResult {
  mode: string;
  maxSequences: number;
  requests: number;
  wallS: number;
  requestsPerS: number;
  tokensPerS: number;
  ttftMs: { p50: number; p99: number };
  latencyMs: { p50: number; p99: number };
  steps: number;
  engineBusy: number; // share of the wall time spent in engine steps
  meanAdaptersPerStep: number;
  maxAdaptersPerStep: number;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function benchConfig(dataDir: string, adapters: Record<string, string>, maxSequences: number): Promise<Config> {
  const c = loadConfig({ env: {} });
  c.daemon.data_dir = dataDir;
  c.daemon.log_level = "warn";
  c.mqtt.port = 0;
  c.metrics.interval_s = 0;
  c.model.threads = opts.threads;
  c.model.lora_slots = TENANTS;
  c.scheduler.max_sequences = maxSequences;
  c.adapters.entries = adapters;
  c.tenants = {};
  const fast = { N: 1024, r: 8, p: 1 }; // the benchmark's own throwaway passwords
  for (let i = 0; i < TENANTS; i++) c.tenants[`b${i}`] = { password_hash: await hashPassword(`b${i}`, fast), adapters: [`bench-${i}`], default_adapter: `bench-${i}` };
  return c;
}

/** One request, timed from publish to the first streamed chunk and to the final reply. */
function timedRequest(client: MqttClient, tenant: string, id: string, prompt: string, o: Options): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = -1;
    const onMessage = (_topic: string, payload: Buffer) => {
      const m = JSON.parse(payload.toString()) as {
        transaction: string;
        type?: string;
        status?: string;
        error?: unknown;
        usage?: { completion_tokens: number };
        timings?: { ttft_ms: number };
      };
      if (m.transaction !== id) return;
      if (m.type === "chunk") {
        if (first < 0) first = performance.now();
        return;
      }
      client.off("message", onMessage);
      if (m.status !== "ok") return reject(new Error(`${tenant} ${id}: ${JSON.stringify(m.error)}`));
      const end = performance.now();
      const ttftMs = o.stream ? (first < 0 ? end : first) - t0 : (m.timings?.ttft_ms ?? NaN);
      resolve({ ttftMs, latencyMs: end - t0, completionTokens: m.usage?.completion_tokens ?? 0 });
    };
    client.on("message", onMessage);
    const body = { prompt, transaction: id, stream: o.stream, max_tokens: o.maxTokens, temperature: 0 };
    client.publishAsync(`edgelora/${tenant}/request`, JSON.stringify(body), { qos: 1 }).catch(reject);
  });
}

/** The client side, in a worker thread: the daemon's event loop carries only the daemon. */
async function clientLoad(url: string, tenants: string[], o: Options): Promise<{ samples: Sample[]; wallS: number }> {
  const clients = await Promise.all(tenants.map((t) => connectAsync(url, { username: t, password: t, reconnectPeriod: 0 })));
  try {
    await Promise.all(clients.map((c, i) => c.subscribeAsync(`edgelora/${tenants[i]}/response`, { qos: 1 })));
    // Warm-up: every adapter loaded into its slot before the clock starts.
    await Promise.all(clients.map((c, i) => timedRequest(c, tenants[i], "warmup", PROMPTS[0], o)));
    parentPort!.postMessage({ type: "start" });
    const samples: Sample[] = [];
    const start = performance.now();
    await Promise.all(
      clients.map(async (c, i) => {
        for (let r = 0; r < o.requests; r++) samples.push(await timedRequest(c, tenants[i], `r${r}`, PROMPTS[(i + r) % PROMPTS.length], o));
      }),
    );
    return { samples, wallS: (performance.now() - start) / 1000 };
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
  }
}

async function run(mode: string, config: Config, modelPath: string): Promise<RunResult> {
  const controller = new Controller({
    config,
    logger: pino({ level: "warn" }),
    modelPath,
    openEngine: (path) => openNativeEngine(path, config),
    env: {},
  });
  await controller.start();
  try {
    const steps: number[] = [];
    let stepMs = 0;
    let counting = false;
    const off = controller.context.scheduler!.onStep((e) => {
      if (!counting) return;
      steps.push(e.adapters.length);
      stepMs += e.ms;
    });
    const url = `mqtt://127.0.0.1:${controller.brokerPort}`;
    const worker = new Worker(new URL(import.meta.url), { workerData: { url, tenants: Object.keys(config.tenants), opts }, argv: [] });
    const { samples, wallS } = await new Promise<{ samples: Sample[]; wallS: number }>((resolve, reject) => {
      worker.on("message", (m: { type: string; samples: Sample[]; wallS: number }) => {
        if (m.type === "start") counting = true;
        else resolve(m);
      });
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`client worker exited with ${code}`)));
    });
    counting = false;
    off();
    const ttft = samples.map((s) => s.ttftMs);
    const latency = samples.map((s) => s.latencyMs);
    return {
      mode,
      maxSequences: config.scheduler.max_sequences,
      requests: samples.length,
      wallS,
      requestsPerS: samples.length / wallS,
      tokensPerS: samples.reduce((a, s) => a + s.completionTokens, 0) / wallS,
      ttftMs: { p50: percentile(ttft, 50), p99: percentile(ttft, 99) },
      latencyMs: { p50: percentile(latency, 50), p99: percentile(latency, 99) },
      steps: steps.length,
      engineBusy: stepMs / 1000 / wallS,
      meanAdaptersPerStep: steps.reduce((a, n) => a + n, 0) / steps.length,
      maxAdaptersPerStep: Math.max(...steps),
    };
  } finally {
    await controller.stop();
  }
}

async function main(): Promise<void> {
  const dataDir = join(tmpdir(), "edgelora-bench-daemon");
  const demo = await ensureDemoAssets(dataDir);
  const modelPath = opts.model ?? demo.modelPath;
  const adapterDir = opts.model ? mkdtempSync(join(dataDir, "bench-adapters-")) : join(demo.adapterDir, "..");
  const adapters: Record<string, string> = {};
  for (let i = 0; i < TENANTS; i++) {
    const out = join(adapterDir, `bench-${i}.gguf`);
    await writeSyntheticAdapter({ model: modelPath, out, format: "gguf", rank: 8, alpha: 16, seed: 500 + i, strength: 1 });
    adapters[`bench-${i}`] = out;
  }
  const results: RunResult[] = [];
  for (const [mode, maxSequences] of [["batching on", TENANTS], ["batching off", 1]] as const) {
    log(`${mode}: ${TENANTS} tenants x ${opts.requests} requests of ${opts.maxTokens} tokens, max_sequences ${maxSequences}`);
    results.push(await run(mode, await benchConfig(dataDir, adapters, maxSequences), modelPath));
  }

  const header = ["mode", "max_seq", "requests", "req/s", "tok/s", "TTFT p50 ms", "TTFT p99 ms", "latency p50 ms", "latency p99 ms", "steps", "engine busy", "adapters/step (mean, max)"];
  const rows = results.map((r) => [
    r.mode, String(r.maxSequences), String(r.requests), fmt(r.requestsPerS, 2), fmt(r.tokensPerS, 0),
    fmt(r.ttftMs.p50), fmt(r.ttftMs.p99), fmt(r.latencyMs.p50), fmt(r.latencyMs.p99),
    String(r.steps), fmt(r.engineBusy * 100, 0, "%"),
    `${fmt(r.meanAdaptersPerStep, 2)}, ${r.maxAdaptersPerStep}`,
  ]);
  const [on, off] = results;
  process.stdout.write(`${renderTable(header, rows)}\n\nbatching on / off: ${fmt(on.requestsPerS / off.requestsPerS, 2)}x requests/s\n`);

  log(`wrote ${writeBenchResults("daemon", { model: modelPath, options: opts, results })}`);
}

if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench-daemon: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
} else {
  const { url, tenants } = workerData as { url: string; tenants: string[] };
  clientLoad(url, tenants, opts).then((r) => parentPort!.postMessage({ type: "done", ...r }));
}
