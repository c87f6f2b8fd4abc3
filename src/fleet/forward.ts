// Affinity forwarding between two boards, in two phases, so that no board compares its clock with
// another's and a request runs on exactly one of them:
// 1. the sender publishes {id, from, msg} on <base>/fleet/<peer>/forward and waits
//    fleet.forward_timeout_ms, by its own clock, for the answer on <base>/fleet/<sender>/accepted;
// 2. the peer, if it serves, holds the request and answers {id, ok: true}, else {id, ok: false};
// 3. only if the answer came in time does the sender commit ({id, commit: true} on the peer's
//    forward topic): a late answer gets no commit, and the peer drops what it holds after a while;
// 4. on the commit the peer runs the request (its ledger entry goes out first) and says
//    {id, running: true}, or {id, running: false} when it no longer holds it or no longer serves;
// 5. the sender hands the request over (closes its own journal and ledger entry) on "running", and
//    runs it itself on "not running" or when the peer goes offline before saying (unless the peer's
//    ledger had it: the failover runs it then).
import { randomUUID } from "node:crypto";
import type { DaemonContext } from "../daemon/context.js";
import type { BusMessage } from "../mqtt/client.js";
import { fingerprint } from "./adopt.js";
import type { RequestPort } from "./fleet.js";
import { fromWire, jsonOf, toWire } from "./wire.js";

/** A held request the sender did not commit is dropped after this many forward timeouts. */
const HOLD_TIMEOUTS = 4;

interface Offer {
  peer: string;
  fingerprint: string;
  committed: boolean;
  settle(handedOver: boolean): void;
}

export class Forwarding {
  private readonly offers = new Map<string, Offer>(); // sender side, by forward id
  private readonly held = new Map<string, { msg: BusMessage; from: string; timer: NodeJS.Timeout }>(); // peer side

  constructor(
    private readonly ctx: DaemonContext,
    private readonly requests: RequestPort,
  ) {}

  async start(): Promise<void> {
    const { bus, topics, boardId } = this.ctx;
    await bus.subscribe(topics.fleet(boardId).forward, (m) => this.onForward(m));
    await bus.subscribe(topics.fleet(boardId).accepted, (m) => this.onAnswer(m));
  }

  /** Uncommitted offers run here; committed ones are the peer's. */
  stop(): void {
    for (const o of this.offers.values()) o.settle(o.committed);
    for (const h of this.held.values()) clearTimeout(h.timer);
    this.held.clear();
  }

  /** Offers `msg` to `peer`: resolves true once the peer runs it, false to run it here. */
  offer(peer: string, msg: BusMessage): Promise<boolean> {
    const { bus, topics, boardId, config } = this.ctx;
    const id = randomUUID();
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => !this.offers.get(id)?.committed && offer.settle(false), config.fleet.forward_timeout_ms);
      const offer: Offer = {
        peer,
        fingerprint: fingerprint(msg),
        committed: false,
        settle: (handedOver) => {
          clearTimeout(timer);
          this.offers.delete(id);
          resolve(handedOver);
        },
      };
      this.offers.set(id, offer);
      bus.publish(topics.fleet(peer).forward, JSON.stringify({ id, from: boardId, msg: toWire(msg) })).catch(() => offer.settle(false));
    });
  }

  /** `peer` went offline; `recorded`: the fingerprints of the requests in its ledger. */
  peerDown(peer: string, recorded: Set<string>): void {
    for (const o of [...this.offers.values()]) if (o.peer === peer) o.settle(o.committed && recorded.has(o.fingerprint));
  }

  private onForward(m: BusMessage): void {
    const body = jsonOf(m.payload);
    if (!body || typeof body.id !== "string" || typeof body.from !== "string") return;
    const reply = (answer: Record<string, unknown>) =>
      void this.ctx.bus.publish(this.ctx.topics.fleet(body.from as string).accepted, JSON.stringify({ id: body.id, ...answer })).catch(() => undefined);
    if (body.commit === true) {
      const h = this.held.get(body.id);
      this.held.delete(body.id);
      if (h) clearTimeout(h.timer);
      const running = h !== undefined && this.requests.serving;
      // Taken first (its ledger entry goes out before the answer): should this board die right after,
      // its peers find the request in its ledger.
      if (running) this.requests.inject(h.msg, true);
      return reply({ running });
    }
    const msg = fromWire(body.msg);
    const ok = msg !== null && this.requests.serving;
    if (ok) {
      const holdMs = HOLD_TIMEOUTS * this.ctx.config.fleet.forward_timeout_ms;
      const timer = setTimeout(() => this.held.delete(body.id as string), holdMs).unref();
      this.held.set(body.id, { msg, from: body.from, timer });
    }
    reply({ ok });
  }

  private onAnswer(m: BusMessage): void {
    const body = jsonOf(m.payload);
    const o = body && typeof body.id === "string" ? this.offers.get(body.id) : undefined;
    if (!body || !o) return;
    const id = body.id as string;
    if (typeof body.running === "boolean") return o.settle(body.running);
    if (o.committed) return; // a second answer to the offer
    if (body.ok !== true) return o.settle(false);
    o.committed = true;
    const { bus, topics, boardId } = this.ctx;
    bus.publish(topics.fleet(o.peer).forward, JSON.stringify({ id, from: boardId, commit: true })).catch(() => o.settle(false));
  }
}
