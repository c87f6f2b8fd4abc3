// The fleet's memory of answered transactions. A board that publishes the final reply of a request
// carrying the tenant's transaction also keeps that reply, retained, under
// <base>/fleet/<board>/answered/<tenant>/<transaction> with an MQTT 5 message expiry: a late copy of
// the transaction (a tenant's retry, a redelivery) that the broker hands to any board gets the same
// reply instead of a second run. Each board keeps what it read for the time the broker said was
// left (relative, so the boards' clocks need not agree), at most MAX_KEPT records.
import type { IntakeObserver } from "../daemon/context.js";
import type { Bus, BusMessage } from "../mqtt/client.js";
import type { Topics } from "../mqtt/topics.js";
import { jsonOf } from "./wire.js";

/** As long as a board's own dedupe remembers a reply (src/daemon/dedupe.ts). */
export const ANSWERED_TTL_S = 600;
const MAX_KEPT = 4096;

type Reply = Record<string, unknown>;

export class AnsweredRecords implements IntakeObserver {
  private readonly replies = new Map<string, { reply: Reply; until: number }>(); // insertion order = age

  constructor(
    private readonly bus: Bus,
    private readonly topics: Topics,
    private readonly self: string,
    private readonly now: () => number = () => performance.now(),
  ) {}

  async start(): Promise<void> {
    await this.bus.subscribe(this.topics.allAnswered, (m) => this.onRecord(m));
  }

  accepted(): void {}

  /** Goes out in the same socket write as the reply (both are published in one tick): a board
   *  killed just after it has sent both or neither, and the failover skips a request answered. */
  replying(key: string, _route: unknown, reply: Reply, remember: boolean): void {
    if (!remember) return;
    const cut = key.indexOf("/");
    const [tenant, transaction] = [key.slice(0, cut), key.slice(cut + 1)];
    this.keep(key, reply, ANSWERED_TTL_S);
    const topic = this.topics.answered(this.self, tenant, transaction);
    void this.bus.publish(topic, JSON.stringify(reply), { retain: true, expirySeconds: ANSWERED_TTL_S }).catch(() => undefined);
  }

  answered(): void {}

  /** The final reply some board (this one included) gave tenant/transaction, else null. */
  reply(tenant: string, transaction: string): Reply | null {
    const key = `${tenant}/${transaction}`;
    const hit = this.replies.get(key);
    if (!hit) return null;
    if (this.now() <= hit.until) return hit.reply;
    this.replies.delete(key);
    return null;
  }

  private keep(key: string, reply: Reply, seconds: number): void {
    this.replies.delete(key);
    this.replies.set(key, { reply, until: this.now() + seconds * 1000 });
    while (this.replies.size > MAX_KEPT) this.replies.delete(this.replies.keys().next().value as string);
  }

  private onRecord(m: BusMessage): void {
    const prefix = `${this.topics.base}/fleet/`;
    const parts = m.topic.slice(prefix.length).split("/"); // <board>/answered/<tenant>/<transaction>
    if (!m.topic.startsWith(prefix) || parts.length !== 4 || parts[1] !== "answered") return;
    let transaction: string;
    try {
      transaction = decodeURIComponent(parts[3]);
    } catch {
      return;
    }
    const key = `${parts[2]}/${transaction}`;
    const reply = jsonOf(m.payload);
    if (!reply) this.replies.delete(key);
    else this.keep(key, reply, m.expirySeconds ?? ANSWERED_TTL_S);
  }
}
