// A persistent session's queued requests arrive as soon as the daemon connects, before its request
// handler subscribes; the Bus holds them and mqtt.js acknowledges them when its message event
// returns. The journal records each as it is held (RequestJournal.hold), so a kill before the
// handler takes them loses none: the broker will not send them again, the journal has them.
import test from "ava";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectAsync, type MqttClient } from "mqtt";
import { RequestJournal } from "../../src/daemon/journal.js";
import { Bus, type BusMessage } from "../../src/mqtt/client.js";
import { quietLogger, sleep, until } from "../helpers/broker.js";
import { MOSQUITTO_MISSING } from "../helpers/mosquitto.js";
import { mosquittoReady, mosquittoWithUsers } from "../e2e/mosquitto-broker.js";

if (!mosquittoReady) test("journal of held requests", (t) => (t.log(MOSQUITTO_MISSING), t.pass()));
const maybe = mosquittoReady ? test.serial : test.serial.skip;

const REQUESTS = "edgelora/+/request";

function daemonBus(url: string, clientId: string): Bus {
  return new Bus({
    url, protocolVersion: 5, clientId, username: "edgelora", password: "edgelora", qos: 1, keepaliveS: 30, reconnectMs: 200,
    will: { topic: "edgelora/bridge/state", payload: "offline" }, clean: false, sessionExpiryS: 600, logger: quietLogger,
  });
}

/** Makes the daemon's persistent session (subscribed to the requests), then publishes `transactions`
 *  of tenant t0 while it is down: they wait in the session. */
async function queueInSession(url: string, clientId: string, tenant: MqttClient, transactions: string[]): Promise<void> {
  const first = daemonBus(url, clientId);
  first.start();
  await first.waitConnected();
  await first.subscribe(REQUESTS, () => undefined);
  await first.stop();
  for (const transaction of transactions) await tenant.publishAsync("edgelora/t0/request", JSON.stringify({ prompt: "hi", transaction }), { qos: 1 });
}

/** The Bus's connection dropped without a word, as when its process is killed (no reconnect). */
function killConnection(bus: Bus): void {
  const client = (bus as unknown as { client: { stream: { destroy(): void }; options: { reconnectPeriod: number } } }).client;
  client.options.reconnectPeriod = 0;
  client.stream.destroy();
}

maybe("requests held before the request handler subscribes are journaled before their acknowledgement; a kill then loses none", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", "t0"]);
  const clientId = `held-${process.pid}`;
  const file = join(mkdtempSync(join(tmpdir(), "edgelora-held-")), "requests.journal");
  const tenant = await connectAsync(m.url, { username: "t0", password: "t0", protocolVersion: 5, reconnectPeriod: 0 });
  try {
    await queueInSession(m.url, clientId, tenant, ["q0", "q1", "q2", "q3", "q4"]);

    // It starts again and is killed before its request handler subscribes.
    const journal = new RequestJournal(file, quietLogger);
    t.deepEqual(journal.open(), []);
    const held: BusMessage[] = [];
    const second = daemonBus(m.url, clientId);
    second.observeHeld({ held: (msg) => (held.push(msg), journal.hold(msg)), released: (msg) => journal.release(msg) });
    second.start();
    await until(() => held.length === 5, "the queued requests held");
    // mqtt.js wrote each PUBACK as its message event returned; the broker answers this publish on the
    // same connection after it has processed them (a fixed wait lost that race on a loaded machine).
    await second.publish("edgelora/bridge/fence", "x", { qos: 1 });
    killConnection(second);
    journal.close();

    // The broker does not send them again (they were acknowledged) ...
    const third = daemonBus(m.url, clientId);
    const redelivered: string[] = [];
    third.start();
    await third.waitConnected();
    await third.subscribe(REQUESTS, (msg) => redelivered.push(msg.payload.toString()));
    await sleep(500);
    await third.stop();
    t.deepEqual(redelivered, [], "acknowledged while held");
    // ... and the journal has every one of them, to run at the next start.
    const pending = new RequestJournal(file, quietLogger).open();
    t.deepEqual(
      pending.map((p) => (JSON.parse(p.msg.payload.toString()) as { transaction: string }).transaction).sort(),
      ["q0", "q1", "q2", "q3", "q4"],
    );
  } finally {
    await tenant.endAsync(true);
    await m.stop();
  }
});

maybe("a held request taken by the handler is closed under its held key once the handler has recorded it", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", "t0"]);
  const clientId = `held-release-${process.pid}`;
  const file = join(mkdtempSync(join(tmpdir(), "edgelora-held-")), "requests.journal");
  const tenant = await connectAsync(m.url, { username: "t0", password: "t0", protocolVersion: 5, reconnectPeriod: 0 });
  try {
    await queueInSession(m.url, clientId, tenant, ["r0", "r1", "r2"]);

    const journal = new RequestJournal(file, quietLogger);
    journal.open();
    let held = 0;
    const bus = daemonBus(m.url, clientId);
    bus.observeHeld({ held: (msg) => (held++, journal.hold(msg)), released: (msg) => journal.release(msg) });
    bus.start();
    await until(() => held === 3, "the queued requests held");
    // The request handler subscribes: it records each under its own key, as the daemon's does.
    await bus.subscribe(REQUESTS, (msg) => journal.record(`t0/${(JSON.parse(msg.payload.toString()) as { transaction: string }).transaction}`, msg));
    killConnection(bus);
    journal.close();
    const pending = new RequestJournal(file, quietLogger).open();
    t.deepEqual(pending.map((p) => p.key).sort(), ["t0/r0", "t0/r1", "t0/r2"], "the held keys are closed, the handler's remain");
  } finally {
    await tenant.endAsync(true);
    await m.stop();
  }
});
