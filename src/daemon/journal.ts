// At-least-once intake: a request the daemon accepts is appended to <data_dir>/requests.journal
// before its QoS 1 acknowledgement leaves (the message handler runs before mqtt.js sends PUBACK),
// its final reply is written to it just before it is published, and it is marked done once that
// reply is out (in the socket; with daemon.exactly_once, in mqtt.js's outgoing store on disk, which
// then sends it again itself after a kill). After a crash or SIGKILL the requests still pending are
// run again at start, or, when their reply had been written, answered with that reply again unless
// the outgoing store already held it (without the store, killed between the reply's socket write and
// the done mark, the tenant gets the same reply twice, never a second answer); the broker redelivers
// what was never acknowledged, and the request handler's dedupe (tenant + transaction) drops a copy
// of one already running.
//
// Each line is one JSON record. The write is synchronous (a killed process loses nothing already
// written); the data is flushed to the device within 50 ms (a power cut may lose that much).
// Write errors (a full or read-only disk) turn the journal off with one error log: requests are
// then still served, at most once.
import type { Logger } from "pino";
import type { BusMessage } from "../mqtt/client.js";
import { COMPACT_AFTER_LINES, JsonLinesFile } from "../runtime/json-lines-file.js";

interface RequestRecord {
  op: "req";
  key: string;
  topic: string;
  payload: string; // base64
  responseTopic?: string;
  correlationData?: string; // base64
}

interface DoneRecord {
  op: "done";
  key: string;
}

/** The final reply, written just before it goes to the socket: a request killed between the two is
 *  answered again with this reply at start, not run a second time. */
interface ReplyRecord {
  op: "reply";
  key: string;
  topic: string;
  payload: string; // the reply's JSON
  correlationData?: string; // base64
}

export interface PendingReply {
  topic: string;
  payload: string;
  correlationData?: Buffer;
}

export interface PendingRequest {
  key: string;
  msg: BusMessage;
  /** Its final reply, when the last run had written it: publish it again instead of running. */
  reply?: PendingReply;
}

type JournalRecord = RequestRecord | DoneRecord | ReplyRecord;

export class RequestJournal {
  private readonly log: JsonLinesFile<JournalRecord>;
  private readonly pending = new Map<string, RequestRecord>();
  private readonly replies = new Map<string, ReplyRecord>(); // of pending or replaying requests
  // Left pending by the last run and handed back by open(), until the handler accepts them again
  // (record) or replayDone() closes the rest (refused, duplicates, keys that changed).
  private readonly replaying = new Map<string, RequestRecord>();
  private readonly early = new WeakMap<BusMessage, string>(); // held by the Bus, by hold()
  private heldCount = 0;

  constructor(
    private readonly file: string,
    private readonly logger: Logger,
  ) {
    this.log = new JsonLinesFile(file, (err) =>
      logger.error({ err, file }, "request journal cannot be written (disk full or read-only?): requests are served without it"),
    );
  }

  /** Reads what a previous run left pending, rewrites the file with only that, and opens it for
   *  appending. Hand the requests returned to the handler again, then call replayDone(). */
  open(): PendingRequest[] {
    this.readExisting();
    for (const key of [...this.replies.keys()]) if (!this.pending.has(key)) this.replies.delete(key);
    for (const [key, r] of this.pending) this.replaying.set(key, r);
    this.pending.clear();
    this.rewrite();
    return [...this.replaying.values()].map((r) => {
      const reply = this.replies.get(r.key);
      return { key: r.key, msg: toMessage(r), ...(reply ? { reply: toReply(reply) } : {}) };
    });
  }

  /** The requests open() returned that were not accepted again are closed. */
  replayDone(): void {
    for (const key of [...this.replaying.keys()]) {
      this.replaying.delete(key);
      this.replies.delete(key);
      this.log.append({ op: "done", key });
    }
  }

  /** A request the Bus holds because the request handler has not subscribed yet: recorded under a
   *  key of its own before mqtt.js acknowledges it, and closed when the request handler records it
   *  under its real key (in that same write), or by release() when a handler took it without
   *  recording it. A kill before leaves it pending, so the next start runs it. */
  hold(msg: BusMessage): void {
    const key = `held/${++this.heldCount}`;
    this.record(key, msg);
    this.early.set(msg, key);
  }

  release(msg: BusMessage): void {
    const key = this.early.get(msg);
    if (key === undefined) return;
    this.early.delete(msg);
    this.done(key);
  }

  /** Call from the message handler, before it returns (so before the broker gets the acknowledgement). */
  record(key: string, msg: BusMessage): void {
    if (this.pending.has(key)) return;
    const again = this.replaying.get(key);
    if (again) {
      // Still in the file: accepted again without a new line.
      this.replaying.delete(key);
      this.pending.set(key, again);
      return;
    }
    const rec: RequestRecord = {
      op: "req",
      key,
      topic: msg.topic,
      payload: msg.payload.toString("base64"),
      ...(msg.responseTopic !== undefined ? { responseTopic: msg.responseTopic } : {}),
      ...(msg.correlationData !== undefined ? { correlationData: msg.correlationData.toString("base64") } : {}),
    };
    this.pending.set(key, rec);
    // A request the Bus held is closed under its held key in the same write.
    const heldKey = this.early.get(msg);
    if (heldKey === undefined || !this.pending.delete(heldKey)) return this.log.append(rec);
    this.early.delete(msg);
    this.log.append(rec, { op: "done", key: heldKey });
  }

  /** Call just before the request's final reply is published. */
  reply(key: string, topic: string, payload: string, correlationData?: Buffer): void {
    if (!this.pending.has(key)) return;
    const rec: ReplyRecord = { op: "reply", key, topic, payload, ...(correlationData !== undefined ? { correlationData: correlationData.toString("base64") } : {}) };
    this.replies.set(key, rec);
    this.log.append(rec);
  }

  /** The request's final reply is published (or it was handed to another board). */
  done(key: string): void {
    this.doneAll([key]);
  }

  /** Several done at once, in one write. */
  doneAll(keys: string[]): void {
    const closed: DoneRecord[] = [];
    for (const key of keys) {
      this.replies.delete(key);
      if (this.pending.delete(key)) closed.push({ op: "done", key });
    }
    if (closed.length === 0) return;
    this.log.append(...closed);
    if (this.log.lines > COMPACT_AFTER_LINES) this.rewrite();
  }

  // As an IntakeObserver of the request handler.
  accepted(req: { key: string; msg: BusMessage }): void {
    this.record(req.key, req.msg);
  }

  replying(key: string, route: { topic: string; correlationData?: Buffer }, reply: Record<string, unknown>): void {
    this.reply(key, route.topic, JSON.stringify(reply), route.correlationData);
  }

  answered(key: string): void {
    this.done(key);
  }

  answeredAll(keys: string[]): void {
    this.doneAll(keys);
  }

  get size(): number {
    return this.pending.size + this.replaying.size;
  }

  close(): void {
    this.log.close();
  }

  private readExisting(): void {
    let read: { records: unknown[]; bad: number };
    try {
      read = this.log.readExisting();
    } catch (err) {
      this.logger.error({ err, file: this.file }, "request journal unreadable: pending requests of the last run are lost");
      return;
    }
    let bad = read.bad; // lines cut short by a crash, or garbage
    for (const rec of read.records as JournalRecord[]) {
      if (typeof rec !== "object" || rec === null || typeof rec.key !== "string") bad++;
      else if (rec.op === "req" && typeof rec.topic === "string" && typeof rec.payload === "string") this.pending.set(rec.key, rec);
      else if (rec.op === "done") (this.pending.delete(rec.key), this.replies.delete(rec.key));
      else if (rec.op === "reply" && typeof rec.topic === "string" && typeof rec.payload === "string") this.replies.set(rec.key, rec);
      else bad++;
    }
    if (bad > 0) this.logger.warn({ file: this.file, bad_lines: bad }, "request journal: unreadable lines skipped");
    if (this.pending.size > 0) this.logger.info({ pending: this.pending.size }, "request journal: requests of the last run will be run again");
  }

  /** Rewrites the file with only the open requests and their replies. */
  private rewrite(): void {
    const open = [...this.replaying.values(), ...this.pending.values()];
    this.log.rewrite([...open, ...open.flatMap((r) => this.replies.get(r.key) ?? [])]);
  }
}

function toReply(r: ReplyRecord): PendingReply {
  return { topic: r.topic, payload: r.payload, ...(r.correlationData !== undefined ? { correlationData: Buffer.from(r.correlationData, "base64") } : {}) };
}

function toMessage(r: RequestRecord): BusMessage {
  return {
    topic: r.topic,
    payload: Buffer.from(r.payload, "base64"),
    qos: 1,
    dup: true,
    ...(r.responseTopic !== undefined ? { responseTopic: r.responseTopic } : {}),
    ...(r.correlationData !== undefined ? { correlationData: Buffer.from(r.correlationData, "base64") } : {}),
  };
}
