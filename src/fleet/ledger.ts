// The fleet's job ledger: each board keeps one retained message per request it runs,
// <base>/fleet/<board>/jobs/<tenant>/<transaction>, from the moment it accepts the request until
// its final reply is out. Every board reads every ledger, so any board knows which board runs a
// transaction (fleet-wide cancel and dedupe) and what a board that died was running (failover).
import type { IntakeObserver } from "../daemon/context.js";
import type { Bus, BusMessage } from "../mqtt/client.js";
import type { Topics } from "../mqtt/topics.js";
import { fromWire, jsonOf, toWire } from "./wire.js";

export interface JobEntry {
  board: string;
  key: string; // tenant/transaction
  tenant: string;
  transaction: string;
  stream: boolean;
  msg: BusMessage;
}

export class JobLedger implements IntakeObserver {
  private readonly byBoard = new Map<string, Map<string, JobEntry>>();
  private readonly mine = new Map<string, string>(); // key -> its ledger topic

  constructor(
    private readonly bus: Bus,
    private readonly topics: Topics,
    private readonly self: string,
  ) {}

  async start(): Promise<void> {
    await this.bus.subscribe(this.topics.allJobs, (m) => this.onEntry(m));
  }

  accepted(req: { key: string; tenant: string; transaction: string; msg: BusMessage; stream: boolean }): void {
    const topic = this.topics.job(this.self, req.tenant, req.transaction);
    this.mine.set(req.key, topic);
    const entry = { tenant: req.tenant, transaction: req.transaction, stream: req.stream, msg: toWire(req.msg) };
    void this.bus.setRetained(topic, JSON.stringify(entry)).catch(() => undefined);
  }

  answered(key: string): void {
    const topic = this.mine.get(key);
    if (topic === undefined) return;
    this.mine.delete(key);
    void this.bus.clearRetained(topic).catch(() => undefined);
  }

  /** The board other than this one whose ledger holds tenant/transaction, else null. */
  owner(tenant: string, transaction: string): string | null {
    const key = `${tenant}/${transaction}`;
    for (const [board, jobs] of this.byBoard) if (board !== this.self && jobs.has(key)) return board;
    return null;
  }

  /** True while this board's own entry for `key` is in the broker (no other board took it over). */
  holds(key: string): boolean {
    return this.byBoard.get(this.self)?.has(key) ?? false;
  }

  /** Takes `board`'s entries over: they are cleared in the broker and returned. */
  takeOver(board: string, pick: (e: JobEntry) => boolean): JobEntry[] {
    const jobs = [...(this.byBoard.get(board)?.values() ?? [])].filter(pick);
    for (const e of jobs) {
      this.byBoard.get(board)!.delete(e.key);
      void this.bus.clearRetained(this.topics.job(board, e.tenant, e.transaction)).catch(() => undefined);
    }
    return jobs;
  }

  entriesOf(board: string): JobEntry[] {
    return [...(this.byBoard.get(board)?.values() ?? [])];
  }

  private onEntry(m: BusMessage): void {
    const prefix = `${this.topics.base}/fleet/`;
    const parts = m.topic.slice(prefix.length).split("/"); // <board>/jobs/<tenant>/<transaction>
    if (!m.topic.startsWith(prefix) || parts.length !== 4 || parts[1] !== "jobs") return;
    const [board, , tenant, encoded] = parts;
    let transaction: string;
    try {
      transaction = decodeURIComponent(encoded);
    } catch {
      return;
    }
    const key = `${tenant}/${transaction}`;
    const jobs = this.byBoard.get(board) ?? new Map<string, JobEntry>();
    this.byBoard.set(board, jobs);
    const body = jsonOf(m.payload);
    const msg = body ? fromWire(body.msg) : null;
    if (!body || !msg) jobs.delete(key); // cleared: answered, or taken over
    else jobs.set(key, { board, key, tenant, transaction, stream: body.stream === true, msg });
  }
}
