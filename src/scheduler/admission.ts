// Cache-aware admission: when a sequence frees up, prefer a queued request whose adapter is already
// in a slot (no load at all), then one whose adapter is warm (an image copy), before one that must
// be read from its file, so scarce slots churn less. The fair queue still decides among equals
// (tenants in turn), and no request is passed over more than `maxPassOver` times: one that has been
// is taken before anything else its turn allows.
import type { FairQueue } from "./queue.js";
import type { AdapterTier, Job } from "./types.js";

export const DEFAULT_MAX_PASS_OVER = 4;

const RANK: Record<AdapterTier, number> = { hot: 0, warm: 1, cold: 2 };

export class CacheAwareAdmission<T extends { job: Job }> {
  private readonly passedOver = new WeakMap<T, number>();

  constructor(
    private readonly tierOf: ((name: string) => AdapterTier | null) | undefined,
    private readonly maxPassOver = DEFAULT_MAX_PASS_OVER,
  ) {}

  /** Takes the next item to start among those `accept` allows, or undefined. */
  take(queue: FairQueue<T>, accept: (item: T) => boolean): T | undefined {
    if (!this.tierOf) return queue.take(accept);
    const starved = queue.take((t) => accept(t) && (this.passedOver.get(t) ?? 0) >= this.maxPassOver);
    if (starved) return starved;
    for (const level of [RANK.hot, RANK.warm]) {
      const chosen = queue.take((t) => accept(t) && this.rank(t) <= level);
      if (!chosen) continue;
      // Everyone who could have started instead was passed over once.
      for (const t of queue.heads()) if (accept(t) && this.rank(t) > level) this.passedOver.set(t, (this.passedOver.get(t) ?? 0) + 1);
      return chosen;
    }
    return queue.take(accept);
  }

  /** How many times `item` was passed over (tests, logs). */
  passes(item: T): number {
    return this.passedOver.get(item) ?? 0;
  }

  private rank(t: T): number {
    const adapter = t.job.adapter;
    if (adapter === null) return RANK.hot;
    return RANK[this.tierOf!(adapter) ?? "cold"];
  }
}
