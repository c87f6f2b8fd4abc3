// A real embedded broker on a random loopback port, with tenants alice/bob and an admin, and
// helpers for real mqtt.js clients.
import { connectAsync, type MqttClient, type IClientOptions } from "mqtt";
import { pino } from "pino";
import { EmbeddedBroker } from "../../src/mqtt/broker.js";
import { hashPassword } from "../../src/mqtt/password.js";
import { userDirectory, type Credentials } from "../../src/mqtt/users.js";

export const quietLogger = pino({ level: "silent" });
const FAST = { N: 1024, r: 8, p: 1 }; // cheap scrypt cost: tests only

export interface TestBroker {
  broker: EmbeddedBroker;
  port: number;
  url: string;
  daemon: Credentials;
  tenants: Record<string, { password_hash: string; adapters: string[]; default_adapter: string | null }>;
  admin: { username: string; password_hash: string };
  connect(username: string, password: string, extra?: IClientOptions): Promise<MqttClient>;
  close(): Promise<void>;
}

export async function startTestBroker(base = "edgelora"): Promise<TestBroker> {
  const tenants = {
    alice: { password_hash: await hashPassword("alice", FAST), adapters: ["pirate", "poet"], default_adapter: "pirate" },
    bob: { password_hash: await hashPassword("bob", FAST), adapters: ["*"], default_adapter: null },
  };
  const admin = { username: "admin", password_hash: await hashPassword("secret", FAST) };
  const { users, daemon } = userDirectory({ tenants, admin });
  const broker = new EmbeddedBroker({ host: "127.0.0.1", port: 0, base, users, logger: quietLogger });
  const port = await broker.listen();
  broker.openToClients();
  const url = `mqtt://127.0.0.1:${port}`;
  const clients = trackedClients(url);
  return {
    broker,
    port,
    url,
    daemon,
    tenants,
    admin,
    connect: clients.connect,
    async close() {
      await clients.endAll();
      await broker.close();
    },
  };
}

/** Test clients of one broker (no reconnects), all ended together by endAll(). */
export function trackedClients(url: string) {
  const clients: MqttClient[] = [];
  return {
    async connect(username: string, password: string, extra: IClientOptions = {}): Promise<MqttClient> {
      const c = await connectAsync(url, { username, password, reconnectPeriod: 0, ...extra });
      clients.push(c);
      return c;
    },
    async endAll(): Promise<void> {
      await Promise.all(clients.map((c) => c.endAsync(true)));
    },
  };
}

/** Collects messages on `filter` into an array; `next()` waits for the n-th one (30 s by default: with
 *  as many test files at once as cores, a process can wait seconds for its turn). */
export async function collect(client: MqttClient, filter: string) {
  const got: { topic: string; payload: string; json: any; properties?: any; retain: boolean }[] = [];
  const waiters: (() => void)[] = [];
  client.on("message", (topic, payload, packet) => {
    if (!topicMatches(filter, topic)) return;
    const text = payload.toString();
    let json: unknown = undefined;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    got.push({ topic, payload: text, json, properties: packet.properties, retain: packet.retain });
    waiters.splice(0).forEach((w) => w());
  });
  const granted = await client.subscribeAsync(filter, { qos: 1 });
  return {
    got,
    granted,
    async next(n = got.length + 1, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (got.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for message ${n} on ${filter} (have ${got.length})`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => (clearTimeout(t), resolve()));
        });
      }
      return got[n - 1];
    },
  };
}

function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 5 ms until it holds; fails after `timeoutMs` (a loaded machine is slow, never wrong). */
export async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
