import test from "ava";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collect, sleep, until } from "../helpers/broker.js";
import { startDaemon } from "../helpers/daemon.js";
import { FakeEngine } from "../helpers/fake-engine.js";
import { PATTERNS } from "../../src/leds/status.js";

test("retained state/info; graceful shutdown drains, refuses new work and publishes offline", async (t) => {
  const engine = new FakeEngine({ nCtx: 4096 });
  engine.model = () => 2 + 5; // never EOS: runs until the grace period ends
  engine.beforeStep = async () => {
    await sleep(5);
  };
  const d = await startDaemon({ engine, edit: (c) => (c.scheduler.max_tokens_limit = 4000) });
  const admin = await d.connect("admin", "secret");
  const state = await collect(admin, "edgelora/bridge/state");
  const info = await collect(admin, "edgelora/bridge/info");
  t.deepEqual((await state.next(1)).json, { state: "online" });
  const i = await info.next(1);
  t.true(i.retain);
  t.deepEqual(i.json.tenants, ["alice", "bob"]);
  t.is(i.json.adapters.registered, 3);
  t.is(i.json.adapters.pool_type, "f16");
  t.is(i.json.kernel_path, "scalar");

  const bob = await d.connect("bob", "bob");
  const responses = await collect(bob, "edgelora/bob/response");
  await bob.publishAsync("edgelora/bob/request", JSON.stringify({ prompt: "go", max_tokens: 4000, transaction: "long" }), { qos: 1 });
  await until(() => JSON.stringify(d.led.current) === JSON.stringify(PATTERNS.busy), "the busy LED pattern");
  t.deepEqual(d.led.current, PATTERNS.busy);
  const stopped = d.controller.stop();
  await bob.publishAsync("edgelora/bob/request", JSON.stringify({ prompt: "late", transaction: "late" }), { qos: 1 });
  const replies = [(await responses.next(1)).json, (await responses.next(2)).json];
  const late = replies.find((r) => r.transaction === "late");
  const long = replies.find((r) => r.transaction === "long");
  t.is(late.error.code, "SHUTTING_DOWN");
  t.is(long.finish_reason, "cancelled", "the running request ended at the grace deadline, with a reply");
  await stopped;
  t.deepEqual((await state.next(2)).json, { state: "offline" });
  t.true(d.led.closed);
  await d.close();
});

test("admin ops: list, register, remove, tenants, health; tenants cannot use them", async (t) => {
  const d = await startDaemon();
  try {
    const admin = await d.connect("admin", "secret");
    const res = await collect(admin, "edgelora/bridge/response/#");
    const call = async (op: string, body: unknown) => {
      await admin.publishAsync(`edgelora/bridge/request/${op}`, JSON.stringify(body), { qos: 1 });
      const m = await res.next();
      t.is(m.topic, `edgelora/bridge/response/${op}`);
      return m.json;
    };
    t.deepEqual((await call("adapters/list", {})).data.adapters.map((a: { name: string }) => a.name), ["chef", "pirate", "poet"]);
    const page = (await call("adapters/list", { offset: 1, limit: 1 })).data;
    t.like(page, { total: 3, offset: 1, limit: 1 });
    t.deepEqual(page.adapters.map((a: { name: string; tier: string }) => `${a.name}:${a.tier}`), ["pirate:cold"]);
    t.is((await call("adapters/list", { limit: -1 })).error.code, "BAD_REQUEST");
    const file = join(mkdtempSync(join(tmpdir(), "edgelora-adm-")), "new.gguf");
    writeFileSync(file, "x");
    t.is((await call("adapters/register", { name: "sailor", path: file, transaction: 7 })).transaction, 7);
    t.is((await call("adapters/register", { name: "x", path: "/nonexistent" })).error.code, "BAD_REQUEST");
    t.is((await call("adapters/remove", { name: "chef" })).status, "ok");
    t.is((await call("adapters/remove", { name: "chef" })).error.code, "ADAPTER_NOT_FOUND");
    t.deepEqual((await call("adapters/list", {})).data.adapters.map((a: { name: string }) => a.name), ["pirate", "poet", "sailor"]);
    t.deepEqual((await call("tenants/list", {})).data.map((x: { name: string }) => x.name), ["alice", "bob"]);
    const health = (await call("health", {})).data;
    t.true(health.healthy);
    t.is((await call("reboot", {})).error.code, "BAD_REQUEST");

    const bob = await d.connect("bob", "bob");
    const closed = new Promise<void>((resolve) => bob.once("close", () => resolve()));
    bob.publish("edgelora/bridge/request/adapters/remove", JSON.stringify({ name: "pirate" }));
    await closed;
    await sleep(50);
    t.true(d.controller.context.registry.has("pirate"));
  } finally {
    await d.close();
  }
});

test("a model that fails to load: requests get INTERNAL, LED blinks model-failed, state says why", async (t) => {
  const d = await startDaemon({ openEngine: async () => Promise.reject(new Error("bad magic")) });
  try {
    t.deepEqual(d.led.current, PATTERNS.modelFailed);
    const alice = await d.connect("alice", "alice");
    const state = await collect(await d.connect("admin", "secret"), "edgelora/bridge/state");
    t.deepEqual((await state.next(1)).json, { state: "offline", error: "bad magic" });
    const responses = await collect(alice, "edgelora/alice/response");
    await alice.publishAsync("edgelora/alice/request", JSON.stringify({ prompt: "hi", transaction: "a" }), { qos: 1 });
    const r = (await responses.next(1)).json;
    t.deepEqual([r.transaction, r.error.code], ["a", "INTERNAL"]);
  } finally {
    await d.close();
  }
});
