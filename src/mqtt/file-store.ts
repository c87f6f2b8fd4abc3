// mqtt.js's outgoing store (the packets it sent and the broker has not acknowledged yet), kept in a
// file so that after a SIGKILL the next run sends them again with the same packet ids: a QoS 2
// PUBLISH the broker already holds is then not delivered twice (Mosquitto keeps a QoS 2 id until
// PUBREL, test/mqtt/mosquitto-qos2.test.ts), and a PUBREL finishes what the last run started.
//
// Only QoS 2 PUBLISHes and PUBRELs go to the file (the final replies); QoS 1 packets stay in memory,
// as in mqtt.js's own store. Each change is one appended JSON line written synchronously (a killed
// process loses nothing already written; flushed to the device within 50 ms); the file is
// rewritten with what is still held when opened and when it has grown.
//
// A PUBREL keeps the PUBLISH it replaced: a broker that lost our session (restarted without
// persistence) would answer the PUBREL of a message it never delivered (Mosquitto delivers QoS 2 at
// PUBREL) and drop it, so then the PUBLISH is sent again instead (sessionLost()).
import { Readable } from "node:stream";
import type { IStore, Packet } from "mqtt";
import type { Logger } from "pino";
import { COMPACT_AFTER_LINES, JsonLinesFile } from "../runtime/json-lines-file.js";

type Stored = Packet & { messageId?: number };
type ById = Pick<Packet, "messageId">;
type PacketCallback = (err?: Error, packet?: Packet) => void;
type Line = { op: "put"; packet: unknown } | { op: "del"; id: number };

export class FileStore implements IStore {
  private readonly packets = new Map<number, Stored>(); // by packet id, in the order first put
  private readonly onDisk = new Set<number>();
  private readonly released = new Map<number, Stored>(); // the PUBLISH behind each held PUBREL
  private readonly fromLastRun = new Set<string>(); // topic + payload of the QoS 2 publishes the file held at open
  private readonly log: JsonLinesFile<Line>;

  /** Reads what the last run left, rewrites the file with only that and opens it for appending. */
  constructor(
    private readonly file: string,
    private readonly logger: Logger,
  ) {
    this.log = new JsonLinesFile(file, (err) =>
      logger.error({ err, file }, "outgoing store cannot be written (disk full or read-only?): replies are kept in memory only"),
    );
    this.readExisting();
    for (const p of [...this.packets.values(), ...this.released.values()]) if (p.cmd === "publish") this.fromLastRun.add(replyKey(p.topic, p.payload));
    this.rewrite();
  }

  /** Packet ids held from the last run (register them so no new packet takes one). */
  get ids(): number[] {
    return [...this.packets.keys()];
  }

  /** The last run handed mqtt.js this QoS 2 publish (the file held it at open): mqtt.js sends it
   *  again, or the broker has it already. Stays true after it is completed in this run. */
  heldAtOpen(topic: string, payload: string | Buffer): boolean {
    return this.fromLastRun.has(replyKey(topic, payload));
  }

  put(packet: Packet, cb?: (err?: Error) => void): this {
    const id = (packet as Stored).messageId;
    if (id === undefined) throw new Error("outgoing store: a packet without an id");
    const before = this.packets.get(id);
    if (packet.cmd === "pubrel" && before?.cmd === "publish") this.released.set(id, before);
    else this.released.delete(id);
    this.packets.set(id, packet);
    if (durable(packet)) {
      this.onDisk.add(id);
      this.log.append({ op: "put", packet: encode(packet) });
    } else if (this.onDisk.delete(id)) this.log.append({ op: "del", id });
    cb?.();
    return this;
  }

  get(packet: ById, cb: PacketCallback): this {
    const held = packet.messageId === undefined ? undefined : this.packets.get(packet.messageId);
    if (held) cb(undefined, held);
    else cb(new Error("missing packet"));
    return this;
  }

  del(packet: ById, cb: PacketCallback): this {
    const id = packet.messageId;
    const held = id === undefined ? undefined : this.packets.get(id);
    if (!held || id === undefined) {
      cb(new Error("missing packet"));
      return this;
    }
    this.packets.delete(id);
    this.released.delete(id);
    if (this.onDisk.delete(id)) this.log.append({ op: "del", id });
    if (this.log.lines > COMPACT_AFTER_LINES) this.rewrite();
    cb(undefined, held);
    return this;
  }

  /** The broker did not keep our session: each held PUBREL goes as its PUBLISH again (the broker
   *  may have lost that message; if it had delivered it, the tenant gets it twice). */
  sessionLost(): number {
    let n = 0;
    for (const [id, publish] of this.released) {
      if (this.packets.get(id)?.cmd !== "pubrel") continue;
      this.packets.set(id, publish);
      this.log.append({ op: "put", packet: encode(publish) });
      n++;
    }
    this.released.clear();
    return n;
  }

  /** What is held, oldest first (mqtt.js sends it again on every connect). */
  createStream(): ReturnType<IStore["createStream"]> {
    // node:stream's Readable has everything mqtt.js uses of readable-stream's (read, events, destroy).
    return Readable.from([...this.packets.values()], { objectMode: true }) as unknown as ReturnType<IStore["createStream"]>;
  }

  close(cb?: () => void): void {
    this.log.close();
    cb?.();
  }

  private readExisting(): void {
    let read: { records: unknown[]; bad: number };
    try {
      read = this.log.readExisting();
    } catch (err) {
      this.logger.error({ err, file: this.file }, "outgoing store unreadable: replies in flight at the last stop may be lost");
      return;
    }
    let bad = read.bad; // lines cut short by a crash, or garbage
    for (const rec of read.records as Line[]) {
      try {
        if (rec.op === "put") {
          const packet = decode(rec.packet) as Stored;
          if (typeof packet.messageId !== "number" || !durable(packet)) throw new Error("not a stored packet");
          const before = this.packets.get(packet.messageId);
          if (packet.cmd === "pubrel" && before?.cmd === "publish") this.released.set(packet.messageId, before);
          else this.released.delete(packet.messageId);
          this.packets.set(packet.messageId, packet);
          this.onDisk.add(packet.messageId);
        } else if (rec.op === "del" && typeof rec.id === "number") {
          this.packets.delete(rec.id);
          this.released.delete(rec.id);
          this.onDisk.delete(rec.id);
        } else throw new Error("unknown record");
      } catch {
        bad++;
      }
    }
    if (bad > 0) this.logger.warn({ file: this.file, bad_lines: bad }, "outgoing store: unreadable lines skipped");
    if (this.packets.size > 0) this.logger.info({ packets: this.packets.size }, "outgoing store: packets of the last run will be sent again");
  }

  /** Rewrites the file with only what is held. */
  private rewrite(): void {
    // A PUBREL after the PUBLISH it replaced, so both are read back.
    const held = [...this.packets.values()].filter(durable).flatMap((p) => {
      const publish = p.cmd === "pubrel" && p.messageId !== undefined ? this.released.get(p.messageId) : undefined;
      return publish ? [publish, p] : [p];
    });
    this.log.rewrite(held.map((p): Line => ({ op: "put", packet: encode(p) })));
  }
}

function replyKey(topic: string, payload: string | Buffer): string {
  return `${topic}\u0000${Buffer.from(payload).toString("base64")}`;
}

/** QoS 2 PUBLISHes and PUBRELs: what the broker may hold an id for. */
function durable(p: Packet): boolean {
  return (p.cmd === "publish" && p.qos === 2) || p.cmd === "pubrel";
}

// Packets carry Buffers (payload, correlation data): JSON with {"$b64": ...} for each.
function encode(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return { $b64: v.toString("base64") };
  if (Array.isArray(v)) return v.map(encode);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, encode(x)]));
  return v;
}

function decode(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decode);
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (typeof o.$b64 === "string" && Object.keys(o).length === 1) return Buffer.from(o.$b64, "base64");
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, decode(x)]));
  }
  return v;
}
