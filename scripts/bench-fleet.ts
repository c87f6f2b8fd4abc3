// Fleet scale test: 1, 2 and 3 boards (daemon processes on this machine, shared subscriptions on a
// private Mosquitto, demo model, 8 tenants with 8 adapters) under the same closed-loop load; the
// requests/s and latency of each. The boards share this machine's cores, so this shows that the
// fleet spreads the work and loses nothing, not what separate boards would add. Configurations
// alternate in rounds.
// Usage: npm run bench:fleet -- [--rounds 2] [--seconds 20] [--threads 1] [--in-flight 2] [--max-tokens 32]
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { loadConfig } from "../src/config/index.js";
import { ensureDemoAssets } from "../src/daemon/demo.js";
import { writeSyntheticAdapter } from "../src/lora/synthetic.js";
import { startDaemonChild, type DaemonChild } from "./lib/daemon-child.js";
import { LoadClients, percentile } from "./lib/load-clients.js";
import { startMosquitto } from "./lib/mosquitto.js";
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";
import { median } from "./lib/workload.js";

const TENANTS = Array.from({ length: 8 }, (_, i) => `f${i}`);

function positive(s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

const opts = new Command()
  .name("bench-fleet")
  .description("requests/s of a fleet of 1, 2 and 3 boards on this machine (a functional scale test)")
  .option("--rounds <n>", "rounds; each runs 1, 2 and 3 boards", positive, 2)
  .option("--seconds <n>", "measured seconds per run", positive, 20)
  .option("--threads <n>", "engine threads per board", positive, 1)
  .option("--in-flight <n>", "requests in flight per tenant", positive, 2)
  .option("--max-tokens <n>", "tokens per request", positive, 32)
  .parse()
  .opts<{ rounds: number; seconds: number; threads: number; inFlight: number; maxTokens: number }>();

const log = (s: string) => process.stderr.write(`${s}\n`);

interface Run {
  boards: number;
  round: number;
  requestsPerS: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

async function main(): Promise<void> {
  const root = join(tmpdir(), "edgelora-bench-fleet");
  mkdirSync(root, { recursive: true });
  const demo = await ensureDemoAssets(root);
  const adapters: Record<string, string> = {};
  for (let i = 0; i < TENANTS.length; i++) {
    const out = join(root, `fleet-${i}.gguf`);
    await writeSyntheticAdapter({ model: demo.modelPath, out, format: "gguf", rank: 8, alpha: 16, seed: 900 + i, strength: 1 });
    adapters[`fleet-${i}`] = out;
  }
  const mosquitto = await startMosquitto(["edgelora", ...TENANTS]);
  const runs: Run[] = [];
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      for (const n of [1, 2, 3]) {
        const boards: DaemonChild[] = [];
        const load = new LoadClients(mosquitto.url, TENANTS, Object.keys(adapters), { protocolVersion: 5 });
        try {
          for (let b = 0; b < n; b++) {
            const c = loadConfig({ env: {} });
            c.daemon.data_dir = join(root, `round${round}-n${n}-b${b}`);
            c.daemon.log_level = "info";
            c.daemon.board_id = `board${b}`;
            c.mqtt = { ...c.mqtt, embedded: false, url: mosquitto.url, username: "edgelora", password: "edgelora", client_id: `bench-fleet-b${b}`, shared_subscription: true };
            c.metrics.interval_s = 0;
            c.model.path = demo.modelPath;
            c.model.threads = opts.threads;
            c.model.lora_slots = TENANTS.length;
            c.adapters.entries = adapters;
            c.tenants = Object.fromEntries(TENANTS.map((t, i) => [t, { password_hash: "unused-on-mosquitto", adapters: ["*"], default_adapter: `fleet-${i}` }]));
            mkdirSync(c.daemon.data_dir, { recursive: true });
            boards.push(await startDaemonChild(c));
          }
          await load.connect();
          await load.closedLoop(3000, opts.inFlight, opts.maxTokens); // warm-up: adapters loaded, adverts out
          const r = await load.closedLoop(opts.seconds * 1000, opts.inFlight, opts.maxTokens);
          const run = { boards: n, round, requestsPerS: r.perSecond, p50Ms: percentile(r.latencyMs, 50), p99Ms: percentile(r.latencyMs, 99), errors: r.errors };
          runs.push(run);
          log(`round ${round}, ${n} board(s): ${fmt(run.requestsPerS, 1)} req/s, p50 ${fmt(run.p50Ms, 0)} ms, p99 ${fmt(run.p99Ms, 0)} ms, ${run.errors} errors`);
        } finally {
          await load.close();
          for (const b of boards) await b.stop();
        }
      }
    }
  } finally {
    await mosquitto.stop();
  }
  const rows = [1, 2, 3].map((n) => {
    const mine = runs.filter((r) => r.boards === n);
    return [String(n), fmt(median(mine.map((r) => r.requestsPerS)), 1), mine.map((r) => fmt(r.requestsPerS, 1)).join(", "),
      fmt(median(mine.map((r) => r.p50Ms)), 0), fmt(median(mine.map((r) => r.p99Ms)), 0), String(mine.reduce((a, r) => a + r.errors, 0))];
  });
  process.stdout.write(`${renderTable(["boards", "req/s (median)", "req/s per round", "p50 ms", "p99 ms", "errors"], rows)}\n` +
    `\n${TENANTS.length} tenants x ${opts.inFlight} in flight, ${opts.maxTokens} tokens, ${opts.threads} engine thread(s) per board; ` +
    `every board runs on this machine's cores, so this is a functional scale test.\n`);
  log(`wrote ${writeBenchResults("fleet", { options: opts, runs })}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-fleet: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
