// Several boards behind one MQTT 5 broker (mqtt.shared_subscription on an external broker). The
// broker spreads requests over the boards ($share/edgelora/...); on top of that this module gives:
// - affinity: a request whose adapter is not resident here but is on a peer that has a free
//   sequence (it batches the request with its others) or is no more loaded than this board is
//   forwarded to it over <base>/fleet/<peer>/forward, once (a forwarded request is
//   never forwarded again); the peer accepts on <base>/fleet/<board>/accepted, else it runs here;
// - fleet-wide cancel and dedupe, from the job ledger (ledger.ts);
// - failover: when a board goes offline (its last will) with requests in its ledger, the online
//   boards split them (each key to one board, the same choice on every board): a plain request is
//   run again, a streamed one (whose chunks the tenant already has in part) is answered INTERRUPTED.
import { createHash, randomUUID } from "node:crypto";
import type { DaemonContext, Extension, FleetPort } from "../daemon/context.js";
import { errorReply, json } from "../daemon/payloads.js";
import { replyRoute } from "../daemon/reply-route.js";
import type { BusMessage } from "../mqtt/client.js";
import { AdapterAdvert, advertisedAdapters, loadOf } from "./advertise.js";
import { JobLedger, type JobEntry } from "./ledger.js";
import { PeerView } from "./peers.js";
import { fromWire, jsonOf, toWire } from "./wire.js";

/** The part of the request handler the fleet drives. */
export interface RequestPort {
  readonly serving: boolean;
  inject(msg: BusMessage, forwarded?: boolean): void;
  cancel(tenant: string, transaction: string): boolean;
}

export class Fleet implements Extension, FleetPort {
  readonly name = "fleet";
  private readonly peers: PeerView;
  private readonly ledger: JobLedger;
  private readonly advert: AdapterAdvert;
  private readonly waiting = new Map<string, (ok: boolean) => void>(); // forward id -> its answer
  private readonly self: string;

  constructor(
    private readonly ctx: DaemonContext,
    private readonly requests: RequestPort,
  ) {
    this.self = ctx.boardId;
    this.peers = new PeerView(ctx.bus, ctx.topics, this.self);
    this.ledger = new JobLedger(ctx.bus, ctx.topics, this.self);
    this.advert = new AdapterAdvert(ctx);
    ctx.intake.push(this.ledger);
  }

  async start(): Promise<void> {
    const { bus, topics } = this.ctx;
    const own = topics.fleet(this.self);
    await this.ledger.start();
    await this.peers.start();
    await bus.subscribe(own.forward, (m) => this.onForward(m));
    await bus.subscribe(own.accepted, (m) => this.onAccepted(m));
    await bus.subscribe(own.cancel, (m) => this.onCancel(m));
    this.peers.events.on("down", (board) => this.failover(board));
    await this.advert.start();
    // The retained ledgers and peer states arrive just after the subscriptions are granted: let them
    // land before the journal asks holds() and the first request asks runningElsewhere().
    await new Promise((r) => setTimeout(r, 300));
  }

  async stop(): Promise<void> {
    this.advert.stop();
    for (const resolve of this.waiting.values()) resolve(false);
  }

  runningElsewhere(tenant: string, transaction: string): boolean {
    return this.ledger.owner(tenant, transaction) !== null;
  }

  cancelElsewhere(tenant: string, transaction: string): boolean {
    const owner = this.ledger.owner(tenant, transaction);
    if (owner === null) return false;
    void this.ctx.bus.publish(this.ctx.topics.fleet(owner).cancel, JSON.stringify({ tenant, transaction })).catch(() => undefined);
    this.ctx.logger.info({ tenant, transaction, board: owner }, "cancel sent to the board running the request");
    return true;
  }

  holds(key: string): boolean {
    return this.ledger.holds(key);
  }

  async offer(msg: BusMessage, adapter: string | null): Promise<boolean> {
    const { config, logger, bus, topics } = this.ctx;
    if (!config.fleet.affinity || adapter === null || advertisedAdapters(this.ctx).hot.includes(adapter)) return false;
    const mine = loadOf(this.ctx);
    const target = this.peers
      .online()
      .filter((p) => p.hot.includes(adapter) && (p.load < p.capacity || p.load <= mine))
      .sort((a, b) => a.load - b.load)[0];
    if (!target) return false;
    const id = randomUUID();
    const timeoutMs = config.fleet.forward_timeout_ms;
    const answer = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiting.set(id, (ok) => (clearTimeout(timer), resolve(ok)));
    });
    const forward = { id, from: this.self, deadline: Date.now() + timeoutMs, msg: toWire(msg) };
    await bus.publish(topics.fleet(target.board).forward, JSON.stringify(forward));
    const ok = await answer;
    this.waiting.delete(id);
    logger.info({ adapter, to: target.board, accepted: ok }, ok ? "request forwarded to the board holding its adapter" : "forward not accepted in time: runs here");
    return ok;
  }

  private onForward(m: BusMessage): void {
    const body = jsonOf(m.payload);
    const msg = body ? fromWire(body.msg) : null;
    if (!body || typeof body.id !== "string" || typeof body.from !== "string" || typeof body.deadline !== "number") return;
    // Accept only with a quarter of the sender's wait left for the answer to travel back: after its
    // deadline the sender runs the request itself.
    const margin = this.ctx.config.fleet.forward_timeout_ms / 4;
    const ok = msg !== null && this.requests.serving && Date.now() < body.deadline - margin;
    // Taken first (its ledger entry goes out before the answer): should this board die right after
    // accepting, its peers find the request in its ledger.
    if (ok) this.requests.inject(msg, true);
    void this.ctx.bus.publish(this.ctx.topics.fleet(body.from).accepted, JSON.stringify({ id: body.id, ok })).catch(() => undefined);
  }

  private onAccepted(m: BusMessage): void {
    const body = jsonOf(m.payload);
    if (body && typeof body.id === "string") this.waiting.get(body.id)?.(body.ok === true);
  }

  private onCancel(m: BusMessage): void {
    const body = jsonOf(m.payload);
    if (body && typeof body.tenant === "string" && typeof body.transaction === "string") this.requests.cancel(body.tenant, body.transaction);
  }

  /** `board` went offline: take over this board's share of what its ledger still holds. */
  private failover(board: string): void {
    if (!this.requests.serving) return;
    const boards = [this.self, ...this.peers.online().map((p) => p.board)].sort();
    const jobs = this.ledger.takeOver(board, (e) => boards[bucket(e.key, boards.length)] === this.self);
    if (jobs.length === 0) return;
    this.ctx.logger.warn({ board, jobs: jobs.length, streamed: jobs.filter((e) => e.stream).length }, "board went offline mid-request: its requests are taken over");
    for (const e of jobs) {
      if (e.stream) this.interrupted(e, board);
      else this.requests.inject(e.msg, true);
    }
  }

  private interrupted(e: JobEntry, board: string): void {
    const { topics, bus, events } = this.ctx;
    const replyTo = jsonOf(e.msg.payload)?.reply_to;
    const route = replyRoute(topics, e.tenant, e.msg, typeof replyTo === "string" ? replyTo : undefined);
    const target = typeof route === "string" ? { topic: topics.response(e.tenant) } : route;
    const reply = errorReply(e.transaction, "INTERRUPTED", `board ${board} went offline while streaming this answer; send it again`, true);
    events.emit("answered", { tenant: e.tenant, code: "INTERRUPTED" });
    void bus.publish(target.topic, json("response", reply), { correlationData: target.correlationData }).catch(() => undefined);
  }
}

/** The same bucket for a key on every board. */
function bucket(key: string, n: number): number {
  return createHash("sha1").update(key).digest().readUInt32BE(0) % n;
}
