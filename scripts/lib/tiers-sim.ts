// Hit ratios of the adapter store on a trace, without the engine: the real TieredAdapterStore and
// WarmTier with each warm policy (exclusive tiers: a slot's adapter has no warm copy), over an
// engine stand-in whose loads and images are instant and all the same size. Compared with an ideal
// static cache: the most requested adapters of the trace that fit in the same bytes (hot slots +
// warm budget), which knows the future popularity; and with an online LFU cache of the same size
// that counts every request exactly (never aged): what learning the popularity online costs.
import { MemoryWarmBackend } from "../../src/adapters/store/memory-warm.js";
import { warmPolicy, type WarmPolicyName } from "../../src/adapters/store/policy.js";
import { TieredAdapterStore } from "../../src/adapters/store/store.js";
import { WarmTier } from "../../src/adapters/store/warm.js";
import type { AdapterSlotInfo } from "../../src/engine/types.js";

export interface SimResult {
  policy: WarmPolicyName;
  budgetFraction: number;
  hotHit: number;
  warmHit: number;
  hotWarmHit: number;
  idealHit: number;
  ratioToIdeal: number;
}

const IMAGE = 4096; // the stand-in's image size: only the ratio budget / image matters

class InstantEngine {
  async loadAdapter(slot: number): Promise<AdapterSlotInfo> {
    return { slot, rank: 16, alpha: 16, factor: 1, bytes: IMAGE, modules: ["q"] };
  }
  unloadAdapter(): void {}
  exportAdapter(): Buffer {
    return Buffer.alloc(IMAGE);
  }
  async importAdapter(slot: number): Promise<AdapterSlotInfo> {
    return this.loadAdapter(slot);
  }
}

/** Hit ratio of the best static set of `capacity` adapters for this sequence of requests. */
export function idealStaticHit(requests: number[], capacity: number): number {
  const counts = new Map<number, number>();
  for (const a of requests) counts.set(a, (counts.get(a) ?? 0) + 1);
  const top = [...counts.values()].sort((a, b) => b - a).slice(0, capacity);
  return top.reduce((s, c) => s + c, 0) / requests.length;
}

/** Hit ratio of a cache of `capacity` adapters that evicts the least requested so far and admits a
 *  newcomer requested at least as often as it (exact counts since the start, no slots, no aging). */
export function onlineLfuHit(requests: number[], capacity: number): number {
  const counts = new Map<number, number>();
  const held = new Set<number>();
  let hits = 0;
  for (const a of requests) {
    const c = (counts.get(a) ?? 0) + 1;
    counts.set(a, c);
    if (held.has(a)) hits++;
    else if (held.size < capacity) held.add(a);
    else {
      let victim = -1;
      let least = Infinity;
      for (const h of held) if (counts.get(h)! < least) [victim, least] = [h, counts.get(h)!];
      if (c >= least) {
        held.delete(victim);
        held.add(a);
      }
    }
  }
  return hits / requests.length;
}

export async function simulate(requests: number[], nAdapters: number, slots: number, budgetFraction: number, policy: WarmPolicyName): Promise<SimResult> {
  const budgetImages = Math.floor(nAdapters * budgetFraction);
  const p = warmPolicy(policy);
  const warm = new WarmTier(new MemoryWarmBackend(), budgetImages * IMAGE, p);
  const names = Array.from({ length: nAdapters }, (_, i) => `a${i}`);
  const set = new Set(names);
  const store = new TieredAdapterStore({
    engine: new InstantEngine(), catalog: { resolve: (n) => (set.has(n) ? n : null) }, slots, warm, policy: p, prefetch: false,
  });
  for (const a of requests) {
    const name = names[a];
    if (!(await store.acquire(name))) throw new Error("simulation: no slot (nothing should be pinned)");
    store.release(name);
  }
  const h = store.stats().hits;
  const total = requests.length;
  const ideal = idealStaticHit(requests, slots + budgetImages);
  const hotWarmHit = (h.hot + h.warm) / total;
  return { policy, budgetFraction, hotHit: h.hot / total, warmHit: h.warm / total, hotWarmHit, idealHit: ideal, ratioToIdeal: hotWarmHit / ideal };
}
