// The LoRA slots of an offline batch: the daemon's tiered store (adapters/store/) with the warm
// tier and prefetch off, each adapter named by its file path; a sequence's adapter stays pinned
// while it runs, and the least recently used unpinned one gives up its slot.
import { LruPolicy } from "../adapters/store/policy.js";
import { TieredAdapterStore } from "../adapters/store/store.js";
import type { StepEngine } from "../engine/types.js";

export function batchAdapterSlots(engine: Pick<StepEngine, "loadAdapter" | "unloadAdapter">, nSlots: number): TieredAdapterStore {
  return new TieredAdapterStore({ engine, catalog: { resolve: (path) => path }, slots: nSlots, warm: null, policy: new LruPolicy(), prefetch: false });
}
