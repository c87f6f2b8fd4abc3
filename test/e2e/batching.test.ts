// 8 tenants, 8 adapters, the real engine and the embedded broker (MQTT 3.1.1): concurrent greedy
// requests get exactly the answers they get alone, in mixed-adapter batches.
import test from "ava";
import { connectAsync, type MqttClient } from "mqtt";
import { aloneVersusTogether, e2eAssets, e2eConfig, Inbox, startRealDaemon, TENANTS, type TenantClient } from "./harness.js";

test("embedded broker: batched answers equal the answers alone, mixed-adapter steps", async (t) => {
  const config = await e2eConfig(await e2eAssets());
  const daemon = await startRealDaemon(config);
  const clients: MqttClient[] = [];
  try {
    const url = `mqtt://127.0.0.1:${daemon.controller.brokerPort}`;
    const tenants: TenantClient[] = await Promise.all(
      TENANTS.map(async (tenant) => {
        const client = await connectAsync(url, { username: tenant, password: tenant, reconnectPeriod: 0 });
        clients.push(client);
        const inbox = new Inbox(client);
        await client.subscribeAsync(`edgelora/${tenant}/response`, { qos: 1 });
        return {
          tenant,
          inbox,
          send: async (body: string) => void (await client.publishAsync(`edgelora/${tenant}/request`, body, { qos: 1 })),
        };
      }),
    );
    await aloneVersusTogether(t, daemon, tenants);
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await daemon.stop();
  }
});

test("embedded broker: plain-text prompt and streaming on the real engine", async (t) => {
  const config = await e2eConfig(await e2eAssets());
  const daemon = await startRealDaemon(config);
  const client = await connectAsync(`mqtt://127.0.0.1:${daemon.controller.brokerPort}`, { username: "t3", password: "t3", reconnectPeriod: 0 });
  try {
    const inbox = new Inbox(client);
    await client.subscribeAsync("edgelora/t3/response", { qos: 1 });
    const first = new Promise<Buffer>((resolve) => client.once("message", (_topic, payload) => resolve(payload)));
    await client.publishAsync("edgelora/t3/request", "Once upon a time", { qos: 1 });
    const plain = JSON.parse((await first).toString());
    t.is(plain.status, "ok");
    t.is(plain.adapter, "a3");
    t.true(plain.usage.completion_tokens > 0);

    await client.publishAsync("edgelora/t3/request", JSON.stringify({ prompt: "Once upon a time", transaction: "s", stream: true, max_tokens: 16, temperature: 0 }), { qos: 1 });
    const streamed = await inbox.reply("s");
    await client.publishAsync("edgelora/t3/request", JSON.stringify({ prompt: "Once upon a time", transaction: "n", max_tokens: 16, temperature: 0 }), { qos: 1 });
    const whole = await inbox.reply("n");
    t.is(streamed.status, "ok");
    t.true(streamed.chunks.length > 1);
    t.is(streamed.text, streamed.chunks.join(""));
    t.is(streamed.text, whole.text, "streaming does not change the answer");
  } finally {
    await client.endAsync(true);
    await daemon.stop();
  }
});
