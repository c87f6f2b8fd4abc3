// Three boards (in this process, the native engine) on one Mosquitto with shared subscriptions:
// per-board retained state and the fleet aggregate, requests spread over the boards, adapter
// affinity (every request for an adapter runs on the board that holds it, as the step logs show),
// fleet-wide dedupe and cancel.
import test from "ava";
import { connectAsync, type MqttClient } from "mqtt";
import { collect, sleep, until } from "../helpers/broker.js";
import { MOSQUITTO_MISSING } from "../helpers/mosquitto.js";
import { FinalCounter } from "./child-daemon.js";
import type { Config } from "../../src/config/index.js";
import { boardConfig } from "./fleet-boards.js";
import { startRealDaemon, TENANTS, type RealDaemon } from "./harness.js";
import { mosquittoReady, mosquittoWithUsers } from "./mosquitto-broker.js";

if (!mosquittoReady) test("fleet", (t) => (t.log(MOSQUITTO_MISSING), t.pass()));
const maybe = mosquittoReady ? test.serial : test.serial.skip;

maybe("three boards: own retained state, spread, affinity forwarding, fleet-wide dedupe and cancel", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", "admin", ...TENANTS]);
  const boards: RealDaemon[] = [];
  const clients: MqttClient[] = [];
  const connect = async (user: string) => {
    const c = await connectAsync(m.url, { username: user, password: user, protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  };
  try {
    const long = (c: Config) => Object.assign(c.model, { n_ctx: 2048 }) && Object.assign(c.scheduler, { max_tokens_limit: 2000 });
    for (const b of ["b0", "b1", "b2"]) boards.push(await startRealDaemon(await boardConfig(m, b, long)));
    const admin = await connect("admin");
    const states = await collect(admin, "edgelora/bridge/+/state");
    await until(() => new Set(states.got.map((s) => s.topic)).size === 3, "three board states");
    for (const b of ["b0", "b1", "b2"]) t.deepEqual(states.got.find((s) => s.topic === `edgelora/bridge/${b}/state`)!.json, { state: "online", board: b });
    const aggregate = await collect(admin, "edgelora/bridge/state");
    t.deepEqual((await aggregate.next(1)).json, { state: "online" });
    const adverts = await collect(admin, "edgelora/bridge/+/adapters");

    // Spread: base-model requests (no affinity) go round the boards.
    const t0 = await connect("t0");
    const r0 = new FinalCounter(t0);
    await t0.subscribeAsync("edgelora/t0/response", { qos: 1 });
    const spread = Array.from({ length: 9 }, (_, i) => `spread-${i}`);
    for (const tr of spread) await t0.publishAsync("edgelora/t0/request", JSON.stringify({ prompt: "Once upon a time", adapter: null, transaction: tr, max_tokens: 8, temperature: 0 }), { qos: 1 });
    await r0.all(spread, 60_000);
    const ran = boards.map((b) => b.steps.length > 0);
    t.log(`base-model requests: steps on ${ran.filter(Boolean).length} of 3 boards`);
    t.true(ran.filter(Boolean).length >= 2, "requests spread over the boards");

    // Affinity: once one board holds a3, every request for a3 runs there.
    const t3 = await connect("t3");
    const r3 = new FinalCounter(t3);
    await t3.subscribeAsync("edgelora/t3/response", { qos: 1 });
    const ask = async (tr: string) => {
      await t3.publishAsync("edgelora/t3/request", JSON.stringify({ prompt: "Once upon a time", transaction: tr, max_tokens: 8, temperature: 0 }), { qos: 1 });
      await r3.all([tr], 60_000);
    };
    await ask("warm");
    const holder = boards.findIndex((b) => b.controller.context.slots!.resident().some((r) => r.name === "a3"));
    t.true(holder >= 0);
    await until(() => adverts.got.some((a) => a.json?.board === `b${holder}` && a.json.hot.includes("a3")), "the holder advertises a3");
    for (const b of boards) b.steps.length = 0;
    const affine = Array.from({ length: 6 }, (_, i) => `affine-${i}`);
    for (const tr of affine) await ask(tr);
    const withA3 = boards.map((b) => b.steps.filter((s) => s.adapters.includes("a3")).length);
    t.log(`steps with a3 per board: ${JSON.stringify(withA3)} (holder b${holder})`);
    t.true(withA3.every((n, i) => (i === holder ? n > 0 : n === 0)), "a3 ran only on the board holding it");
    t.true(boards.every((b, i) => i === holder || !b.controller.context.slots!.resident().some((r) => r.name === "a3")), "no other board loaded a3");
    t.true(affine.every((tr) => r3.finals.get(tr)!.length === 1 && r3.finals.get(tr)![0].status === "ok"));

    // Fleet-wide dedupe and cancel: a long streamed request, then a copy of it and a cancel, each of
    // which the broker may hand to any board.
    const t5 = await connect("t5");
    const r5 = new FinalCounter(t5);
    const chunks = await collect(t5, "edgelora/t5/response");
    const request = JSON.stringify({ prompt: "Once upon a time", transaction: "long", stream: true, max_tokens: 2000, temperature: 0 });
    await t5.publishAsync("edgelora/t5/request", request, { qos: 1 });
    await until(() => chunks.got.length > 0, "the first chunk");
    await sleep(50); // the ledger entry reaches every board
    for (let i = 0; i < 3; i++) await t5.publishAsync("edgelora/t5/request", request, { qos: 1 });
    await t5.publishAsync("edgelora/t5/request", JSON.stringify({ transaction: "long", cancel: true }), { qos: 1 });
    await r5.all(["long"], 60_000);
    await sleep(500);
    const finals = r5.finals.get("long")!;
    t.log(JSON.stringify(finals.map((f) => [f.status, f.finish_reason, f.error])));
    t.is(finals.length, 1, "the copies were dropped on every board");
    t.is(finals[0].finish_reason, "cancelled");
    t.true((finals[0].usage as { completion_tokens: number }).completion_tokens < 2000);
    t.is(boards.filter((b) => b.steps.some((s) => s.adapters.includes("a5"))).length, 1, "one board ran it");
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    for (const b of boards) await b.stop();
    await m.stop();
  }
});
