// What exactly-once replies rely on (src/mqtt/file-store.ts): Mosquitto 2 keeps the packet id of an
// incoming QoS 2 PUBLISH in the client's persistent session until PUBREL, so a client that restarts
// and sends the same PUBLISH again (same id) or the PUBREL does not get it delivered a second time.
// Driven with raw packets (mqtt-packet, the codec under mqtt.js) so a "kill" can fall anywhere.
import test from "ava";
import { connect as tcp, type Socket } from "node:net";
import mqttPacket, { type Packet } from "mqtt-packet";
import { connectAsync } from "mqtt";
import { MOSQUITTO_MISSING, type Mosquitto } from "../helpers/mosquitto.js";
import { mosquittoReady, mosquittoWithUsers } from "../e2e/mosquitto-broker.js";
import { quietLogger, until } from "../helpers/broker.js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bus } from "../../src/mqtt/client.js";
import { FileStore } from "../../src/mqtt/file-store.js";

if (!mosquittoReady) test("mosquitto QoS 2", (t) => (t.log(MOSQUITTO_MISSING), t.pass()));
const maybe = mosquittoReady ? test.serial : test.serial.skip;

/** A bare MQTT 5 connection: send packets, wait for the next one of a kind, drop the socket. */
class Raw {
  private readonly got: Packet[] = [];
  private waiter: (() => void) | null = null;
  private constructor(private readonly socket: Socket) {
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on("packet", (p) => {
      this.got.push(p);
      this.waiter?.();
    });
    socket.on("data", (d) => parser.parse(d));
  }

  static async open(port: number, clientId: string): Promise<{ raw: Raw; sessionPresent: boolean }> {
    const socket = tcp(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => (socket.once("connect", resolve), socket.once("error", reject)));
    const raw = new Raw(socket);
    raw.send({ cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clientId, clean: false, keepalive: 60, username: "edgelora", password: Buffer.from("edgelora"), properties: { sessionExpiryInterval: 600 } });
    const ack = await raw.next("connack");
    if (ack.cmd !== "connack" || ack.reasonCode) throw new Error(`connack ${JSON.stringify(ack)}`);
    return { raw, sessionPresent: ack.sessionPresent };
  }

  send(p: Packet): void {
    this.socket.write(mqttPacket.generate(p, { protocolVersion: 5 }));
  }

  async next(cmd: Packet["cmd"], ms = 30_000): Promise<Packet> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.got.findIndex((p) => p.cmd === cmd);
      if (i >= 0) return this.got.splice(i, 1)[0];
      if (Date.now() > end) throw new Error(`no ${cmd} within ${ms} ms`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  /** As a SIGKILL: no DISCONNECT, the session stays. */
  kill(): void {
    this.socket.destroy();
  }
}

const REPLIES = "edgelora/t0/response";
const FENCE = "fence ";

/** Tenant t0 reading the replies (`seen`, in arrival order), and fence(): a marker published now from
 *  another connection, waited for. Mosquitto delivers to a subscriber in the order it processed the
 *  publishes, so whatever it delivers for packets it had processed before has arrived once the marker
 *  has: no fixed sleep that a loaded machine can outlast. */
async function tenantReading(m: Mosquitto) {
  const tenant = await connectAsync(m.url, { username: "t0", password: "t0", protocolVersion: 5, reconnectPeriod: 0 });
  const fencer = await connectAsync(m.url, { username: "edgelora", password: "edgelora", protocolVersion: 5, reconnectPeriod: 0 });
  const seen: string[] = [];
  const fences: string[] = [];
  tenant.on("message", (_topic, payload) => {
    const text = payload.toString();
    (text.startsWith(FENCE) ? fences : seen).push(text);
  });
  await tenant.subscribeAsync(REPLIES, { qos: 1 });
  let n = 0;
  return {
    seen,
    async fence(): Promise<void> {
      const marker = `${FENCE}${++n}`;
      await fencer.publishAsync(REPLIES, marker, { qos: 1 });
      await until(() => fences.includes(marker), `the marker ${marker}`, 30_000);
    },
    end: () => Promise.all([tenant.endAsync(true), fencer.endAsync(true)]),
  };
}

const publish = (messageId: number, text: string, dup = false): Packet => ({ cmd: "publish", topic: REPLIES, payload: Buffer.from(text), qos: 2, messageId, dup, retain: false });

maybe("Mosquitto 2: a QoS 2 PUBLISH or PUBREL sent again with the same id after a client restart is delivered once", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", "t0"]);
  const tenant = await tenantReading(m);
  const seen = tenant.seen;
  const clientId = `qos2-${process.pid}`;
  try {
    // A: killed after PUBREC (before sending PUBREL): the PUBLISH is sent again after the restart.
    let { raw } = await Raw.open(m.port, clientId);
    raw.send(publish(7, "A"));
    await raw.next("pubrec");
    await tenant.fence();
    t.deepEqual(seen, [], "held until PUBREL");
    raw.kill();
    const again = await Raw.open(m.port, clientId);
    t.true(again.sessionPresent, "the session survived");
    raw = again.raw;
    raw.send(publish(7, "A", true));
    await raw.next("pubrec");
    // The same id with another payload (what a reused id would do) replaces the held message: Mosquitto
    // 2.0 delivers at PUBREL, once, the last payload sent with that id.
    raw.send(publish(7, "A-other", true));
    await raw.next("pubrec");
    raw.send({ cmd: "pubrel", messageId: 7 });
    await raw.next("pubcomp");

    // B: killed right after writing the PUBLISH (the broker may not have read it yet).
    raw.send(publish(8, "B"));
    raw.kill();
    ({ raw } = await Raw.open(m.port, clientId));
    raw.send(publish(8, "B", true));
    await raw.next("pubrec");
    raw.send({ cmd: "pubrel", messageId: 8 });
    await raw.next("pubcomp");

    // C: killed after PUBREL (PUBCOMP not read): only the PUBREL is sent again.
    raw.send(publish(9, "C"));
    await raw.next("pubrec");
    raw.send({ cmd: "pubrel", messageId: 9 });
    raw.kill();
    ({ raw } = await Raw.open(m.port, clientId));
    raw.send({ cmd: "pubrel", messageId: 9 });
    const comp = await raw.next("pubcomp");
    t.log(`PUBCOMP for a PUBREL sent again: reason ${comp.cmd === "pubcomp" ? (comp.reasonCode ?? 0) : "?"}`);

    // D: an id already completed is free again: a new message with it is delivered.
    raw.send(publish(7, "D"));
    await raw.next("pubrec");
    raw.send({ cmd: "pubrel", messageId: 7 });
    await raw.next("pubcomp");
    raw.kill();
    await tenant.fence();
    t.deepEqual([...seen].sort(), ["A-other", "B", "C", "D"]);
  } finally {
    await tenant.end();
    await m.stop();
  }
});

maybe("the Bus on a store file a killed run left: its QoS 2 PUBLISH and PUBREL are sent again and delivered once, new replies after them", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", "t0"]);
  const tenant = await tenantReading(m);
  const seen = tenant.seen;
  const clientId = `qos2-bus-${process.pid}`;
  const file = join(mkdtempSync(join(tmpdir(), "edgelora-store-")), "outgoing.store");
  let bus: Bus | null = null;
  try {
    // The last run: "R" handed to the broker (PUBREC came, PUBREL not sent), "T" released (PUBREL
    // sent, PUBCOMP not read), then killed. Its store file holds the PUBLISH of "R" and the PUBREL of "T".
    const { raw } = await Raw.open(m.port, clientId);
    const last = new FileStore(file, quietLogger);
    for (const [id, text] of [[1, "R"], [2, "T"]] as const) {
      last.put(publish(id, text));
      raw.send(publish(id, text));
      await raw.next("pubrec");
    }
    last.put({ cmd: "pubrel", messageId: 2 });
    raw.send({ cmd: "pubrel", messageId: 2 });
    await raw.next("pubcomp");
    raw.kill();
    await tenant.fence();
    t.deepEqual(seen, ["T"]);

    bus = new Bus({
      url: m.url, protocolVersion: 5, clientId, username: "edgelora", password: "edgelora", qos: 1, keepaliveS: 30, reconnectMs: 200,
      will: { topic: "edgelora/bridge/state", payload: "offline" }, clean: false, sessionExpiryS: 600, outgoingStoreFile: file, logger: quietLogger,
    });
    t.true(bus.exactlyOnce);
    t.true(bus.handedOverBefore("edgelora/t0/response", "R"));
    t.true(bus.handedOverBefore("edgelora/t0/response", "T"));
    t.false(bus.handedOverBefore("edgelora/t0/response", "S"));
    bus.start();
    await bus.waitConnected(); // mqtt.js reports the connection once the stored packets are completed
    let stored = false;
    await bus.publish("edgelora/t0/response", "S", { qos: 2, onStored: () => (stored = true) });
    t.true(stored);
    await tenant.fence();
    t.deepEqual(seen, ["T", "R", "S"]);
    await bus.stop();
    bus = null;
    t.deepEqual(new FileStore(file, quietLogger).ids, []);
  } finally {
    await bus?.stop();
    await tenant.end();
    await m.stop();
  }
});

maybe("more QoS 2 publishes at once than the broker's receive maximum (Mosquitto: 20) all arrive", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", "t0"]);
  const tenant = await tenantReading(m);
  const bus = new Bus({
    url: m.url, protocolVersion: 5, clientId: `qos2-window-${process.pid}`, username: "edgelora", password: "edgelora", qos: 1, keepaliveS: 30, reconnectMs: 200,
    will: { topic: "edgelora/bridge/state", payload: "offline" }, clean: false, sessionExpiryS: 60, logger: quietLogger,
    outgoingStoreFile: join(mkdtempSync(join(tmpdir(), "edgelora-store-")), "outgoing.store"),
  });
  try {
    bus.start();
    await bus.waitConnected();
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => bus.publish("edgelora/t0/response", `m${i}`, { qos: 2 })));
    t.deepEqual(results.filter((r) => r.status === "rejected"), []);
    await tenant.fence();
    t.is(tenant.seen.length, 100);
  } finally {
    await bus.stop();
    await tenant.end();
    await m.stop();
  }
});
