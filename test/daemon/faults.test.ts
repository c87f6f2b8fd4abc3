// Faults on one board (embedded broker, FakeEngine): a slow start, a corrupt adapter state file, a
// full disk, an adapter file deleted while registered, and a flood of requests.
import test from "ava";
import { existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, connectAsync, type MqttClient } from "mqtt";
import { loadConfig } from "../../src/config/index.js";
import { Controller } from "../../src/daemon/controller.js";
import { hashPassword } from "../../src/mqtt/password.js";
import { collect, quietLogger, sleep, until } from "../helpers/broker.js";
import { startDaemon } from "../helpers/daemon.js";
import { FakeEngine } from "../helpers/fake-engine.js";

const FAST = { N: 1024, r: 8, p: 1 };

test("slow start: tenants are refused with CONNACK 3 (server unavailable) until requests are served; the first request is answered", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-slow-"));
  const config = loadConfig({ env: {} });
  config.daemon.data_dir = dir;
  config.mqtt.port = 0;
  config.metrics.interval_s = 0;
  config.tenants = { alice: { password_hash: await hashPassword("alice", FAST), adapters: [], default_adapter: null } };
  let release!: () => void;
  const loaded = new Promise<void>((resolve) => (release = resolve));
  const controller = new Controller({
    config,
    logger: quietLogger,
    modelPath: join(dir, "model.gguf"),
    // The model takes as long as the test wants: the broker already listens meanwhile.
    openEngine: async () => (await loaded, new FakeEngine()),
    env: {},
  });
  const started = controller.start();
  const clients: MqttClient[] = [];
  try {
    await until(() => {
      try {
        return controller.brokerPort !== null && controller.brokerPort > 0;
      } catch {
        return false;
      }
    }, "the broker listening");
    const url = `mqtt://127.0.0.1:${controller.brokerPort}`;
    const refused = await t.throwsAsync(connectAsync(url, { username: "alice", password: "alice", reconnectPeriod: 0 }));
    t.is((refused as Error & { code?: number }).code, 3, `refused as server unavailable: ${refused?.message}`);

    // A client that retries (mqtt.js: reconnectOnConnackError) gets in once the daemon serves, and
    // its first request is answered.
    const alice = connect(url, { username: "alice", password: "alice", reconnectPeriod: 50, reconnectOnConnackError: true });
    clients.push(alice);
    const refusals: number[] = [];
    alice.on("error", (e) => refusals.push((e as Error & { code: number }).code));
    await until(() => refusals.length > 0, "the retrying client refused");
    release();
    await new Promise<void>((resolve) => alice.once("connect", () => resolve()));
    t.true(refusals.every((c) => c === 3));
    await started;
    const responses = await collect(alice, "edgelora/alice/response");
    await alice.publishAsync("edgelora/alice/request", JSON.stringify({ prompt: "hello", transaction: "first", max_tokens: 3 }), { qos: 1 });
    t.is((await responses.next(1)).json.transaction, "first");
  } finally {
    release();
    await started.catch(() => undefined);
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await controller.stop();
  }
});

test("a corrupt adapters.json is moved aside; the daemon starts with the configured adapters and registers again", async (t) => {
  let dataDir = "";
  const d = await startDaemon({
    edit: (c) => {
      dataDir = c.daemon.data_dir;
      writeFileSync(join(dataDir, "adapters.json"), '{"registered": {"x": ');
    },
  });
  try {
    t.false(existsSync(join(dataDir, "adapters.json")));
    t.is(readdirSync(dataDir).filter((f) => f.startsWith("adapters.json.corrupt-")).length, 1);
    t.true(d.controller.context.registry.has("pirate"));
    const admin = await d.connect("admin", "secret");
    const res = await collect(admin, "edgelora/bridge/response/#");
    const file = join(dataDir, "pirate.gguf");
    await admin.publishAsync("edgelora/bridge/request/adapters/register", JSON.stringify({ name: "again", path: file }), { qos: 1 });
    t.is((await res.next(1)).json.status, "ok");
    t.deepEqual(JSON.parse(readFileSync(join(dataDir, "adapters.json"), "utf8")).registered, { again: file });
  } finally {
    await d.close();
  }
});

test("disk full: an admin change that cannot be saved is refused with the reason and not applied; requests are still served without the journal", async (t) => {
  let dataDir = "";
  const d = await startDaemon({
    edit: (c) => {
      dataDir = c.daemon.data_dir;
      // Every write through these names fails with ENOSPC.
      symlinkSync("/dev/full", join(dataDir, "adapters.json.tmp"));
      symlinkSync("/dev/full", join(dataDir, "requests.journal.tmp"));
    },
  });
  try {
    const admin = await d.connect("admin", "secret");
    const res = await collect(admin, "edgelora/bridge/response/#");
    await admin.publishAsync("edgelora/bridge/request/adapters/register", JSON.stringify({ name: "new", path: join(dataDir, "chef.gguf") }), { qos: 1 });
    const r = (await res.next(1)).json;
    t.is(r.status, "error");
    t.is(r.error.code, "INTERNAL");
    t.regex(r.error.message, /could not save .*adapters\.json.*(ENOSPC|no space)/i);
    t.false(d.controller.context.registry.has("new"), "not registered in memory either");

    const bob = await d.connect("bob", "bob");
    const replies = await collect(bob, "edgelora/bob/response");
    await bob.publishAsync("edgelora/bob/request", JSON.stringify({ prompt: "hello", transaction: "j1", max_tokens: 3 }), { qos: 1 });
    t.is((await replies.next(1)).json.status, "ok", "served although the journal cannot be written");
  } finally {
    await d.close();
  }
});

test("an adapter file deleted while registered: ADAPTER_INVALID, and the daemon keeps serving", async (t) => {
  const engine = new FakeEngine();
  const d = await startDaemon({ engine });
  try {
    const path = d.config.adapters.entries.poet;
    unlinkSync(path);
    engine.failLoadPaths.add(path); // what the native engine does with a missing file
    const alice = await d.connect("alice", "alice");
    const replies = await collect(alice, "edgelora/alice/response");
    await alice.publishAsync("edgelora/alice/request", JSON.stringify({ prompt: "hi", adapter: "poet", transaction: "p" }), { qos: 1 });
    const r = (await replies.next(1)).json;
    t.is(r.error.code, "ADAPTER_INVALID");
    t.regex(r.error.message, /poet.*unreadable: ENOENT/);
    await alice.publishAsync("edgelora/alice/request", JSON.stringify({ prompt: "hi", adapter: "pirate", transaction: "q", max_tokens: 3 }), { qos: 1 });
    t.is((await replies.next(2)).json.status, "ok");
  } finally {
    await d.close();
  }
});

test("a flood: every request is answered, ok or OVERLOADED, and memory stays bounded", async (t) => {
  const engine = new FakeEngine({ nCtx: 256 });
  engine.beforeStep = async () => void (await sleep(2));
  const d = await startDaemon({ engine, edit: (c) => Object.assign(c.scheduler, { max_queue: 32, per_tenant_queue: 16 }) });
  try {
    const bob = await d.connect("bob", "bob");
    const replies = await collect(bob, "edgelora/bob/response");
    const N = 3000;
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < N; i++) bob.publish("edgelora/bob/request", JSON.stringify({ prompt: "hello", transaction: `f${i}`, max_tokens: 4 }), { qos: 0 });
    await replies.next(N, 120_000);
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    const codes = new Map<string, number>();
    for (const m of replies.got) codes.set(m.json.error?.code ?? "ok", (codes.get(m.json.error?.code ?? "ok") ?? 0) + 1);
    t.log(`replies: ${JSON.stringify(Object.fromEntries(codes))}, RSS growth ${(rssGrowth / 2 ** 20).toFixed(1)} MiB`);
    t.is(new Set(replies.got.map((m) => m.json.transaction)).size, N, "each request answered once");
    t.deepEqual([...codes.keys()].sort(), ["OVERLOADED", "ok"]);
    t.true(rssGrowth < 200 * 2 ** 20, "RSS grew by less than 200 MiB for 3000 requests");
    await sleep(100);
    t.is(replies.got.length, N, "no second answer");
  } finally {
    await d.close();
  }
});
