// The real daemon on an external Mosquitto (MQTT 5): 8 tenants with response topics and
// correlation data, batched like alone; and a broker restart in the middle of a request.
import test from "ava";
import { connectAsync, type IClientOptions, type MqttClient } from "mqtt";
import { MOSQUITTO_MISSING, useMosquitto } from "../helpers/mosquitto.js";
import { aloneVersusTogether, e2eAssets, e2eConfig, Inbox, startRealDaemon, TENANTS, type TenantClient } from "./harness.js";
import type { Mosquitto } from "../helpers/mosquitto.js";
import { mosquittoReady, mosquittoWithUsers } from "./mosquitto-broker.js";

const maybe = mosquittoReady ? test.serial : test.serial.skip;
if (!mosquittoReady) {
  test("mosquitto end-to-end tests", (t) => {
    t.log(MOSQUITTO_MISSING);
    t.pass();
  });
}

async function external(m: Mosquitto) {
  return e2eConfig(await e2eAssets(), (c) => {
    useMosquitto(c, m, `edgelora-e2e-${process.pid}`);
    // In the restart test the tenant (100 ms) must be subscribed again before the daemon is back and
    // sends the reply it held (the restarted broker has no sessions): seconds of margin, not 0.9 s.
    c.mqtt.reconnect_ms = 3000;
  });
}

const users = ["edgelora", "admin", ...TENANTS];

maybe("mosquitto MQTT 5: 8 tenants, response topics + correlation data, batched answers equal the answers alone", async (t) => {
  const m = await mosquittoWithUsers(users);
  const clients: MqttClient[] = [];
  const daemon = await startRealDaemon(await external(m));
  try {
    const tenants: TenantClient[] = await Promise.all(
      TENANTS.map(async (tenant) => {
        const client = await connectAsync(m.url, { username: tenant, password: tenant, protocolVersion: 5, reconnectPeriod: 0 });
        clients.push(client);
        const inbox = new Inbox(client);
        const replyTopic = `edgelora/${tenant}/inbox`;
        await client.subscribeAsync(replyTopic, { qos: 1 });
        return {
          tenant,
          inbox,
          send: async (body: string, transaction: string) =>
            void (await client.publishAsync(`edgelora/${tenant}/request`, body, {
              qos: 1,
              properties: { responseTopic: replyTopic, correlationData: Buffer.from(`corr-${transaction}`) },
            })),
        };
      }),
    );
    await aloneVersusTogether(t, daemon, tenants);
    // Correlation data comes back with every final reply, on the response topic.
    const r = await tenants[5].inbox.reply("together-t5");
    t.deepEqual(Buffer.from(r.correlationData ?? []), Buffer.from("corr-together-t5"));
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await daemon.stop();
    await m.stop();
  }
});

maybe("mosquitto restart: the daemon reconnects, resubscribes, republishes its state and answers the request it had accepted", async (t) => {
  const m = await mosquittoWithUsers(users);
  const clients: MqttClient[] = [];
  const connect = async (user: string, extra: IClientOptions = {}) => {
    const c = await connectAsync(m.url, { username: user, password: user, protocolVersion: 5, reconnectPeriod: 0, ...extra });
    clients.push(c);
    return c;
  };
  const daemon = await startRealDaemon(await external(m));
  try {
    // The tenant reconnects (and resubscribes) faster than the daemon, so it is listening again
    // when the daemon sends the replies it held while the broker was down.
    const t0 = await connect("t0", { reconnectPeriod: 100 });
    const inbox = new Inbox(t0);
    await t0.subscribeAsync("edgelora/t0/response", { qos: 1 });
    await t0.publishAsync("edgelora/t0/request", JSON.stringify({ prompt: "Once upon a time", transaction: "before", stream: true, max_tokens: 400, temperature: 0 }), { qos: 1 });
    await inbox.firstChunk("before");

    await m.stop();
    const heldBack = daemon.controller.context.scheduler!.stats().active;
    await m.start();
    const before = await inbox.reply("before");
    t.is(before.status, "ok", JSON.stringify(before.error));
    t.true((before.usage?.completion_tokens ?? 0) > 0);
    t.log(`request still running when the broker stopped: ${heldBack > 0}; ${before.chunks.length} chunks received`);

    // Retained state is gone with the broker (no persistence): what a new client sees was republished.
    const admin = await connect("admin");
    const state = new Promise<string>((resolve) => admin.on("message", (_topic, payload) => resolve(payload.toString())));
    await admin.subscribeAsync("edgelora/bridge/state", { qos: 1 });
    t.deepEqual(JSON.parse(await state), { state: "online" });

    // Resubscribed: a request sent after the restart is served.
    const t1 = await connect("t1");
    const inbox1 = new Inbox(t1);
    await t1.subscribeAsync("edgelora/t1/response", { qos: 1 });
    await t1.publishAsync("edgelora/t1/request", JSON.stringify({ prompt: "Once upon a time", transaction: "after", max_tokens: 8, temperature: 0 }), { qos: 1 });
    const after = await inbox1.reply("after");
    t.is(after.status, "ok");
    t.is(after.adapter, "a1");
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await daemon.stop();
    await m.stop();
  }
});
