// End-to-end tests: the real native engine, scheduler and broker. A tiny synthetic llama (SPM
// vocabulary) and 8 rank-8 adapters (GGUF and PEFT) for tenants t0..t7, one adapter each.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import type { MqttClient } from "mqtt";
import { stringify } from "yaml";
import type { Config } from "../../src/config/index.js";
import { Controller } from "../../src/daemon/controller.js";
import { openNativeEngine } from "../../src/daemon/serve-command.js";
import { writeSyntheticModel } from "../../src/gguf/synthetic.js";
import { writeSyntheticAdapter } from "../../src/lora/synthetic.js";
import { hashPassword } from "../../src/mqtt/password.js";
import type { StepLogEntry } from "../../src/scheduler/types.js";
import { quietLogger } from "../helpers/broker.js";
import { localConfig } from "../helpers/local-config.js";

export const FAST = { N: 1024, r: 8, p: 1 }; // cheap scrypt cost: tests only
export const TENANTS = Array.from({ length: 8 }, (_, i) => `t${i}`);
export const adapterOf = (tenant: string) => `a${tenant.slice(1)}`;

export interface Assets {
  dir: string;
  model: string;
  adapters: Record<string, string>; // name -> path
}

let assets: Promise<Assets> | null = null;

/** Written once per test process. */
export function e2eAssets(): Promise<Assets> {
  assets ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgelora-e2e-"));
    const model = join(dir, "model.gguf");
    await writeSyntheticModel({ arch: "llama", type: "q8_0", vocab: "spm", out: model, nCtx: 2048, seed: 7 });
    const adapters: Record<string, string> = {};
    for (const t of TENANTS) {
      const name = adapterOf(t);
      const i = Number(t.slice(1));
      // Both adapter formats, loaded into the same slot pool.
      const format = i % 2 === 0 ? "gguf" : "peft";
      const out = join(dir, format === "gguf" ? `${name}.gguf` : name);
      await writeSyntheticAdapter({ model, out, format, rank: 8, alpha: 16, seed: 1000 + i, strength: 1 });
      adapters[name] = out;
    }
    return { dir, model, adapters };
  })();
  return assets;
}

/** Tenants t0..t7 (password = name), each allowed only its own adapter, which is its default. */
export async function e2eConfig(a: Assets, edit?: (c: Config) => void): Promise<Config> {
  const c = localConfig({ model: a.model, dataDir: mkdtempSync(join(a.dir, "data-")), threads: 2, nCtx: 512, loraSlots: 8 });
  c.scheduler.max_sequences = 8;
  c.scheduler.max_tokens_limit = 512;
  c.adapters.entries = a.adapters;
  c.tenants = {};
  for (const t of TENANTS) c.tenants[t] = { password_hash: await hashPassword(t, FAST), adapters: [adapterOf(t)], default_adapter: adapterOf(t) };
  c.admin = { username: "admin", password_hash: await hashPassword("admin", FAST) };
  edit?.(c);
  return c;
}

export function writeConfigFile(c: Config): string {
  const file = join(c.daemon.data_dir, "config.yaml");
  writeFileSync(file, stringify(c));
  return file;
}

export interface RealDaemon {
  controller: Controller;
  steps: StepLogEntry[]; // the scheduler's step log since start (clear it between phases)
  stop(): Promise<void>;
}

/** The daemon in this process, as `edgelora serve` builds it, on the native engine. */
export async function startRealDaemon(config: Config): Promise<RealDaemon> {
  const controller = new Controller({
    config,
    logger: quietLogger,
    modelPath: config.model.path!,
    openEngine: (path) => openNativeEngine(path, config),
    env: {},
  });
  await controller.start();
  const steps: StepLogEntry[] = [];
  controller.context.scheduler!.onStep((e) => steps.push(e));
  return { controller, steps, stop: () => controller.stop() };
}

export interface Reply {
  transaction: string;
  status: "ok" | "error";
  text?: string;
  adapter?: string | null;
  finish_reason?: string;
  usage?: { prompt_tokens: number; completion_tokens: number };
  error?: { code: string; message: string };
  chunks: string[]; // streamed deltas before the final message
  correlationData?: Buffer;
}

/** Final replies (and their stream chunks) on `client`, by transaction. */
export class Inbox {
  private readonly chunks = new Map<string, string[]>();
  private readonly finals = new Map<string, Reply>();
  private readonly waiters = new Map<string, (r: Reply) => void>();

  constructor(client: MqttClient) {
    client.on("message", (_topic, payload, packet) => {
      let m: { transaction?: string; type?: string; delta?: string };
      try {
        m = JSON.parse(payload.toString());
      } catch {
        return;
      }
      const tr = m.transaction;
      if (typeof tr !== "string") return;
      if (m.type === "chunk") {
        const list = this.chunks.get(tr) ?? [];
        list.push(m.delta ?? "");
        this.chunks.set(tr, list);
        this.waiters.get(`chunk:${tr}`)?.({ transaction: tr, status: "ok", chunks: list });
        return;
      }
      const reply = { ...(m as Reply), chunks: this.chunks.get(tr) ?? [], correlationData: packet.properties?.correlationData };
      this.finals.set(tr, reply);
      this.waiters.get(tr)?.(reply);
    });
  }

  /** Whether the final reply of `transaction` has arrived. */
  has(transaction: string): boolean {
    return this.finals.has(transaction);
  }

  /** The final reply of `transaction`. */
  reply(transaction: string, timeoutMs = 60_000): Promise<Reply> {
    return this.wait(transaction, this.finals.get(transaction), timeoutMs);
  }

  /** Resolves at the first stream chunk of `transaction`. */
  firstChunk(transaction: string, timeoutMs = 60_000): Promise<Reply> {
    const have = this.chunks.get(transaction);
    return this.wait(`chunk:${transaction}`, have && { transaction, status: "ok", chunks: have }, timeoutMs);
  }

  private wait(key: string, have: Reply | undefined, timeoutMs: number): Promise<Reply> {
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply for ${key} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.set(key, (r) => {
        clearTimeout(t);
        this.waiters.delete(key);
        resolve(r);
      });
    });
  }
}

/** A greedy request of a few tokens: what the batching tests send. */
export const greedy = (prompt: string, transaction: string, maxTokens = 12) =>
  JSON.stringify({ prompt, transaction, max_tokens: maxTokens, temperature: 0 });

export interface TenantClient {
  tenant: string;
  inbox: Inbox;
  /** Publishes one request; the reply lands in `inbox`. */
  send(body: string, transaction: string): Promise<void>;
}

const PROMPTS = ["Once upon a time", "The little dog ran to the park and saw a big red ball"];

/** Same greedy requests twice: one tenant at a time, then all at once. Checks the answers are
 *  equal, the adapters matter, and the concurrent round formed mixed-adapter steps. */
export async function aloneVersusTogether(t: ExecutionContext, daemon: RealDaemon, tenants: TenantClient[]): Promise<void> {
  const request = (tc: TenantClient, i: number, round: string) => {
    const transaction = `${round}-${tc.tenant}`;
    return { transaction, body: greedy(PROMPTS[i % PROMPTS.length], transaction) };
  };
  const alone = new Map<string, Reply>();
  for (const [i, tc] of tenants.entries()) {
    const { transaction, body } = request(tc, i, "alone");
    await tc.send(body, transaction);
    alone.set(tc.tenant, await tc.inbox.reply(transaction));
  }
  t.true(daemon.steps.every((s) => s.adapters.length === 1), "one tenant at a time: one adapter per step");
  daemon.steps.length = 0;

  const together = await Promise.all(
    tenants.map(async (tc, i) => {
      const { transaction, body } = request(tc, i, "together");
      await tc.send(body, transaction);
      return tc.inbox.reply(transaction);
    }),
  );
  for (const [i, tc] of tenants.entries()) {
    const a = alone.get(tc.tenant)!;
    const b = together[i];
    t.is(a.status, "ok", JSON.stringify(a.error));
    t.is(b.status, "ok", JSON.stringify(b.error));
    t.is(b.adapter, adapterOf(tc.tenant));
    t.is(b.text, a.text, `${tc.tenant}: batched answer equals the answer alone`);
    t.deepEqual(b.usage, a.usage);
  }
  // Same prompt, different adapters: the answers differ (the adapters are really applied).
  const samePrompt = tenants.filter((_, i) => i % PROMPTS.length === 0).map((tc) => alone.get(tc.tenant)!.text);
  t.true(new Set(samePrompt).size > 1, `adapters change the answer: ${JSON.stringify(samePrompt)}`);
  const widest = Math.max(...daemon.steps.map((s) => s.adapters.length));
  t.log(`concurrent round: ${daemon.steps.length} steps, up to ${widest} distinct adapters in one step`);
  t.true(widest > 1, "mixed-adapter batches were formed");
}
