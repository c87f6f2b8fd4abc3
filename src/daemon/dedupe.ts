// QoS-1 redelivery (after a reconnect) may hand the daemon the same request twice. Requests are
// keyed by tenant + client transaction: a copy of one still running is dropped, a copy of one
// answered recently gets the same final reply again instead of a second generation.
import type { Clock } from "../runtime/clock.js";

export class Dedupe<Reply> {
  private readonly running = new Set<string>();
  private readonly done = new Map<string, { reply: Reply; at: number }>(); // insertion order = age

  constructor(
    private readonly clock: Pick<Clock, "now">,
    private readonly capacity = 256,
    private readonly ttlMs = 10 * 60_000,
  ) {}

  /** "new" (caller runs it, then calls finish), "running", or the earlier reply. */
  check(key: string): "new" | "running" | { reply: Reply } {
    if (this.running.has(key)) return "running";
    const hit = this.done.get(key);
    if (hit && this.clock.now() - hit.at <= this.ttlMs) return { reply: hit.reply };
    this.done.delete(key);
    this.running.add(key);
    return "new";
  }

  finish(key: string, reply: Reply): void {
    this.running.delete(key);
    this.done.delete(key);
    this.done.set(key, { reply, at: this.clock.now() });
    while (this.done.size > this.capacity) this.done.delete(this.done.keys().next().value as string);
  }

  /** A request that was refused before it ran may be sent again. */
  forget(key: string): void {
    this.running.delete(key);
    this.done.delete(key);
  }
}
