// What exactly-once replies rely on (src/mqtt/file-store.ts): Mosquitto 2 keeps the packet id of an
// incoming QoS 2 PUBLISH in the client's persistent session until PUBREL, so a client that restarts
// and sends the same PUBLISH again (same id) or the PUBREL does not get it delivered a second time.
// Driven with raw packets (mqtt-packet, the codec under mqtt.js) so a "kill" can fall anywhere.
import test from "ava";
import { connect as tcp, type Socket } from "node:net";
import mqttPacket, { type Packet } from "mqtt-packet";
import { connectAsync } from "mqtt";
import { MOSQUITTO_MISSING } from "../helpers/mosquitto.js";
import { mosquittoReady, mosquittoWithUsers } from "../e2e/mosquitto-broker.js";
import { sleep } from "../helpers/broker.js";

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

  async next(cmd: Packet["cmd"], ms = 3000): Promise<Packet> {
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

const publish = (messageId: number, text: string, dup = false): Packet => ({ cmd: "publish", topic: "edgelora/t0/response", payload: Buffer.from(text), qos: 2, messageId, dup, retain: false });

maybe("Mosquitto 2: a QoS 2 PUBLISH or PUBREL sent again with the same id after a client restart is delivered once", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", "t0"]);
  const tenant = await connectAsync(m.url, { username: "t0", password: "t0", protocolVersion: 5, reconnectPeriod: 0 });
  const seen: string[] = [];
  tenant.on("message", (_topic, payload) => seen.push(payload.toString()));
  await tenant.subscribeAsync("edgelora/t0/response", { qos: 1 });
  const clientId = `qos2-${process.pid}`;
  try {
    // A: killed after PUBREC (before sending PUBREL): the PUBLISH is sent again after the restart.
    let { raw } = await Raw.open(m.port, clientId);
    raw.send(publish(7, "A"));
    await raw.next("pubrec");
    await sleep(200);
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
    await sleep(300);
    t.deepEqual([...seen].sort(), ["A-other", "B", "C", "D"]);
  } finally {
    await tenant.endAsync(true);
    await m.stop();
  }
});
