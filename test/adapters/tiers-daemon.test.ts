// The adapter hierarchy through the whole daemon on the real engine (stories260K): 1,000 registered
// adapters (50 distinct rank-4 files, the rest symbolic links to them: the registry and the tiers
// treat every name as its own adapter, so the count is real while the disk holds 50 files), 4 slots
// and a warm budget of a few images. Greedy requests cycling through the 50 adapters, 8 at a time,
// each equal the same request with that adapter alone, for every pool type: no corruption across
// demotion (slot -> warm), promotion (warm -> slot) and warm eviction.
import test from "ava";
import { mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectAsync } from "mqtt";
import type { Config } from "../../src/config/index.js";
import { bridgeInfo } from "../../src/daemon/bridge-info.js";
import { Metrics } from "../../src/daemon/metrics.js";
import { LORA_POOL_TYPES } from "../../src/engine/types.js";
import { writeSyntheticAdapter } from "../../src/lora/synthetic.js";
import { hashPassword } from "../../src/mqtt/password.js";
import { storiesPath } from "../helpers/engine.js";
import { localConfig } from "../helpers/local-config.js";
import { FAST, Inbox, startRealDaemon, type Reply } from "../e2e/harness.js";

const DISTINCT = 50;
const REGISTERED = 1000;
const model = storiesPath();

let adapterDir: Promise<string> | null = null;
function adapters(): Promise<string> {
  adapterDir ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgelora-tiers-"));
    const files = join(dir, "files");
    const registered = join(dir, "adapters");
    mkdirSync(files);
    mkdirSync(registered);
    for (let i = 0; i < DISTINCT; i++) {
      const format = i % 5 === 4 ? "peft" : "gguf"; // both formats
      const out = join(files, format === "gguf" ? `f${i}.gguf` : `f${i}`);
      await writeSyntheticAdapter({ model: model!, out, format, rank: 4, alpha: 8, seed: 500 + i, strength: 2 });
      symlinkSync(out, join(registered, format === "gguf" ? `x${i}.gguf` : `x${i}`));
    }
    for (let i = DISTINCT; i < REGISTERED; i++) {
      const k = i % DISTINCT;
      const format = k % 5 === 4 ? "peft" : "gguf";
      symlinkSync(join(files, format === "gguf" ? `f${k}.gguf` : `f${k}`), join(registered, format === "gguf" ? `x${i}.gguf` : `x${i}`));
    }
    return registered;
  })();
  return adapterDir;
}

async function tiersConfig(pool: (typeof LORA_POOL_TYPES)[number], edit?: (c: Config) => void): Promise<Config> {
  const c = localConfig({ model: model!, dataDir: mkdtempSync(join(tmpdir(), "edgelora-tiers-data-")), threads: 1, nCtx: 128, loraSlots: 4, loraMaxRank: 8 });
  c.model.lora_pool_type = pool;
  c.scheduler.max_sequences = 8;
  c.adapters.directory = await adapters();
  // A few images only: warm evicts as the requests cycle (a rank-4 image here is ~60-100 KB).
  c.adapters.warm.budget_mb = 0.4;
  c.tenants = { u: { password_hash: await hashPassword("u", FAST), adapters: ["*"], default_adapter: null } };
  edit?.(c);
  return c;
}

const body = (adapter: string, transaction: string) =>
  JSON.stringify({ prompt: "Once upon a time", adapter, transaction, max_tokens: 10, temperature: 0 });

for (const pool of LORA_POOL_TYPES) {
  test.serial(`${pool} pool: 1,000 registered, 4 slots, small warm budget: cycling answers equal the answers alone`, async (t) => {
    if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
    const daemon = await startRealDaemon(await tiersConfig(pool));
    const client = await connectAsync(`mqtt://127.0.0.1:${daemon.controller.brokerPort}`, { username: "u", password: "u", reconnectPeriod: 0 });
    try {
      const ctx = daemon.controller.context;
      t.is(ctx.registry.size, REGISTERED);
      const inbox = new Inbox(client);
      await client.subscribeAsync("edgelora/u/response", { qos: 1 });
      const ask = async (adapter: string, transaction: string): Promise<Reply> => {
        await client.publishAsync("edgelora/u/request", body(adapter, transaction), { qos: 1 });
        return inbox.reply(transaction);
      };
      // Alone: one request at a time, each adapter's first use (from its file).
      const alone = new Map<string, string>();
      for (let i = 0; i < DISTINCT; i++) {
        const r = await ask(`x${i}`, `alone-${i}`);
        t.is(r.status, "ok", JSON.stringify(r.error));
        alone.set(`x${i}`, r.text!);
      }
      t.true(new Set(alone.values()).size > 10, "the adapters change the answers");
      const afterAlone = ctx.slots!.stats();
      t.is(afterAlone.hits.cold, DISTINCT);
      // Cycling, 8 at a time: a popular few (x0..x5, mostly from warm or hot) mixed into sweeps over all 50.
      const order: number[] = [];
      for (let round = 0; round < 3; round++)
        for (let i = 0; i < DISTINCT; i++) order.push(i % 3 === 0 ? (i / 3) % 6 : (i * 7 + round * 11) % DISTINCT);
      for (let at = 0; at < order.length; at += 8) {
        const batch = order.slice(at, at + 8);
        const replies = await Promise.all(batch.map((i, k) => ask(`x${i}`, `cycle-${at + k}`)));
        for (const [k, i] of batch.entries()) {
          t.is(replies[k].status, "ok");
          t.is(replies[k].text, alone.get(`x${i}`), `x${i} (request ${at + k}) answered as alone`);
        }
      }
      // A name linked to the same file is its own registered adapter: same answer as its file's.
      t.is((await ask("x57", "linked")).text, alone.get("x7"));
      const st = ctx.slots!.stats();
      t.true(st.hits.warm > 0, `promotions from warm happened (${st.hits.warm})`);
      t.true(st.hits.cold > DISTINCT, "warm evictions sent some adapters back to their files");
      t.true(st.evictions > 0 && st.warm!.evictions > 0);
      t.true(st.warm!.usedBytes <= st.warm!.budgetBytes, "warm stays within its budget");
      t.true(st.promotions.warm.count >= st.hits.warm && st.promotions.warm.p50_ms !== null);
      // What bridge/metrics and bridge/info publish.
      const metrics = new Metrics(ctx).snapshot() as { adapters: { registered: number; tier_hit_ratio: number; tiers: typeof st } };
      t.is(metrics.adapters.registered, REGISTERED);
      t.true(metrics.adapters.tier_hit_ratio > 0 && metrics.adapters.tier_hit_ratio < 1);
      t.like(metrics.adapters.tiers.warm, { backend: "memory", budgetBytes: Math.floor(0.4 * 1024 * 1024) });
      t.true(metrics.adapters.tiers.promotions.cold.p99_ms! >= metrics.adapters.tiers.promotions.cold.p50_ms!);
      const info = bridgeInfo(ctx) as { adapters: { tiers: { warm: { backend: string; budget_mb: number; policy: string }; hot: { slots: number } } } };
      t.like(info.adapters.tiers, { hot: { slots: 4 }, warm: { backend: "memory", budget_mb: 0.4, policy: "lfu" } });
    } finally {
      await client.endAsync(true);
      await daemon.stop();
    }
  });
}

test.serial("10,000 registered adapters: the daemon starts, serves and counts them all", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const files = join(await adapters(), "..", "files");
  const dir = mkdtempSync(join(tmpdir(), "edgelora-tiers-10k-"));
  for (let i = 0; i < 10_000; i++) symlinkSync(join(files, `f${(i % 10) * 5}.gguf`), join(dir, `z${i}.gguf`));
  const daemon = await startRealDaemon(await tiersConfig("q8", (c) => (c.adapters.directory = dir)));
  const client = await connectAsync(`mqtt://127.0.0.1:${daemon.controller.brokerPort}`, { username: "u", password: "u", reconnectPeriod: 0 });
  try {
    const ctx = daemon.controller.context;
    t.is(ctx.registry.size, 10_000);
    const inbox = new Inbox(client);
    await client.subscribeAsync("edgelora/u/response", { qos: 1 });
    await client.publishAsync("edgelora/u/request", body("z9999", "last"), { qos: 1 });
    t.is((await inbox.reply("last")).status, "ok");
    t.is(ctx.slots!.tier("z9999"), "hot");
    t.is(ctx.slots!.tier("z5000"), "cold");
    const metrics = new Metrics(ctx).snapshot() as { adapters: { registered: number } };
    t.is(metrics.adapters.registered, 10_000);
  } finally {
    await client.endAsync(true);
    await daemon.stop();
  }
});
