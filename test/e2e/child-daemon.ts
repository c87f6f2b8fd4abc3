// `edgelora serve` in a child process (scripts/lib/daemon-child.ts), for tests that kill it (SIGKILL)
// and start it again, its JSON log lines kept for the test to read; and a counter of final replies.
import { connectAsync, type MqttClient } from "mqtt";
import { startDaemonProcess, type DaemonChild } from "../../scripts/lib/daemon-child.js";

export type ChildDaemon = DaemonChild;

/** Starts the daemon (`env` added to this process's; under the `wrap` command) and resolves once it
 *  logs "edgelora serving"; its log lines are kept. */
export function startChild(configFile: string, timeoutMs = 60_000, env?: NodeJS.ProcessEnv, wrap?: string[]): Promise<ChildDaemon> {
  return startDaemonProcess(configFile, { timeoutMs, keepLogs: true, env, wrap });
}

/** Starts the daemon under `wrap` (strace killing it at a chosen write) and resolves once it is
 *  spawned: the kill may come before it logs that it serves. */
export function startChildToBeKilled(configFile: string, wrap: string[]): Promise<ChildDaemon> {
  return startDaemonProcess(configFile, { keepLogs: true, wrap, returnAtSpawn: true });
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

/** Tenant `tenant` connected over MQTT 5 (password = name, as the tests' brokers have it), subscribed
 *  to its responses, with a counter of its final replies. */
export async function countingTenant(url: string, tenant: string, reconnectPeriod = 0): Promise<{ client: MqttClient; counter: FinalCounter }> {
  const client = await connectAsync(url, { username: tenant, password: tenant, protocolVersion: 5, reconnectPeriod });
  const counter = new FinalCounter(client);
  await client.subscribeAsync(`edgelora/${tenant}/response`, { qos: 1 });
  return { client, counter };
}
