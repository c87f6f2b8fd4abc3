// "adapter": "auto" through the whole daemon on the real engine (stories260K): admin training,
// the reply's router fields, the tenant's allow-list, fallbacks, and the state across a restart.
import test from "ava";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectAsync, type MqttClient } from "mqtt";
import type { Config } from "../../src/config/index.js";
import { Inbox, startRealDaemon, type RealDaemon } from "../e2e/harness.js";
import { storiesPath } from "../helpers/engine.js";
import { routerConfig, topicPrompt, topicPrompts, writeTopicAdapters } from "../helpers/router.js";

const model = storiesPath();

interface Session {
  daemon: RealDaemon;
  ask(tenant: string, body: Record<string, unknown>): Promise<Record<string, any>>;
  admin(op: string, body: unknown): Promise<Record<string, any>>;
  close(): Promise<void>;
}

async function session(config: Config): Promise<Session> {
  const daemon = await startRealDaemon(config);
  const url = `mqtt://127.0.0.1:${daemon.controller.brokerPort}`;
  const clients: MqttClient[] = [];
  const inboxes = new Map<string, Inbox>();
  const client = async (user: string) => {
    const c = await connectAsync(url, { username: user, password: user, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  };
  for (const tenant of Object.keys(config.tenants)) {
    const c = await client(tenant);
    inboxes.set(tenant, new Inbox(c));
    await c.subscribeAsync(`edgelora/${tenant}/response`, { qos: 1 });
  }
  const admin = await client("admin");
  const adminInbox = new Inbox(admin);
  await admin.subscribeAsync("edgelora/bridge/response/#", { qos: 1 });
  let n = 0;
  return {
    daemon,
    async ask(tenant, body) {
      const transaction = `r${n++}`;
      const c = clients[[...inboxes.keys()].indexOf(tenant)];
      await c.publishAsync(`edgelora/${tenant}/request`, JSON.stringify({ max_tokens: 4, temperature: 0, ...body, transaction }), { qos: 1 });
      return (await inboxes.get(tenant)!.reply(transaction)) as Record<string, any>;
    },
    async admin(op, body) {
      const transaction = `a${n++}`;
      await admin.publishAsync(`edgelora/bridge/request/${op}`, JSON.stringify({ ...(body as object), transaction }), { qos: 1 });
      return (await adminInbox.reply(transaction)) as Record<string, any>;
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true)));
      await daemon.stop();
    },
  };
}

async function assets() {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-router-daemon-"));
  return { dir, adapters: await writeTopicAdapters(model!, dir) };
}

test("auto before any training falls back to the default adapter, or the base model", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const { adapters } = await assets();
  const s = await session(await routerConfig(model, adapters));
  try {
    const a = await s.ask("alice", { prompt: topicPrompt("castle", 1), adapter: "auto" });
    t.is(a.status, "ok", JSON.stringify(a.error));
    t.is(a.adapter, "dog");
    t.deepEqual(a.router.candidates, []);
    t.regex(a.router.chosen_because, /fallback to the default adapter dog: the router is not trained/);
    // bob's default is "auto" itself: the base model.
    const b = await s.ask("bob", { prompt: topicPrompt("castle", 1) });
    t.is(b.status, "ok");
    t.is(b.adapter, null);
    t.regex(b.router.chosen_because, /fallback to the base model/);
    // A named adapter gets no router field.
    const named = await s.ask("alice", { prompt: "Once upon a time", adapter: "castle" });
    t.is(named.adapter, "castle");
    t.false("router" in named);
  } finally {
    await s.close();
  }
});

test("admin training, routed replies with the router's view, the allow-list, and a restart", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const { adapters } = await assets();
  const config = await routerConfig(model, adapters);
  const s = await session(config);
  try {
    // Bad training input: BAD_REQUEST, nothing learned.
    for (const bad of [
      { adapter: "nope", prompts: ["x"] },
      { adapter: "dog", prompts: [] },
      { adapter: "dog", prompts: ["ok", ""] },
      { adapter: "dog", prompts: "just a string" },
      { prompts: ["x"] },
    ]) {
      const r = await s.admin("router/train", bad);
      t.is(r.status, "error", JSON.stringify(bad));
      t.is(r.error.code, "BAD_REQUEST", JSON.stringify(bad));
    }
    t.false((await s.admin("router/status", {})).data.trained);

    for (const topic of ["dog", "castle", "sea"] as const) {
      const r = await s.admin("router/train", { adapter: topic, prompts: topicPrompts(topic, 0, 8) });
      t.is(r.status, "ok", JSON.stringify(r.error));
      t.is(r.data.added, 8);
    }
    const status = (await s.admin("router/status", {})).data;
    t.true(status.trained);
    t.deepEqual(status.adapters, ["castle", "dog", "sea"]);

    // bob may use everything: clearly separated prompts go to their topic.
    for (const topic of ["dog", "castle", "sea"] as const) {
      const r = await s.ask("bob", { prompt: topicPrompt(topic, 77), adapter: "auto" });
      t.is(r.status, "ok", JSON.stringify(r.error));
      t.is(r.adapter, topic, r.router?.chosen_because);
      t.is(r.router.candidates[0].adapter, topic);
      t.is(r.router.candidates.length, 3);
      for (const c of r.router.candidates) {
        t.true(typeof c.score === "number" && c.score >= 0 && c.score <= 1);
        t.true(["hot", "warm", "cold"].includes(c.tier));
      }
      t.regex(r.router.chosen_because, /highest score/);
      t.true(typeof r.router.ms === "number" && r.router.ms >= 0);
    }
    // Routed requests from several tenants at once (the router's context is its own).
    const together = await Promise.all(
      (["dog", "castle", "sea", "dog", "castle", "sea"] as const).map((topic, i) => s.ask("bob", { prompt: topicPrompt(topic, 120 + i), adapter: "auto" })),
    );
    t.deepEqual(together.map((r) => r.adapter), ["dog", "castle", "sea", "dog", "castle", "sea"]);
    // The adapter just used is resident: its tier says so.
    const again = await s.ask("bob", { prompt: topicPrompt("sea", 78), adapter: "auto" });
    t.is(again.router.candidates.find((c: { adapter: string }) => c.adapter === "sea").tier, "hot");

    // Never an adapter the tenant may not use: carol has only sea, alice has no sea.
    const carol = await s.ask("carol", { prompt: topicPrompt("dog", 5) });
    t.is(carol.adapter, "sea");
    t.deepEqual(carol.router.candidates.map((c: { adapter: string }) => c.adapter), ["sea"]);
    const alice = await s.ask("alice", { prompt: topicPrompt("sea", 5), adapter: "auto" });
    t.true(["dog", "castle"].includes(alice.adapter));
    t.false(alice.router.candidates.some((c: { adapter: string }) => c.adapter === "sea"));
  } finally {
    await s.close();
  }

  // Restart on the same data dir: trained without any new training.
  const s2 = await session(config);
  try {
    t.true((await s2.admin("router/status", {})).data.trained);
    const r = await s2.ask("bob", { prompt: topicPrompt("castle", 91), adapter: "auto" });
    t.is(r.adapter, "castle");
    // router/profile: bad input is BAD_REQUEST; a good call scores the sample prompts.
    t.is((await s2.admin("router/profile", { adapters: ["nope"] })).error.code, "BAD_REQUEST");
    t.regex((await s2.admin("router/profile", {})).error.message, /nothing to profile/);
    t.is((await s2.admin("router/profile", { adapters: ["sea"], prompts: [] })).error.code, "BAD_REQUEST");
    const p = await s2.admin("router/profile", { adapters: ["sea"], prompts: topicPrompts("sea", 30, 4) });
    t.is(p.status, "ok", JSON.stringify(p.error));
    t.is(p.data.prompts, 4);
    t.deepEqual([...p.data.candidates].sort(), ["castle", "dog", "sea"]);
  } finally {
    await s2.close();
  }
});

test("a damaged router.json never stops the daemon: unreadable is moved aside (untrained), a broken classifier is retrained from the stored examples", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const { adapters } = await assets();
  const config = await routerConfig(model, adapters);
  const stateFile = join(config.daemon.data_dir, "router.json");
  mkdirSync(config.daemon.data_dir, { recursive: true });

  // Not JSON at all: the daemon starts untrained, "auto" falls back, the file is kept aside.
  writeFileSync(stateFile, "{ this is not json");
  const s = await session(config);
  try {
    t.false((await s.admin("router/status", {})).data.trained);
    const r = await s.ask("alice", { prompt: topicPrompt("castle", 1), adapter: "auto" });
    t.is(r.status, "ok", JSON.stringify(r.error));
    t.regex(r.router.chosen_because, /fallback/);
    t.true(readdirSync(config.daemon.data_dir).some((f) => f.startsWith("router.json.corrupt-")));
    for (const topic of ["dog", "castle", "sea"] as const) {
      t.is((await s.admin("router/train", { adapter: topic, prompts: topicPrompts(topic, 0, 8) })).status, "ok");
    }
  } finally {
    await s.close();
  }

  // Valid JSON whose classifier does not fit together: retrained from the examples kept beside it.
  const state = JSON.parse(readFileSync(stateFile, "utf8")) as { classifier: { weights: number[][] } };
  state.classifier.weights = [[1, 2, 3]];
  writeFileSync(stateFile, JSON.stringify(state));
  const s2 = await session(config);
  try {
    t.true((await s2.admin("router/status", {})).data.trained);
    const r = await s2.ask("bob", { prompt: topicPrompt("sea", 77), adapter: "auto" });
    t.is(r.status, "ok", JSON.stringify(r.error));
    t.is(r.adapter, "sea", r.router?.chosen_because);
  } finally {
    await s2.close();
  }
});
