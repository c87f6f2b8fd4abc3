// Several boards behind one MQTT 5 broker (mqtt.shared_subscription on an external broker). The
// broker spreads requests over the boards ($share/edgelora/...); on top of that this module gives:
// - affinity: a request whose adapter is not resident here but is on a peer that has a free
//   sequence (it batches the request with its others) or is no more loaded than this board is
//   forwarded to it (forward.ts), once (a forwarded request is never forwarded again); if the peer
//   does not accept in time it runs here;
// - fleet-wide cancel and dedupe, from the job ledger (ledger.ts) while a request runs and from the
//   answered records (answered.ts) once it is answered;
// - failover: when a board goes offline (its last will) with requests in its ledger, the online
//   boards split them (each key to one board, the same choice on every board): a plain request is
//   run again, a streamed one (whose chunks the tenant already has in part) is answered INTERRUPTED;
//   and one board adopts its MQTT session (adopt.ts) for the requests it had not recorded.
import { createHash } from "node:crypto";
import type { DaemonContext, Extension, FleetPort } from "../daemon/context.js";
import { errorReply, json, type TenantReply } from "../daemon/payloads.js";
import { replyRoute } from "../daemon/reply-route.js";
import type { BusMessage } from "../mqtt/client.js";
import { adoptSession, fingerprint } from "./adopt.js";
import { AdapterAdvert, advertisedAdapters, loadOf } from "./advertise.js";
import { AnsweredRecords } from "./answered.js";
import { Forwarding } from "./forward.js";
import { JobLedger, type JobEntry } from "./ledger.js";
import { PeerView } from "./peers.js";
import { jsonOf } from "./wire.js";

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
  private readonly answers: AnsweredRecords;
  private readonly advert: AdapterAdvert;
  private readonly forwarding: Forwarding;
  private readonly adoptions = new Set<Promise<unknown>>();
  // Offline boards' sessions and the board chosen to adopt each (kept until their expiry).
  private readonly orphans = new Map<string, { session: string; recorded: string[]; adopter: string | null; at: number }>();
  private readonly self: string;

  constructor(
    private readonly ctx: DaemonContext,
    private readonly requests: RequestPort,
  ) {
    this.self = ctx.boardId;
    this.peers = new PeerView(ctx.bus, ctx.topics, this.self);
    this.ledger = new JobLedger(ctx.bus, ctx.topics, this.self);
    this.answers = new AnsweredRecords(ctx.bus, ctx.topics, this.self);
    this.advert = new AdapterAdvert(ctx);
    this.forwarding = new Forwarding(ctx, requests);
    // The answered record goes out with the reply, before the ledger entry is cleared: a board that
    // sees the entry gone has the reply.
    ctx.intake.push(this.answers, this.ledger);
  }

  async start(): Promise<void> {
    const { bus, topics } = this.ctx;
    const own = topics.fleet(this.self);
    await this.answers.start();
    await this.ledger.start();
    await this.peers.start();
    await this.forwarding.start();
    await bus.subscribe(own.cancel, (m) => this.onCancel(m));
    this.peers.events.on("down", (board) => this.failover(board));
    await this.advert.start();
    // The retained ledgers and peer states arrive just after the subscriptions are granted: let them
    // land before the journal asks holds() and the first request asks runningElsewhere().
    await new Promise((r) => setTimeout(r, 300));
  }

  async stop(): Promise<void> {
    this.forwarding.stop();
    await Promise.all([...this.adoptions]);
    // Stopping while peers serve (the request subscription is already dropped): the board's session
    // ends with its connection, and its advert says so before its offline state, so that no peer
    // adopts it. The last board keeps its session: requests wait in the broker for its return.
    if (this.peers.online().length > 0 && this.ctx.bus.connected) {
      this.ctx.bus.endSessionAtStop = true;
      await this.advert.withdrawSession();
    }
    this.advert.stop();
  }

  runningElsewhere(tenant: string, transaction: string): boolean {
    return this.ledger.owner(tenant, transaction) !== null;
  }

  answeredReply(tenant: string, transaction: string): TenantReply | null {
    return this.answers.reply(tenant, transaction) as TenantReply | null; // a reply this fleet sent, kept as its JSON
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
    const { config, logger } = this.ctx;
    if (!config.fleet.affinity || adapter === null || advertisedAdapters(this.ctx).hot.includes(adapter)) return false;
    const mine = loadOf(this.ctx);
    const target = this.peers
      .online()
      .filter((p) => p.hot.includes(adapter) && (p.load < p.capacity || p.load <= mine))
      .sort((a, b) => a.load - b.load)[0];
    if (!target) return false;
    const ok = await this.forwarding.offer(target.board, msg);
    logger.info({ adapter, to: target.board, accepted: ok }, ok ? "request forwarded to the board holding its adapter" : "forward not taken (no answer in time, refused, or the peer went offline): runs here");
    return ok;
  }

  private onCancel(m: BusMessage): void {
    const body = jsonOf(m.payload);
    if (body && typeof body.tenant === "string" && typeof body.transaction === "string") this.requests.cancel(body.tenant, body.transaction);
  }

  /** `board` went offline: take over this board's share of what its ledger still holds; one board
   *  (the same choice on every board) adopts its MQTT session, for what the broker had sent it
   *  unacknowledged or queued for it. */
  private failover(board: string): void {
    const recorded = this.ledger.entriesOf(board).map((e) => fingerprint(e.msg));
    this.forwarding.peerDown(board, new Set(recorded));
    if (!this.requests.serving) return;
    const boards = [this.self, ...this.peers.online().map((p) => p.board)].sort();
    this.assignSessions(board, boards, recorded);
    // An entry whose answered record is out was answered (the board died before clearing it): only cleared.
    const jobs = this.ledger
      .takeOver(board, (e) => boards[bucket(e.key, boards.length)] === this.self)
      .filter((e) => this.answers.reply(e.tenant, e.transaction) === null);
    if (jobs.length === 0) return;
    this.ctx.logger.warn({ board, jobs: jobs.length, streamed: jobs.filter((e) => e.stream).length }, "board went offline mid-request: its requests are taken over");
    for (const e of jobs) {
      if (e.stream) this.interrupted(e, board);
      else this.requests.inject(e.msg, true);
    }
  }

  /** Every board chooses the same adopter for `board`'s session among the boards online. A session
   *  whose adopter has gone offline too (two boards dying at once) is given to another. */
  private assignSessions(board: string, boards: string[], recorded: string[]): void {
    const now = performance.now();
    const session = this.peers.get(board)?.session ?? null;
    if (session !== null) this.orphans.set(board, { session, recorded, adopter: null, at: now });
    for (const [dead, o] of this.orphans) {
      // Expired by now, or the board is back (it took its session itself).
      if (now - o.at > this.ctx.config.fleet.session_expiry_s * 1000 || this.peers.get(dead)?.online) this.orphans.delete(dead);
      else if (o.adopter === null || o.adopter === board) {
        o.adopter = boards[bucket(`session:${dead}`, boards.length)];
        if (o.adopter !== this.self) continue;
        this.orphans.delete(dead);
        this.adopt(dead, o.session, o.recorded);
      }
    }
  }

  private adopt(board: string, clientId: string, recorded: string[]): void {
    const { logger } = this.ctx;
    const adoption = adoptSession(this.ctx, {
      board,
      clientId,
      recorded,
      answered: (tenant, transaction) => this.answers.reply(tenant, transaction) !== null,
      take: (msg) => this.requests.inject(msg, false),
    });
    this.adoptions.add(adoption);
    void adoption
      .then((r) => logger.info({ board, present: r.present, taken: r.taken, skipped: r.skipped }, r.present ? "session of the offline board adopted: its undelivered requests run here" : "offline board left no session"))
      .finally(() => this.adoptions.delete(adoption));
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

/** The same bucket for a key on every board (exported for tests that need to know a board's choice). */
export function bucket(key: string, n: number): number {
  return createHash("sha1").update(key).digest().readUInt32BE(0) % n;
}
