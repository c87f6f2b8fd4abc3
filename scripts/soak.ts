// Soak test: the daemon (a child process, embedded broker, demo model, 8 tenants with 8 adapters)
// under a steady mixed load at about --load (default 80%) of the capacity measured first, for
// --minutes. Every --interval-s it prints the daemon's RSS and heap (from bridge/<board>/metrics),
// the requests answered, their p99 latency and the errors, then flags growth of RSS or heap between
// the first and the last third of the run. Figures go to bench-results/soak-<date>.json.
// Usage: npm run soak -- --minutes 60 [--interval-s 30] [--load 0.8] [--threads 2] [--model M]
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { connectAsync, type MqttClient } from "mqtt";
import { loadConfig } from "../src/config/index.js";
import { ensureDemoAssets } from "../src/daemon/demo.js";
import { writeSyntheticAdapter } from "../src/lora/synthetic.js";
import { hashPassword } from "../src/mqtt/password.js";
import { startDaemonChild } from "./lib/daemon-child.js";
import { LoadClients, percentile, type Outcome } from "./lib/load-clients.js";
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";

const TENANTS = 8;

function positive(s: string): number {
  const n = Number(s);
  if (!(n > 0)) throw new InvalidArgumentError("expected a positive number");
  return n;
}

const opts = new Command()
  .name("soak")
  .description("steady mixed load at a share of the measured capacity; RSS, heap, p99 latency and errors over time")
  .option("--minutes <n>", "length of the loaded run", positive, 10)
  .option("--interval-s <n>", "seconds per reported interval", positive, 30)
  .option("--load <x>", "share of the measured capacity to offer", positive, 0.8)
  .option("--threads <n>", "engine threads", positive, 2)
  .option("--model <path>", "a GGUF model instead of the demo model")
  .parse()
  .opts<{ minutes: number; intervalS: number; load: number; threads: number; model?: string }>();

const log = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row {
  minute: number;
  rssMiB: number;
  heapMiB: number;
  answered: number;
  p50Ms: number;
  p99Ms: number;
  errors: Record<string, number>;
  inFlight: number;
}

async function main(): Promise<void> {
  const dataDir = join(tmpdir(), "edgelora-soak");
  rmSync(join(dataDir, "requests.journal"), { force: true });
  mkdirSync(dataDir, { recursive: true });
  const demo = await ensureDemoAssets(dataDir);
  const modelPath = opts.model ?? demo.modelPath;
  const adapters: Record<string, string> = {};
  for (let i = 0; i < TENANTS; i++) {
    const out = join(dataDir, `soak-${i}.gguf`);
    await writeSyntheticAdapter({ model: modelPath, out, format: "gguf", rank: 8, alpha: 16, seed: 700 + i, strength: 1 });
    adapters[`soak-${i}`] = out;
  }
  const fast = { N: 1024, r: 8, p: 1 }; // throwaway passwords of this run
  const c = loadConfig({ env: {} });
  c.daemon.data_dir = dataDir;
  c.daemon.log_level = "info"; // startDaemonChild waits for the "edgelora serving" line
  c.daemon.board_id = "soak";
  c.mqtt.port = 0;
  c.metrics.interval_s = Math.min(10, opts.intervalS);
  c.model.path = modelPath;
  c.model.threads = opts.threads;
  c.model.lora_slots = TENANTS;
  c.adapters.entries = adapters;
  c.observer = { username: "observer", password_hash: await hashPassword("observer", fast) };
  c.tenants = {};
  for (let i = 0; i < TENANTS; i++) c.tenants[`s${i}`] = { password_hash: await hashPassword(`s${i}`, fast), adapters: ["*"], default_adapter: `soak-${i}` };

  const daemon = await startDaemonChild(c);
  const url = `mqtt://127.0.0.1:${daemon.port}`;
  let observer: MqttClient | null = null;
  const load = new LoadClients(url, Object.keys(c.tenants), Object.keys(adapters));
  try {
    observer = await connectAsync(url, { username: "observer", password: "observer", reconnectPeriod: 0 });
    const memory = { rss: 0, heap: 0 };
    observer.on("message", (_t, payload) => {
      const m = JSON.parse(payload.toString()) as { memory?: { rss_bytes: number; heap_used_bytes: number } };
      if (m.memory) Object.assign(memory, { rss: m.memory.rss_bytes, heap: m.memory.heap_used_bytes });
    });
    await observer.subscribeAsync("edgelora/bridge/soak/metrics", { qos: 0 });
    await load.connect();

    log("measuring capacity: 8 tenants, one request in flight each, 30 s");
    const capacity = (await load.closedLoop(30_000)).perSecond;
    const rate = capacity * opts.load;
    log(`capacity ${fmt(capacity, 2)} req/s; offering ${fmt(rate, 2)} req/s (${fmt(opts.load * 100, 0)}%) for ${opts.minutes} min`);

    const rows: Row[] = [];
    const intervals = Math.max(1, Math.round((opts.minutes * 60) / opts.intervalS));
    load.startOpenLoop(rate);
    for (let i = 1; i <= intervals; i++) {
      await sleep(opts.intervalS * 1000);
      const done: Outcome[] = load.drain();
      const lat = done.filter((o) => o.code === null).map((o) => o.latencyMs);
      const errors: Record<string, number> = {};
      for (const o of done) if (o.code !== null) errors[o.code] = (errors[o.code] ?? 0) + 1;
      const row = {
        minute: (i * opts.intervalS) / 60, rssMiB: memory.rss / 2 ** 20, heapMiB: memory.heap / 2 ** 20, answered: done.length,
        p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), errors, inFlight: load.inFlight,
      };
      rows.push(row);
      log(`${fmt(row.minute, 1)} min: RSS ${fmt(row.rssMiB)} MiB, heap ${fmt(row.heapMiB)} MiB, ${row.answered} answered, p99 ${fmt(row.p99Ms, 0)} ms, errors ${JSON.stringify(errors)}, in flight ${row.inFlight}`);
    }
    await load.stopOpenLoop(60_000);

    const third = Math.max(1, Math.floor(rows.length / 3));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const growth = (key: "rssMiB" | "heapMiB") => mean(rows.slice(-third).map((r) => r[key])) - mean(rows.slice(0, third).map((r) => r[key]));
    const flag = (key: "rssMiB" | "heapMiB") => {
      const g = growth(key);
      const base = mean(rows.slice(0, third).map((r) => r[key]));
      return g > Math.max(8, 0.1 * base) ? `GROWTH +${fmt(g)} MiB` : `steady (${g >= 0 ? "+" : ""}${fmt(g)} MiB)`;
    };
    const header = ["minute", "RSS MiB", "heap MiB", "answered", "p50 ms", "p99 ms", "errors", "in flight"];
    const table = rows.map((r) => [fmt(r.minute, 1), fmt(r.rssMiB), fmt(r.heapMiB), String(r.answered), fmt(r.p50Ms, 0), fmt(r.p99Ms, 0),
      Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(", ") || "0", String(r.inFlight)]);
    const totalErrors = rows.reduce((n, r) => n + Object.values(r.errors).reduce((a, b) => a + b, 0), 0);
    process.stdout.write(`${renderTable(header, table)}\n\ncapacity ${fmt(capacity, 2)} req/s, offered ${fmt(rate, 2)} req/s; ` +
      `RSS ${flag("rssMiB")}, heap ${flag("heapMiB")} (last third against first third); ${totalErrors} errors; unanswered at the end: ${load.inFlight}\n`);
    log(`wrote ${writeBenchResults("soak", { model: modelPath, options: opts, capacity, offered: rate, rows, rssGrowthMiB: growth("rssMiB"), heapGrowthMiB: growth("heapMiB"), unanswered: load.inFlight })}`);
  } finally {
    await load.close();
    await observer?.endAsync(true);
    await daemon.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`soak: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
