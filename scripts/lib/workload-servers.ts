// The servers of the workload sweep: our daemon as a child process (`edgelora serve` on the bench model, adapters
// a0..a<n-1> in a folder, tenants w0..w<t-1>, embedded broker on a free port) and llama.cpp as a child process
// (`edgelora bench workload --server llama`), each measured as its own process tree.
import { fork, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connectAsync } from "mqtt";
import { stringify } from "yaml";
import { driveMqtt, type DriveResult } from "../../src/bench/mqtt-driver.js";
import { writeTrace, type Trace } from "../../src/bench/trace.js";
import { packageRoot } from "../../src/engine/native.js";
import { hashPassword } from "../../src/mqtt/password.js";
import type { SchedulerStats } from "../../src/scheduler/types.js";
import { freePort } from "../../test/helpers/ports.js";

const CLI = join(packageRoot(), "dist", "src", "cli.js");

export const SERVERS = ["daemon", "contexts", "switch"] as const;
export type Server = (typeof SERVERS)[number];
export const LABEL: Record<Server, string> = { daemon: "edgelora daemon", contexts: "llama.cpp, context per adapter", switch: "llama.cpp, context per switch" };

/** A folder where adapter i is a<i>.gguf, a link to files[i % files.length]: each name is its own adapter to both
 *  servers (loaded and kept separately), without writing n files of the same shape. */
export function adapterFolder(dir: string, files: string[], n: number): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) symlinkSync(files[i % files.length], join(dir, `a${i}.gguf`));
  return dir;
}

export interface DaemonSettings {
  modelPath: string;
  adapterDir: string;
  tenants: number;
  threads: number;
  maxSequences: number;
  loraSlots: number;
  loraPoolType: string;
  extra?: Record<string, Record<string, unknown>>; // more config, by section
}

export interface RunningDaemon {
  url: string;
  pid: number;
  /** The scheduler's stats (admin health op): its totals tell where the steps' time went. */
  schedulerStats(): Promise<SchedulerStats>;
  stop(): Promise<void>;
}

export async function startDaemon(s: DaemonSettings, workDir: string, log: (line: string) => void): Promise<RunningDaemon> {
  const port = await freePort();
  const fast = { N: 1024, r: 8, p: 1 }; // the benchmark's own throwaway passwords
  const tenants: Record<string, unknown> = {};
  for (let i = 0; i < s.tenants; i++) tenants[`w${i}`] = { password_hash: await hashPassword(`w${i}`, fast), adapters: ["*"], default_adapter: null };
  const config = {
    daemon: { data_dir: join(workDir, "daemon-data"), log_level: "warn", shutdown_grace_ms: 1000 },
    mqtt: { port, max_payload_bytes: 65536 },
    model: { path: s.modelPath, threads: s.threads, n_ctx: 512, lora_slots: s.loraSlots, lora_max_rank: 16, lora_pool_type: s.loraPoolType },
    scheduler: {
      max_sequences: s.maxSequences, max_batch_tokens: Math.max(256, s.maxSequences), max_queue: 1024, per_tenant_queue: 256,
      per_tenant_in_flight: Math.max(4, s.maxSequences), max_tokens_limit: 512, request_timeout_ms: 600_000,
    },
    adapters: { directory: s.adapterDir },
    tenants,
    admin: { username: "admin", password_hash: await hashPassword("admin", fast) },
    metrics: { interval_s: 0 },
    systemd: { notify: false },
  };
  for (const [section, values] of Object.entries(s.extra ?? {})) Object.assign((config as Record<string, object>)[section] ?? ((config as Record<string, object>)[section] = {}), values);
  const configPath = join(workDir, "daemon.yaml");
  writeFileSync(configPath, stringify(config));
  const logPath = join(workDir, "daemon.log");
  const out = openSync(logPath, "a");
  const child: ChildProcess = fork(CLI, ["serve", "--config", configPath], { stdio: ["ignore", out, out, "ipc"] });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let dead = false;
  void exited.then(() => (dead = true));
  const url = `mqtt://127.0.0.1:${port}`;
  // Ready when every tenant's first request (each with its own adapter) is answered.
  const warmup: Trace = {
    params: { adapters: s.tenants, alpha: 1, rate: 1, cv: 1, durationS: 1, tenants: s.tenants, inputTokens: [8, 8], outputTokens: [2, 2], seed: 0 },
    requests: Array.from({ length: s.tenants }, (_, i) => ({ id: i, atS: 0, tenant: i, adapter: i, inputTokens: 8, outputTokens: 2 })),
  };
  const deadline = Date.now() + 300_000;
  for (;;) {
    if (dead) throw new Error(`the daemon exited during start-up; see ${logPath}:\n${readFileSync(logPath, "utf8").slice(-2000)}`);
    try {
      // Requests published before the daemon subscribes are lost: unanswered ones are tried again.
      const r = await driveMqtt(warmup, mqttTarget(url, s.tenants), { sloMs: 1e9, drainS: 15 });
      const failed = r.records.filter((x) => x.error !== null && x.error !== "UNFINISHED");
      if (failed.length > 0) throw new Error(`warm-up requests failed: ${failed.map((x) => x.error).join(", ")}`);
      if (r.summary.errors === 0) break;
    } catch (err) {
      if (Date.now() > deadline || (err instanceof Error && err.message.startsWith("warm-up"))) {
        child.kill("SIGTERM");
        throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  log(`daemon pid ${child.pid} serving on ${url} (log: ${logPath})`);
  const admin = await connectAsync(url, { username: "admin", password: "admin", reconnectPeriod: 0 });
  await admin.subscribeAsync("edgelora/bridge/response/health", { qos: 1 });
  return {
    url,
    pid: child.pid!,
    schedulerStats: () =>
      new Promise<SchedulerStats>((resolve, reject) => {
        const transaction = `stats-${Date.now()}-${Math.random()}`;
        const onMessage = (_topic: string, payload: Buffer) => {
          const m = JSON.parse(payload.toString()) as { transaction?: string; data?: { scheduler?: SchedulerStats } };
          if (m.transaction !== transaction) return;
          admin.off("message", onMessage);
          if (m.data?.scheduler) resolve(m.data.scheduler);
          else reject(new Error("health reply without scheduler stats"));
        };
        admin.on("message", onMessage);
        admin.publishAsync("edgelora/bridge/request/health", JSON.stringify({ transaction }), { qos: 1 }).catch(reject);
      }),
    async stop() {
      await admin.endAsync(true).catch(() => undefined);
      if (!dead) child.kill("SIGTERM");
      await exited;
    },
  };
}

export function mqttTarget(url: string, tenants: number) {
  return {
    url, baseTopic: "edgelora", stream: true, temperature: 0, adapterName: (i: number) => `a${i}`,
    tenants: Array.from({ length: tenants }, (_, i) => ({ name: `w${i}`, password: `w${i}` })),
  };
}

export interface LlamaSettings {
  modelPath: string;
  adapterDir: string;
  mode: "contexts" | "switch";
  maxContexts: number;
  lanes: number;
  threads: number;
}

/** One run of the trace on llama.cpp in a child process (its own CPU time and memory). */
export async function runLlama(trace: Trace, s: LlamaSettings, workDir: string, name: string, sloMs: number, drainS: number): Promise<DriveResult> {
  const tracePath = join(workDir, `${name}.trace.jsonl`);
  const jsonPath = join(workDir, `${name}.json`);
  writeTrace(tracePath, trace);
  const args = [
    "bench", "workload", "--server", "llama", "--trace", tracePath, "--model", s.modelPath, "--adapter-dir", s.adapterDir,
    "--llama-mode", s.mode, "--max-contexts", String(s.maxContexts), "--lanes", String(s.lanes), "--threads", String(s.threads),
    "--slo-ms", String(sloMs), "--drain", String(drainS), "--json", jsonPath,
  ];
  const child = fork(CLI, args, { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0 || !existsSync(jsonPath)) throw new Error(`llama.cpp run ${name} failed (exit ${code})`);
  return JSON.parse(readFileSync(jsonPath, "utf8")) as DriveResult;
}
