// `edgelora serve` in a child process, for tests that kill it (SIGKILL) and start it again. Its JSON
// log lines are kept for the test to read.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { MqttClient } from "mqtt";

const CLI = fileURLToPath(new URL("../../src/cli.js", import.meta.url));

export interface ChildDaemon {
  proc: ChildProcess;
  logs: Record<string, unknown>[];
  exit: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts the daemon (`env` added to this process's) and resolves once it logs "edgelora serving". */
export async function startChild(configFile: string, timeoutMs = 60_000, env?: NodeJS.ProcessEnv): Promise<ChildDaemon> {
  const proc = spawn(process.execPath, [CLI, "serve", "--config", configFile], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  const exit = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const logs: Record<string, unknown>[] = [];
  let out = "";
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          logs.push(rec);
          if (rec.msg === "edgelora serving") resolve();
        } catch {
          out += `${line}\n`;
        }
      }
    });
    void exit.then((code) => reject(new Error(`edgelora serve exited with ${code}: ${out}`)));
    setTimeout(() => reject(new Error(`edgelora serve did not start within ${timeoutMs} ms: ${out}`)), timeoutMs).unref();
  }).catch((err: unknown) => {
    proc.kill("SIGKILL"); // not left running
    throw err;
  });
  return {
    proc,
    logs,
    exit,
    async kill(signal = "SIGKILL") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exit;
    },
  };
}

/** Every final reply (by transaction) a client receives, counted: a test can check none came twice. */
export class FinalCounter {
  readonly finals = new Map<string, Record<string, unknown>[]>();
  private waiters: (() => void)[] = [];

  constructor(client: MqttClient) {
    client.on("message", (_topic, payload) => {
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(payload.toString()) as Record<string, unknown>;
      } catch {
        return;
      }
      if (typeof m.transaction !== "string" || m.type === "chunk") return;
      const list = this.finals.get(m.transaction) ?? [];
      list.push(m);
      this.finals.set(m.transaction, list);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves once every transaction has a final reply; rejects after timeoutMs. */
  async all(transactions: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (transactions.some((t) => !this.finals.has(t))) {
      const left = deadline - Date.now();
      if (left <= 0) {
        const missing = transactions.filter((t) => !this.finals.has(t));
        throw new Error(`no final reply for ${missing.length} transactions: ${missing.slice(0, 10).join(", ")}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }
}
