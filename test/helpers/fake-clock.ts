// A Clock (src/runtime/clock.ts) whose time moves only when the test says: advance(ms) runs every
// timer that falls due on the way, in time order, each seeing now() at its due time.
import type { Clock, Timer } from "../../src/runtime/clock.js";

interface Pending extends Timer {
  at: number;
  every: number | null; // interval period; null for a one-shot timer
  fn: () => void;
  id: number;
}

export class FakeClock implements Clock {
  private time: number;
  private nextId = 0;
  private readonly timers = new Set<Pending>();

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, null);
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, Math.max(1, ms));
  }

  clearTimeout(timer: Timer): void {
    this.timers.delete(timer as Pending);
  }

  /** Timers waiting. */
  get pending(): number {
    return this.timers.size;
  }

  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers].filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.time = due.at;
      if (due.every === null) this.timers.delete(due);
      else due.at += due.every;
      due.fn();
    }
    this.time = end;
  }

  private add(fn: () => void, ms: number, every: number | null): Timer {
    const t: Pending = { at: this.time + Math.max(0, ms), every, fn, id: this.nextId++, unref: () => t };
    this.timers.add(t);
    return t;
  }
}
