// What the daemon's JavaScript side costs per generated token, apart from the engine: the whole daemon (Controller,
// embedded broker, scheduler, request handler) over an engine that computes nothing (the tests' FakeEngine, never
// ending a text early), driven by the workload driver from a worker thread. The CPU time of the main thread (the
// daemon's JavaScript, the broker and the fake engine) per 1,000 tokens, for streamed replies sent one chunk per
// token at QoS 1 (as before coalescing), coalesced (mqtt.stream_chunk_* defaults) and not streamed; modes
// alternate within each round so the machine's load drifts hit all alike.
// Usage: npm run bench:stream-overhead -- [--rounds 3] [--requests 64]
// Prints a table; writes bench-results/stream-overhead-<date>.json.
import { readFileSync } from "node:fs";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { Command } from "commander";
import { pino } from "pino";
import { driveMqtt, type DriveResult, type MqttTarget } from "../src/bench/mqtt-driver.js";
import { generateTrace, PAPER_TRACE, type Trace } from "../src/bench/trace.js";
import { loadConfig, type Config } from "../src/config/index.js";
import { Controller } from "../src/daemon/controller.js";
import { hashPassword } from "../src/mqtt/password.js";
import { FakeEngine } from "../test/helpers/fake-engine.js";
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";

const TENANTS = 8;
const MODES = {
  "chunk per token, QoS 1": { stream: true, mqtt: { stream_chunk_ms: 0, stream_chunk_qos: 1 } },
  "coalesced chunks, QoS 0": { stream: true, mqtt: {} },
  "not streamed": { stream: false, mqtt: {} },
} as const;
type Mode = keyof typeof MODES;

interface WorkerJob {
  trace: Trace;
  target: Omit<MqttTarget, "adapterName">;
}

/** CPU seconds of this process's main thread (its task id is the process id). */
function mainThreadCpuS(): number {
  const s = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // clock ticks; 100 per second on Linux
}

async function daemonConfig(mode: Mode): Promise<Config> {
  const c = loadConfig({ env: {} });
  c.daemon.log_level = "silent";
  c.mqtt.port = 0;
  Object.assign(c.mqtt, MODES[mode].mqtt);
  c.metrics.interval_s = 0;
  c.systemd.notify = false;
  c.scheduler.max_sequences = 16;
  c.scheduler.per_tenant_in_flight = 16;
  c.scheduler.per_tenant_queue = 256;
  c.scheduler.max_queue = 1024;
  c.scheduler.max_tokens_limit = 512;
  c.tenants = {};
  const fast = { N: 1024, r: 8, p: 1 };
  for (let i = 0; i < TENANTS; i++) c.tenants[`w${i}`] = { password_hash: await hashPassword(`w${i}`, fast), adapters: [], default_adapter: null };
  return c;
}

async function once(mode: Mode, trace: Trace): Promise<{ cpuMsPer1kTokens: number; tokensPerS: number }> {
  const engine = new FakeEngine({ nCtx: 512, nBatchMax: 4096 });
  engine.model = () => 3; // the letter "a", never EOS
  const config = await daemonConfig(mode);
  const controller = new Controller({ config, logger: pino({ level: "silent" }), modelPath: "fake.gguf", openEngine: async () => engine, env: {} });
  await controller.start();
  try {
    const target = {
      url: `mqtt://127.0.0.1:${controller.brokerPort}`, baseTopic: "edgelora", stream: MODES[mode].stream, temperature: 0,
      tenants: Array.from({ length: TENANTS }, (_, i) => ({ name: `w${i}`, password: `w${i}` })),
    };
    const cpu0 = mainThreadCpuS();
    const worker = new Worker(new URL(import.meta.url), { workerData: { trace, target } satisfies WorkerJob });
    const result = await new Promise<DriveResult>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    const cpuS = mainThreadCpuS() - cpu0;
    const tokens = result.records.reduce((a, r) => a + r.completionTokens, 0);
    if (result.summary.errors > 0) throw new Error(`${mode}: ${result.summary.errors} requests failed`);
    return { cpuMsPer1kTokens: (cpuS * 1e6) / tokens, tokensPerS: result.summary.tokensPerS };
  } finally {
    await controller.stop();
  }
}

async function main(): Promise<void> {
  const o = new Command()
    .option("--rounds <n>", "rounds (each runs every mode)", (v) => Number(v), 3)
    .option("--requests <n>", "requests per run, all arriving within the first second", (v) => Number(v), 64)
    .parse()
    .opts<{ rounds: number; requests: number }>();
  const trace = generateTrace({ ...PAPER_TRACE, adapters: 1, tenants: TENANTS, rate: o.requests, durationS: 1, seed: 3 });
  const runs: Record<Mode, { cpuMsPer1kTokens: number; tokensPerS: number }[]> = { "chunk per token, QoS 1": [], "coalesced chunks, QoS 0": [], "not streamed": [] };
  for (let r = 0; r < o.rounds; r++) {
    for (const mode of Object.keys(MODES) as Mode[]) {
      runs[mode].push(await once(mode, trace));
      process.stderr.write(`round ${r + 1}, ${mode}: ${fmt(runs[mode].at(-1)!.cpuMsPer1kTokens, 0)} CPU ms per 1,000 tokens\n`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const rows = (Object.keys(MODES) as Mode[]).map((m) => [
    m, fmt(median(runs[m].map((x) => x.cpuMsPer1kTokens)), 0), runs[m].map((x) => fmt(x.cpuMsPer1kTokens, 0)).join(", "),
    fmt(median(runs[m].map((x) => x.tokensPerS)), 0),
  ]);
  const tokens = trace.requests.reduce((a, r) => a + r.outputTokens, 0);
  process.stdout.write(`${trace.requests.length} requests, ${tokens} tokens per run, engine computing nothing\n`);
  process.stdout.write(`${renderTable(["replies", "daemon CPU ms / 1k tokens (median)", "runs", "tokens/s (median)"], rows)}\n`);
  process.stderr.write(`wrote ${writeBenchResults("stream-overhead", { requests: trace.requests.length, tokens, runs })}\n`);
}

if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench-stream-overhead: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
} else {
  const { trace, target } = workerData as WorkerJob;
  driveMqtt(trace, { ...target, adapterName: () => null }, { sloMs: 1e9, drainS: 120 }).then((r) => parentPort!.postMessage(r));
}
