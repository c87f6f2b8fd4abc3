// A fleet board stopped cleanly while another serves: it drops its share of the requests at once
// (requests published during its grace period are answered, by it or by its peer), it ends its
// persistent session as it disconnects, and afterwards every request goes to the board still serving
// (none waits in the broker for the stopped one).
import test from "ava";
import { connect, connectAsync, type IConnackPacket, type MqttClient } from "mqtt";
import { MOSQUITTO_MISSING } from "../helpers/mosquitto.js";
import { FinalCounter } from "./child-daemon.js";
import { boardConfig } from "./fleet-boards.js";
import { startRealDaemon, TENANTS, type RealDaemon } from "./harness.js";
import { mosquittoReady, mosquittoWithUsers } from "./mosquitto-broker.js";

if (!mosquittoReady) test("fleet stop", (t) => (t.log(MOSQUITTO_MISSING), t.pass()));
const maybe = mosquittoReady ? test.serial : test.serial.skip;

maybe("a board stopped cleanly ends its session: its peer answers every request, during and after the stop", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", ...TENANTS]);
  const boards: RealDaemon[] = [];
  const clients: MqttClient[] = [];
  try {
    for (const b of ["b0", "b1"]) boards.push(await startRealDaemon(await boardConfig(m, b)));
    const [b0, b1] = boards;
    const tenant = await connectAsync(m.url, { username: "t0", password: "t0", protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(tenant);
    const replies = new FinalCounter(tenant);
    await tenant.subscribeAsync("edgelora/t0/response", { qos: 1 });
    const ask = (transaction: string) =>
      tenant.publishAsync("edgelora/t0/request", JSON.stringify({ prompt: "Once upon a time", adapter: null, transaction, max_tokens: 16, temperature: 0 }), { qos: 1 });

    const during = ["during-0", "during-1", "during-2", "during-3"];
    const stopping = b1.stop();
    for (const tr of during) await ask(tr);
    await stopping;
    const after = Array.from({ length: 6 }, (_, i) => `after-${i}`);
    for (const tr of after) await ask(tr);
    await replies.all([...during, ...after], 60_000);
    t.log(`during the stop: ${during.map((tr) => replies.finals.get(tr)![0].status).join(", ")}`);
    for (const tr of during) {
      const r = replies.finals.get(tr)!;
      t.is(r.length, 1, tr);
      t.true(r[0].status === "ok" || (r[0].error as { code: string }).code === "SHUTTING_DOWN", `${tr}: ${JSON.stringify(r[0].error)}`);
    }
    t.true(after.every((tr) => replies.finals.get(tr)!.length === 1 && replies.finals.get(tr)![0].status === "ok"), "after the stop: all answered ok");
    t.true(b0.steps.length > 0);

    // The stopped board's session is gone: the broker queues nothing for it.
    const ack = await new Promise<IConnackPacket>((resolve) => {
      const probe = connect(m.url, { username: "edgelora", password: "edgelora", protocolVersion: 5, clientId: b1.controller.context.bus.opts.clientId, clean: false, reconnectPeriod: 0 });
      clients.push(probe);
      probe.once("connect", resolve);
    });
    t.false(ack.sessionPresent, "no session left for the stopped board");
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    for (const b of boards) await b.stop();
    await m.stop();
  }
});
