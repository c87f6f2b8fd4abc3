// config/mosquitto/{acl,passwd.example} through a real mosquitto, and the daemon on an external
// MQTT 5 broker: response topic + correlation data.
import test from "ava";
import { fileURLToPath } from "node:url";
import { connectAsync, type IClientOptions } from "mqtt";
import type { Config } from "../../src/config/index.js";
import { collect, sleep } from "../helpers/broker.js";
import { startDaemon } from "../helpers/daemon.js";
import { FakeEngine, scriptedModel } from "../helpers/fake-engine.js";
import { MOSQUITTO_MISSING, mosquittoBinary, startMosquitto, useMosquitto, type Mosquitto } from "../helpers/mosquitto.js";

const file = (p: string) => fileURLToPath(new URL(`../../../config/mosquitto/${p}`, import.meta.url));
const maybe = mosquittoBinary ? test.serial : test.serial.skip;
if (!mosquittoBinary) {
  test("mosquitto tests", (t) => {
    t.log(MOSQUITTO_MISSING);
    t.pass();
  });
}

async function withMosquitto(fn: (m: Mosquitto, connect: (u: string, o?: IClientOptions) => ReturnType<typeof connectAsync>) => Promise<void>) {
  const m = (await startMosquitto({ acl: file("acl"), passwd: file("passwd.example") }))!;
  const clients: Awaited<ReturnType<typeof connectAsync>>[] = [];
  try {
    await fn(m, async (u, o = {}) => {
      const c = await connectAsync(m.url, { username: u, password: u, protocolVersion: 5, reconnectPeriod: 0, ...o });
      clients.push(c);
      return c;
    });
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await m.stop();
  }
}

maybe("config/mosquitto ACL: same rules as the embedded broker", async (t) => {
  await withMosquitto(async (m, connect) => {
    await t.throwsAsync(connectAsync(m.url, { username: "alice", password: "wrong", reconnectPeriod: 0 }));
    const daemon = await connect("edgelora");
    const requests = await collect(daemon, "edgelora/+/request");
    const alice = await connect("alice");
    const bob = await connect("bob");
    // Mosquitto grants the subscription but never delivers what the ACL forbids.
    const spy = await collect(bob, "edgelora/alice/response");
    const own = await collect(bob, "edgelora/bob/#");
    // MQTT 5: a refused publish gets a negative PUBACK (0x87 Not authorized).
    await t.throwsAsync(bob.publishAsync("edgelora/alice/request", "forged", { qos: 1 }), { message: /Not authorized/ });
    await alice.publishAsync("edgelora/alice/request", "real", { qos: 1 });
    await daemon.publishAsync("edgelora/alice/response", "for alice", { qos: 1 });
    await daemon.publishAsync("edgelora/bob/response", "for bob", { qos: 1 });
    await own.next(1);
    await requests.next(1); // another connection's delivery: it may come after bob's
    await sleep(100);
    t.deepEqual(requests.got.map((r) => r.payload), ["real"]);
    t.deepEqual(spy.got, []);
    const admin = await connect("admin");
    const bridge = await collect(admin, "edgelora/bridge/response/#");
    await admin.publishAsync("edgelora/bridge/request/health", "{}", { qos: 1 });
    await t.throwsAsync(admin.publishAsync("edgelora/alice/request", "x", { qos: 1 }), { message: /Not authorized/ });
    await daemon.publishAsync("edgelora/bridge/response/health", "ok", { qos: 1 });
    await bridge.next(1);
    await sleep(100);
    t.is(requests.got.length, 1);
    t.is(bridge.got.length, 1);
    // The observer reads bridge/# and publishes nothing.
    const observer = await connect("observer");
    const seen = await collect(observer, "edgelora/bridge/#");
    const notSeen = await collect(observer, "edgelora/alice/#");
    await t.throwsAsync(observer.publishAsync("edgelora/bridge/request/health", "{}", { qos: 1 }), { message: /Not authorized/ });
    await daemon.publishAsync("edgelora/bridge/kitchen/state", '{"state":"online"}', { qos: 1 });
    await daemon.publishAsync("edgelora/alice/response", "private", { qos: 1 });
    await seen.next(1);
    await sleep(100);
    t.deepEqual(notSeen.got, []);
  });
});

maybe("daemon on external MQTT 5 broker: response topic + correlation data", async (t) => {
  await withMosquitto(async (m, connect) => {
    const engine = new FakeEngine();
    engine.model = scriptedModel(engine, { "hello": " world" });
    const d = await startDaemon({
      engine,
      edit: (c) => {
        useMosquitto(c, m);
        c.mqtt.shared_subscription = true;
      },
    });
    try {
      const alice = await connect("alice");
      const inbox = await collect(alice, "edgelora/alice/nodered");
      const correlationData = Buffer.from("corr-1");
      await alice.publishAsync("edgelora/alice/request", JSON.stringify({ prompt: "hello", transaction: "m5" }), {
        qos: 1,
        properties: { responseTopic: "edgelora/alice/nodered", correlationData },
      });
      const r = await inbox.next(1);
      t.is(r.json.transaction, "m5");
      t.is(r.json.text, " world");
      t.deepEqual(Buffer.from(r.properties.correlationData), correlationData);
      // A response topic outside the tenant's namespace is refused, answered on the default topic.
      const responses = await collect(alice, "edgelora/alice/response");
      await alice.publishAsync("edgelora/alice/request", JSON.stringify({ prompt: "hello", transaction: "m6" }), {
        qos: 1,
        properties: { responseTopic: "edgelora/bob/response" },
      });
      t.is((await responses.next(1)).json.error.code, "BAD_REQUEST");
    } finally {
      await d.close();
    }
  });
});

maybe("a fleet board whose model failed to load takes no share of the requests: the healthy board answers them all", async (t) => {
  await withMosquitto(async (m, connect) => {
    const external = (board: string) => (c: Config) => {
      Object.assign(c.mqtt, { embedded: false, url: m.url, username: "edgelora", password: "edgelora", shared_subscription: true, client_id: `fleet-${board}` });
      c.daemon.board_id = board;
    };
    const broken = await startDaemon({ openEngine: async () => Promise.reject(new Error("bad magic")), edit: external("broken") });
    const healthy = await startDaemon({ edit: external("healthy") });
    try {
      const bob = await connect("bob");
      const replies = await collect(bob, "edgelora/bob/response");
      for (let i = 0; i < 6; i++) await bob.publishAsync("edgelora/bob/request", JSON.stringify({ prompt: "hello", transaction: `u${i}`, max_tokens: 2 }), { qos: 1 });
      await replies.next(6);
      t.true(replies.got.every((r) => r.json.status === "ok"), JSON.stringify(replies.got.map((r) => r.json.error)));
    } finally {
      await healthy.close();
      await broken.close();
    }
  });
});

maybe("a serving board sets the fleet aggregate online again when it reads offline there (a dead peer's aggregate will, come after its board will)", async (t) => {
  await withMosquitto(async (m, connect) => {
    const d = await startDaemon({ edit: (c) => useMosquitto(c, m) });
    try {
      const admin = await connect("admin");
      const aggregate = await collect(admin, "edgelora/bridge/state");
      t.deepEqual((await aggregate.next(1)).json, { state: "online" });
      // What the broker publishes for a peer killed after this board had answered its board will.
      const will = await connect("edgelora");
      await will.publishAsync("edgelora/bridge/state", JSON.stringify({ state: "offline" }), { qos: 1, retain: true });
      t.deepEqual((await aggregate.next(2)).json, { state: "offline" });
      t.deepEqual((await aggregate.next(3)).json, { state: "online" });
    } finally {
      await d.close();
    }
  });
});
