// At-least-once intake: 50 QoS 1 requests in flight, the daemon (on Mosquitto, a persistent session)
// is killed with SIGKILL and started again: each request gets exactly one final reply (final replies
// at QoS 2 with the outgoing packets kept on disk, daemon.exactly_once). And the broker restarted under load.
import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connectAsync, type MqttClient } from "mqtt";
import { MOSQUITTO_MISSING, useMosquitto } from "../helpers/mosquitto.js";
import { countingTenant, startChild, FinalCounter } from "./child-daemon.js";
import { e2eAssets, e2eConfig, startRealDaemon, TENANTS, writeConfigFile } from "./harness.js";
import { sleep, until } from "../helpers/broker.js";
import { mosquittoReady, mosquittoWithUsers } from "./mosquitto-broker.js";

if (!mosquittoReady) test("SIGKILL + restart", (t) => (t.log(MOSQUITTO_MISSING), t.pass()));
const maybe = mosquittoReady ? test.serial : test.serial.skip;

maybe("SIGKILL with 50 requests in flight, then a restart: none lost, none answered twice", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", ...TENANTS]);
  const config = await e2eConfig(await e2eAssets(), (c) => {
    c.daemon.log_level = "info";
    useMosquitto(c, m, `edgelora-restart-${process.pid}`);
    c.mqtt.reconnect_ms = 200;
    c.scheduler.max_queue = 64;
  });
  const file = writeConfigFile(config);
  const tenants = TENANTS.slice(0, 5);
  const clients: MqttClient[] = [];
  let daemon = await startChild(file);
  try {
    const counters: FinalCounter[] = [];
    const transactions: string[] = [];
    for (const tenant of tenants) {
      const { client, counter } = await countingTenant(m.url, tenant);
      clients.push(client);
      counters.push(counter);
    }
    await Promise.all(
      tenants.map(async (tenant, i) => {
        for (let k = 0; k < 10; k++) {
          const transaction = `${tenant}-${k}`;
          transactions.push(transaction);
          const body = { prompt: "Once upon a time", transaction, max_tokens: 120, temperature: 0 };
          await clients[i].publishAsync(`edgelora/${tenant}/request`, JSON.stringify(body), { qos: 1 });
        }
      }),
    );
    const answered = () => counters.reduce((n, c) => n + c.finals.size, 0);
    // Kill it once a few are answered and the rest are queued or running: the instant a reply
    // arrives, so the kill often lands (the daemon preempted by the processes its write woke) while
    // replies are between mqtt.js's outgoing store, the socket and the broker's PUBREC/PUBCOMP.
    while (answered() < 3) await new Promise((r) => setTimeout(r, 10));
    await daemon.kill("SIGKILL");
    const beforeRestart = answered();
    t.log(`killed with ${beforeRestart} of 50 answered`);
    t.true(beforeRestart < 50, "requests were still in flight when it was killed");

    daemon = await startChild(file);
    const replayed = daemon.logs.find((l) => l.msg === "request journal: requests of the last run will be run again");
    const resent = daemon.logs.find((l) => l.msg === "outgoing store: packets of the last run will be sent again");
    t.log(`journal replay: ${JSON.stringify(replayed?.pending ?? 0)} requests; outgoing store: ${JSON.stringify(resent?.packets ?? 0)} packets`);
    await Promise.all(counters.map((c, i) => c.all(transactions.filter((tr) => tr.startsWith(`${tenants[i]}-`)), 120_000)));
    await new Promise((r) => setTimeout(r, 1000)); // time for a second answer to show up, were there one
    const all = counters.flatMap((c) => [...c.finals.entries()]);
    t.is(all.length, 50, "every request answered");
    const same = (list: unknown[]) => list.every((r) => JSON.stringify(r) === JSON.stringify(list[0]));
    const twice = all.filter(([, list]) => list.length > 1);
    for (const [tr, list] of twice) t.log(`${tr} answered ${list.length} times, ${same(list) ? "the same reply" : "different replies"}`);
    t.deepEqual(twice.map(([tr]) => tr), [], "no request answered twice");
    const errors = all.filter(([, list]) => list[0].status !== "ok").map(([tr, list]) => `${tr}: ${JSON.stringify(list[0].error)}`);
    t.deepEqual(errors, []);
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await daemon.kill("SIGTERM");
    await m.stop();
  }
});

maybe("broker restart with 16 requests in flight: each answered once after the daemon reconnects", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", ...TENANTS]);
  const config = await e2eConfig(await e2eAssets(), (c) => {
    useMosquitto(c, m, `edgelora-brokerrestart-${process.pid}`);
    // The tenants (100 ms) must be subscribed again before the daemon is back and sends its replies
    // (the restarted broker has no sessions): 3 s leaves a loaded machine seconds, not 0.4 s.
    c.mqtt.reconnect_ms = 3000;
    c.model.n_ctx = 2048;
    c.scheduler.max_tokens_limit = 2000;
  });
  const daemon = await startRealDaemon(config);
  const clients: MqttClient[] = [];
  try {
    const counters: FinalCounter[] = [];
    const transactions: string[][] = [];
    for (const tenant of TENANTS.slice(0, 4)) {
      // Tenants reconnect (and resubscribe) faster than the daemon: they listen again when it sends
      // the replies it finished while the broker was away.
      const { client: c, counter } = await countingTenant(m.url, tenant, 100);
      clients.push(c);
      counters.push(counter);
      const mine = Array.from({ length: 4 }, (_, k) => `${tenant}-${k}`);
      transactions.push(mine);
      for (const [k, transaction] of mine.entries())
        await c.publishAsync(`edgelora/${tenant}/request`, JSON.stringify({ prompt: "Once upon a time", transaction, max_tokens: 300 + 200 * k, temperature: 0 }), { qos: 1 });
    }
    await until(() => daemon.controller.context.scheduler!.stats().active > 0, "requests running");
    await m.stop();
    const running = daemon.controller.context.scheduler!.stats().active;
    await sleep(500);
    await m.start();
    await Promise.all(counters.map((c, i) => c.all(transactions[i], 120_000)));
    await sleep(500);
    const all = counters.flatMap((c) => [...c.finals.values()]);
    t.log(`${running} running when the broker stopped`);
    t.is(all.length, 16);
    t.true(all.every((list) => list.length === 1 && list[0].status === "ok"), "each answered once, ok");
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await daemon.stop();
    await m.stop();
  }
});

maybe("a request whose reply was journaled but not marked done (killed in between) gets that reply at start, not a second run", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", ...TENANTS]);
  const config = await e2eConfig(await e2eAssets(), (c) => {
    c.mqtt.embedded = false;
    c.mqtt.url = m.url;
    c.mqtt.username = "edgelora";
    c.mqtt.password = "edgelora";
    c.mqtt.client_id = `edgelora-replay-${process.pid}`;
  });
  // What a daemon killed right after writing j1's reply to the socket leaves: j1 with its reply, j2 running.
  const request = (transaction: string) => ({ op: "req", key: `t0/${transaction}`, topic: "edgelora/t0/request", payload: Buffer.from(JSON.stringify({ prompt: "Once upon a time", transaction, max_tokens: 8, temperature: 0 })).toString("base64") });
  const stored = { transaction: "j1", status: "ok", text: "the reply the killed daemon had sent" };
  const lines = [request("j1"), request("j2"), { op: "reply", key: "t0/j1", topic: "edgelora/t0/response", payload: JSON.stringify(stored) }];
  writeFileSync(join(config.daemon.data_dir, "requests.journal"), lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
  const tenant = await connectAsync(m.url, { username: "t0", password: "t0", protocolVersion: 5, reconnectPeriod: 0 });
  const replies = new FinalCounter(tenant);
  await tenant.subscribeAsync("edgelora/t0/response", { qos: 1 });
  const daemon = await startRealDaemon(config);
  try {
    await replies.all(["j1", "j2"], 60_000);
    await sleep(300);
    t.deepEqual(replies.finals.get("j1"), [stored], "the journaled reply, once");
    t.is(replies.finals.get("j2")!.length, 1);
    t.is(replies.finals.get("j2")![0].status, "ok", "the request without a reply ran again");
    t.true(daemon.steps.some((s) => s.adapters.includes("a0")), "j2 ran");
  } finally {
    await tenant.endAsync(true);
    await daemon.stop();
    await m.stop();
  }
});
