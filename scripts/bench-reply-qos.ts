// What exactly-once final replies cost (daemon.exactly_once: QoS 2, mqtt.js's outgoing store in a
// file) against QoS 1 with the in-memory store, through a private Mosquitto on loopback: the daemon's
// Bus publishes reply-sized messages that a tenant receives. Per mode: one at a time (time until the
// tenant has it, and until the broker completed it: PUBACK or PUBCOMP), and a burst of --burst at
// once (replies/s until the tenant has all); CPU time of this process (Bus and tenant) per reply. Modes alternate
// within each round so the machine's load drifts hit both alike.
// Usage: npm run bench:reply-qos -- [--rounds 3] [--replies 300] [--burst 200]
// Prints a table; writes bench-results/reply-qos-<date>.json.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { connectAsync } from "mqtt";
import { pino } from "pino";
import { Bus } from "../src/mqtt/client.js";
import { startMosquitto } from "./lib/mosquitto.js";
import { writeBenchResults } from "./lib/results.js";
import { fmt, renderTable } from "./lib/table.js";

const MODES = ["QoS 1, store in memory", "QoS 2, store in a file"] as const;
type Mode = (typeof MODES)[number];
const TOPIC = "edgelora/t0/response";
const REPLY = JSON.stringify({ transaction: "x", status: "ok", text: "Once upon a time ".repeat(30), usage: { prompt_tokens: 5, completion_tokens: 120 } });

interface Sample {
  deliveredMs: number[];
  completedMs: number[];
  burstPerS: number;
  cpuUsPerReply: number;
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

async function main(): Promise<void> {
  const o = new Command()
    .option("--rounds <n>", "rounds, modes alternating", "3")
    .option("--replies <n>", "replies sent one at a time per round", "300")
    .option("--burst <n>", "replies sent at once per round", "200")
    .parse()
    .opts<{ rounds: string; replies: string; burst: string }>();
  const rounds = Number(o.rounds);
  const m = await startMosquitto(["edgelora", "t0"]);
  const tenant = await connectAsync(m.url, { username: "t0", password: "t0", protocolVersion: 5, reconnectPeriod: 0 });
  let onMessage: () => void = () => undefined;
  tenant.on("message", () => onMessage());
  await tenant.subscribeAsync(TOPIC, { qos: 1 });
  const samples = new Map<Mode, Sample[]>(MODES.map((mode) => [mode, []]));
  try {
    for (let r = 0; r < rounds; r++) {
      for (const mode of MODES) {
        const exactlyOnce = mode === "QoS 2, store in a file";
        const bus = new Bus({
          url: m.url, protocolVersion: 5, clientId: `bench-reply-qos-${r}-${exactlyOnce ? 2 : 1}`, username: "edgelora", password: "edgelora",
          qos: 1, keepaliveS: 30, reconnectMs: 1000, will: { topic: "edgelora/bridge/state", payload: "offline" }, clean: false, sessionExpiryS: 60,
          ...(exactlyOnce ? { outgoingStoreFile: join(mkdtempSync(join(tmpdir(), "edgelora-bench-store-")), "outgoing.store") } : {}),
          logger: pino({ level: "silent" }),
        });
        bus.start();
        await bus.waitConnected();
        const qos = exactlyOnce ? 2 : 1;
        const cpu0 = process.cpuUsage();
        const deliveredMs: number[] = [];
        const completedMs: number[] = [];
        for (let i = 0; i < Number(o.replies); i++) {
          const t0 = performance.now();
          const delivered = new Promise<void>((resolve) => (onMessage = resolve));
          const completed = bus.publish(TOPIC, REPLY, { qos }).then(() => completedMs.push(performance.now() - t0));
          await delivered;
          deliveredMs.push(performance.now() - t0);
          await completed;
        }
        const burst = Number(o.burst);
        let got = 0;
        const t0 = performance.now();
        const all = new Promise<void>((resolve) => (onMessage = () => ++got === burst && resolve()));
        await Promise.all(Array.from({ length: burst }, () => bus.publish(TOPIC, REPLY, { qos })));
        await all;
        const burstPerS = burst / ((performance.now() - t0) / 1000);
        const cpu = process.cpuUsage(cpu0);
        samples.get(mode)!.push({ deliveredMs, completedMs, burstPerS, cpuUsPerReply: (cpu.user + cpu.system) / (Number(o.replies) + burst) });
        await bus.stop();
      }
    }
  } finally {
    await tenant.endAsync(true);
    await m.stop();
  }
  const rows = MODES.map((mode) => {
    const s = samples.get(mode)!;
    const delivered = s.flatMap((x) => x.deliveredMs);
    const completed = s.flatMap((x) => x.completedMs);
    const burst = s.map((x) => x.burstPerS);
    return {
      mode,
      delivered_p50_ms: quantile(delivered, 0.5),
      delivered_p99_ms: quantile(delivered, 0.99),
      completed_p50_ms: quantile(completed, 0.5),
      burst_per_s_min: Math.min(...burst),
      burst_per_s_max: Math.max(...burst),
      cpu_us_per_reply: s.reduce((a, x) => a + x.cpuUsPerReply, 0) / s.length,
    };
  });
  console.log(
    renderTable(
      ["mode", "tenant has it p50 ms", "p99 ms", "broker completed p50 ms", "burst replies/s (min-max of rounds)", "CPU µs/reply (this process)"],
      rows.map((x) => [x.mode, fmt(x.delivered_p50_ms, 2), fmt(x.delivered_p99_ms, 2), fmt(x.completed_p50_ms, 2), `${fmt(x.burst_per_s_min, 0)}-${fmt(x.burst_per_s_max, 0)}`, fmt(x.cpu_us_per_reply, 0)]),
    ),
  );
  const file = writeBenchResults("reply-qos", { rounds, replies: Number(o.replies), burst: Number(o.burst), rows });
  console.log(`wrote ${file}`);
}

await main();
