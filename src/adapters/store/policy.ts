// Which warm adapter to drop when the warm budget is full (and, through frequency(), which slot the
// store frees: store.ts). Two policies, measured against each other on the power-law trace by
// `npm run bench:tiers`:
//   lru: the least recently used goes first.
//   lfu: a count of requests per adapter (kept for every adapter seen, warm or not: a few bytes
//        each), halved every `agingPeriod` requests so that popularity can shift; the least
//        frequently requested goes first (ties: least recent), and a newcomer is admitted only if
//        it is requested at least as often as the adapter it would displace (TinyLFU's rule), so
//        a burst of one-off requests cannot flush the popular adapters out.

export type WarmPolicyName = "lru" | "lfu";
export const WARM_POLICIES: readonly WarmPolicyName[] = ["lru", "lfu"];

export interface WarmPolicy {
  /** A request for `name` (whatever tier served it). */
  touch(name: string): void;
  /** The resident adapter to evict next, skipping `protect`; null when none may go. */
  victim(resident: Iterable<string>, protect?: (name: string) => boolean): string | null;
  /** Whether `candidate` may displace `victim`. */
  admits(candidate: string, victim: string): boolean;
  /** Requests seen for `name` (lfu: after aging; lru: 0). */
  frequency(name: string): number;
  /** The most requested adapters first (lfu), most recent first (lru). */
  ranked(limit: number): string[];
  forget(name: string): void;
}

export class LruPolicy implements WarmPolicy {
  private clock = 0;
  private readonly last = new Map<string, number>();

  touch(name: string): void {
    this.last.set(name, ++this.clock);
  }

  victim(resident: Iterable<string>, protect?: (name: string) => boolean): string | null {
    let best: string | null = null;
    let bestAt = Infinity;
    for (const name of resident) {
      if (protect?.(name)) continue;
      const at = this.last.get(name) ?? 0;
      if (at < bestAt) [best, bestAt] = [name, at];
    }
    return best;
  }

  admits(): boolean {
    return true;
  }

  frequency(): number {
    return 0;
  }

  ranked(limit: number): string[] {
    return [...this.last.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([n]) => n);
  }

  forget(name: string): void {
    this.last.delete(name);
  }
}

export class LfuPolicy implements WarmPolicy {
  private readonly lru = new LruPolicy();
  private readonly count = new Map<string, number>();
  private seen = 0;

  // Measured on the power-law trace (bench:tiers, README "Which policy"): at a warm budget of 25%
  // of all adapters, halving every 5k requests costs 0.016 of the ideal's hit ratio against 10k,
  // and 50k or 1M gain 0.009; 10k follows shifts in popularity sooner.
  constructor(private readonly agingPeriod = 10_000) {}

  touch(name: string): void {
    this.lru.touch(name);
    this.count.set(name, (this.count.get(name) ?? 0) + 1);
    if (++this.seen >= this.agingPeriod) this.age();
  }

  victim(resident: Iterable<string>, protect?: (name: string) => boolean): string | null {
    let best: string[] = [];
    let bestCount = Infinity;
    for (const name of resident) {
      if (protect?.(name)) continue;
      const c = this.frequency(name);
      if (c < bestCount) [best, bestCount] = [[name], c];
      else if (c === bestCount) best.push(name);
    }
    return best.length === 0 ? null : this.lru.victim(best);
  }

  admits(candidate: string, victim: string): boolean {
    return this.frequency(candidate) >= this.frequency(victim);
  }

  frequency(name: string): number {
    return this.count.get(name) ?? 0;
  }

  ranked(limit: number): string[] {
    return [...this.count.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([n]) => n);
  }

  forget(name: string): void {
    this.lru.forget(name);
    this.count.delete(name);
  }

  /** Halves every count (drops the zeros): old popularity fades. */
  private age(): void {
    this.seen = 0;
    for (const [name, c] of this.count) {
      if (c >= 2) this.count.set(name, c >> 1);
      else this.count.delete(name);
    }
  }
}

export function warmPolicy(name: WarmPolicyName): WarmPolicy {
  return name === "lfu" ? new LfuPolicy() : new LruPolicy();
}
