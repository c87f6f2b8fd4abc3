// The adapter memory hierarchy as the scheduler sees it (AdapterSlots):
//   hot:  the engine's LoRA slot pool; a slot pinned by running sequences is never evicted.
//   warm: slot images within a byte budget (warm.ts); a promotion is an image copy into a slot.
//   cold: the registered files (GGUF / PEFT), read only, converted by the engine on load.
// The tiers are exclusive: warm holds no copy of what a slot holds, so hot and warm together keep
// as many distinct adapters as their bytes allow. A promotion from warm takes the image out of warm
// (warm -> hot); an adapter evicted from a slot is put in warm (hot -> warm), if warm's policy admits
// it; one loaded from cold goes to warm only when it leaves its slot; warm drops by its policy.
// prefetch() starts moving a queued request's adapter into a free slot off the engine thread, so
// the load overlaps other sequences' steps; prewarm() fills warm with the most requested adapters
// while the daemon is idle.
import type { Logger } from "pino";
import type { AdapterSlotInfo, StepEngine } from "../../engine/types.js";
import { RequestError, type AdapterSlots, type AdapterTier } from "../../scheduler/types.js";
import { LatencyWindow, type LatencySummary } from "./latency.js";
import type { WarmPolicy } from "./policy.js";
import type { WarmStats, WarmTier } from "./warm.js";

/** What the store needs of the registry (registry.ts). */
export interface AdapterCatalog {
  resolve(name: string): string | null;
  /** Why a registered adapter cannot be served (its file changed or is unreadable), else null. */
  problem?(name: string): string | null;
  /** Checks the file against its recorded content hash before a cold load; rejects with the reason. */
  verify?(name: string): Promise<void>;
  /** What the engine made of it (rank, modules, bytes), to keep in the registry. */
  describe?(name: string, info: AdapterSlotInfo): void;
}

type Engine = Pick<StepEngine, "loadAdapter" | "unloadAdapter" | "exportAdapter" | "importAdapter">;

interface Slot {
  name: string | null;
  pins: number;
  lastUsed: number;
  loading: Promise<[AdapterSlotInfo, "warm" | "cold"]> | null;
  info: AdapterSlotInfo | null;
  forgotten: boolean; // removed from the registry: unload when the last pin goes
  prefetched: boolean; // loaded by prefetch and not acquired yet
  evicted: string | null; // the adapter evicted from this slot, whose bytes it still holds until demoted
  source: "warm" | "cold" | null; // where its adapter came from, for the request that caused the move
}

export interface ResidentAdapter {
  name: string;
  slot: number;
  pins: number;
  rank: number;
  bytes: number;
}

export interface TierStats {
  hits: { hot: number; warm: number; cold: number }; // requests by where their adapter was when they asked (prefetch included)
  misses: { hot: number; warm: number }; // acquisitions the tier could not serve
  promotions: { warm: LatencySummary; cold: LatencySummary };
  promoted_bytes: { warm: number; cold: number };
  prefetch: { started: number; hits: number; failed: number };
  prewarmed: number;
  demotions: number; // hot -> warm on eviction
  evictions: number; // hot slots given to another adapter
  hot: { slots: number; resident: number; used_bytes: number };
  warm: WarmStats | null;
}

export interface StoreOptions {
  engine: Engine;
  catalog: AdapterCatalog;
  slots: number;
  warm: WarmTier | null; // null: warm tier off (or an engine without images)
  policy: WarmPolicy; // request counts for warm eviction and pre-warming
  prefetch?: boolean; // default true
  logger?: Logger;
  now?: () => number;
}

/** The per-token scale handed to the engine: the user scale, as llama.cpp's --lora (the engine
 *  applies alpha/rank itself). */
const USER_SCALE = 1.0;

// Engine statuses that mean "this adapter file is bad", not "the engine is broken".
const FILE_PROBLEMS = new Set(["BAD_FILE", "UNSUPPORTED", "INVALID_ARGUMENT"]);

export class TieredAdapterStore implements AdapterSlots {
  private readonly slots: Slot[];
  private readonly engine: Engine;
  private readonly catalog: AdapterCatalog;
  private readonly warm: WarmTier | null;
  private readonly policy: WarmPolicy;
  private readonly logger?: Logger;
  private readonly now: () => number;
  private readonly prefetching: boolean;
  private clock = 0;
  private readonly latency = { warm: new LatencyWindow(), cold: new LatencyWindow() };
  private readonly counters = {
    hits: { hot: 0, warm: 0, cold: 0 },
    promoted_bytes: { warm: 0, cold: 0 },
    prefetch: { started: 0, hits: 0, failed: 0 },
    prewarmed: 0,
    demotions: 0,
    evictions: 0,
  };

  constructor(o: StoreOptions) {
    this.engine = o.engine;
    this.catalog = o.catalog;
    this.warm = o.engine.exportAdapter && o.engine.importAdapter ? o.warm : null;
    this.policy = o.policy;
    this.logger = o.logger;
    this.prefetching = o.prefetch ?? true;
    this.now = o.now ?? (() => performance.now());
    this.slots = Array.from({ length: o.slots }, () => ({
      name: null, pins: 0, lastUsed: 0, loading: null, info: null, forgotten: false, prefetched: false, source: null, evicted: null,
    }));
  }

  get size(): number {
    return this.slots.length;
  }

  async acquire(name: string): Promise<{ slot: number; scale: number } | null> {
    const found = this.slots.findIndex((s) => s.name === name && !s.forgotten);
    if (found >= 0) {
      const s = this.slots[found];
      this.policy.touch(name);
      s.pins++;
      s.lastUsed = ++this.clock;
      const prefetched = s.prefetched;
      s.prefetched = false;
      if (s.loading) {
        try {
          await s.loading;
        } catch (err) {
          s.pins--;
          throw err;
        }
      }
      // A prefetched adapter counts where the prefetch found it: the request caused that move.
      if (prefetched) this.counters.prefetch.hits++;
      this.counters.hits[prefetched ? (s.source ?? "hot") : "hot"]++;
      return { slot: found, scale: USER_SCALE };
    }
    this.check(name);
    const index = this.freeSlot();
    if (index < 0) return null;
    const s = this.slots[index];
    Object.assign(s, { name, pins: 1, lastUsed: ++this.clock, forgotten: false, info: null, prefetched: false });
    this.policy.touch(name); // before the load: warm admission weighs this request too
    try {
      await this.fill(index, name);
      this.counters.hits[s.source ?? "cold"]++;
      return { slot: index, scale: USER_SCALE };
    } catch (err) {
      Object.assign(s, { name: null, pins: 0 });
      throw err;
    }
  }

  release(name: string): void {
    const index = this.slots.findIndex((s) => s.name === name && s.pins > 0);
    if (index < 0) return;
    const s = this.slots[index];
    s.pins--;
    if (s.pins === 0 && s.forgotten) this.unload(index);
  }

  /** Starts moving `name` into a free slot (off the engine thread); never throws. */
  prefetch(name: string): void {
    if (!this.prefetching) return;
    try {
      if (this.slots.some((s) => s.name === name) || this.catalog.resolve(name) === null || this.catalog.problem?.(name)) return;
      // Prefetch never takes a slot from an adapter that was used since the last prefetch claim: at
      // most half the slots hold prefetched adapters nobody has acquired yet.
      if (this.slots.filter((s) => s.prefetched).length >= Math.max(1, this.slots.length >> 1)) return;
      const index = this.freeSlot();
      if (index < 0) return;
      const s = this.slots[index];
      Object.assign(s, { name, pins: 0, lastUsed: ++this.clock, forgotten: false, info: null, prefetched: true });
      this.counters.prefetch.started++;
      this.fill(index, name).catch((err: unknown) => {
        this.counters.prefetch.failed++;
        this.logger?.debug({ err, adapter: name }, "prefetch failed");
        if (s.name === name && s.pins === 0) Object.assign(s, { name: null, prefetched: false });
      });
    } catch (err) {
      this.logger?.warn({ err, adapter: name }, "prefetch refused");
    }
  }

  /** Where `name` is now (cheap, synchronous); null when it is not registered. */
  tier(name: string): AdapterTier | null {
    if (this.slots.some((s) => s.name === name && s.info !== null && !s.forgotten)) return "hot";
    if (this.catalog.resolve(name) === null) return null;
    return this.warm?.has(name) ? "warm" : "cold";
  }

  /** After an admin remove: unload now, or when the running sequences release it; drop the warm copy. */
  forget(name: string): void {
    for (const s of this.slots) if (s.evicted === name) s.evicted = null; // not to warm: it may be another file now
    this.warm?.delete(name);
    this.policy.forget(name);
    this.slots.forEach((s, i) => {
      if (s.name !== name) return;
      s.forgotten = true;
      if (s.pins === 0 && !s.loading) this.unload(i);
    });
  }

  /**
   * While idle: the most requested adapters that are neither hot nor warm are loaded from cold
   * through a free slot and moved to warm, within its budget. Stops when `busy()` says requests came in.
   */
  async prewarm(busy: () => boolean, limit = 64): Promise<number> {
    if (!this.warm) return 0;
    let done = 0;
    for (const name of this.policy.ranked(limit)) {
      if (busy()) break;
      if (this.warm.has(name) || this.slots.some((s) => s.name === name) || this.catalog.resolve(name) === null) continue;
      if (this.catalog.problem?.(name)) continue;
      // Warm full of more requested adapters: loading more would be wasted.
      if (!this.warm.canAdmit(name, this.warm.meanImageBytes())) break;
      const index = this.freeSlot();
      if (index < 0) break;
      const s = this.slots[index];
      Object.assign(s, { name, pins: 0, lastUsed: 0, forgotten: false, info: null, prefetched: false });
      try {
        await this.fill(index, name);
      } catch (err) {
        if (s.name === name && s.pins === 0) Object.assign(s, { name: null });
        this.logger?.debug({ err, adapter: name }, "pre-warm failed");
        continue;
      }
      if (s.name !== name || s.lastUsed !== 0 || s.forgotten) continue; // a request used it meanwhile: it stays hot
      // Into warm, out of the slot (exclusive tiers): the slot is free again for the next one.
      const admitted = this.demote(index, name);
      Object.assign(s, { name: null, info: null });
      if (!admitted) break; // warm is full of more requested adapters
      this.counters.prewarmed++;
      done++;
    }
    return done;
  }

  /** Names of the adapters held in warm (none in a slot: the tiers are exclusive). */
  warmNames(): string[] {
    return this.warm ? [...this.warm.names()] : [];
  }

  resident(): ResidentAdapter[] {
    return this.slots.flatMap((s, slot) =>
      s.name && s.info ? [{ name: s.name, slot, pins: s.pins, rank: s.info.rank, bytes: s.info.bytes }] : [],
    );
  }

  stats(): TierStats {
    const h = this.counters.hits;
    const resident = this.resident();
    return {
      hits: { ...h },
      misses: { hot: h.warm + h.cold, warm: h.cold },
      promotions: { warm: this.latency.warm.summary(), cold: this.latency.cold.summary() },
      promoted_bytes: { ...this.counters.promoted_bytes },
      prefetch: { ...this.counters.prefetch },
      prewarmed: this.counters.prewarmed,
      demotions: this.counters.demotions,
      evictions: this.counters.evictions,
      hot: { slots: this.slots.length, resident: resident.length, used_bytes: resident.reduce((a, r) => a + r.bytes, 0) },
      warm: this.warm?.stats() ?? null,
    };
  }

  // ---- moving adapters ----

  private check(name: string): void {
    if (this.catalog.resolve(name) === null) throw new RequestError("ADAPTER_NOT_FOUND", `unknown adapter ${JSON.stringify(name)}`);
    const problem = this.catalog.problem?.(name);
    if (problem) throw new RequestError("ADAPTER_INVALID", `adapter ${JSON.stringify(name)}: ${problem}`);
  }

  /** Loads `name` into slot `index` (already claimed) from warm, else from cold. */
  private async fill(index: number, name: string): Promise<void> {
    const s = this.slots[index];
    s.loading = this.promote(index, name);
    try {
      [s.info, s.source] = await s.loading;
    } finally {
      s.loading = null;
    }
  }

  private async promote(index: number, name: string): Promise<[AdapterSlotInfo, "warm" | "cold"]> {
    const t0 = this.now();
    const image = this.warm ? await this.warm.get(name) : null;
    // Exclusive tiers: the image leaves warm as the slot takes it, and that room is there for the
    // evicted adapter's image, which is taken before anything is loaded over it.
    if (image) this.warm!.delete(name);
    this.demoteEvicted(index);
    if (image) {
      try {
        const info = await this.engine.importAdapter!(index, image);
        this.latency.warm.add(this.now() - t0);
        this.counters.promoted_bytes.warm += info.bytes;
        return [info, "warm"];
      } catch (err) {
        // An image the engine refuses is useless (it is out of warm already): read the file instead.
        this.logger?.warn({ err, adapter: name }, "warm image refused; loading from the file");
      }
    }
    const path = this.catalog.resolve(name);
    if (path === null) throw new RequestError("ADAPTER_NOT_FOUND", `unknown adapter ${JSON.stringify(name)}`);
    let info: AdapterSlotInfo;
    try {
      await this.catalog.verify?.(name);
      info = await this.engine.loadAdapter(index, path);
    } catch (err) {
      if (err instanceof RequestError) throw err;
      const code = (err as { code?: string }).code;
      const message = `adapter ${JSON.stringify(name)} (${path}) failed to load: ${(err as Error).message}`;
      throw new RequestError(code === undefined || FILE_PROBLEMS.has(code) ? "ADAPTER_INVALID" : "INTERNAL", message);
    }
    this.latency.cold.add(this.now() - t0);
    this.counters.promoted_bytes.cold += info.bytes;
    this.catalog.describe?.(name, info);
    return [info, "cold"];
  }

  /** Puts the image of a ready slot in warm unless it is there already; whether warm admitted it
   *  (decided before the write, which runs on in the background). */
  private demote(index: number, name: string): boolean {
    if (!this.warm || this.warm.has(name)) return false;
    let image: Buffer;
    try {
      image = this.engine.exportAdapter!(index);
    } catch (err) {
      this.logger?.warn({ err, adapter: name }, "slot export failed");
      return false;
    }
    this.warm.put(name, image).catch((err: unknown) => this.logger?.warn({ err, adapter: name }, "warm write failed"));
    return this.warm.has(name);
  }

  /** Puts the adapter last evicted from slot `index` in warm, before the slot is loaded over. */
  private demoteEvicted(index: number): void {
    const s = this.slots[index];
    const evicted = s.evicted;
    s.evicted = null;
    if (evicted === null || this.slots.some((o) => o.name === evicted)) return; // requested again meanwhile: hot elsewhere
    if (this.demote(index, evicted)) this.counters.demotions++;
  }

  /**
   * An empty slot, else an unpinned one chosen by the policy (demoted to warm), else -1. The evicted
   * adapter is not unloaded: the engine loads over an unreferenced slot, and unloading is refused
   * while a step is in flight, which is when a prefetch wants a slot.
   */
  private freeSlot(): number {
    const free = this.slots.findIndex((s) => s.name === null);
    if (free >= 0) return free;
    let victim = -1;
    let best: [number, number, number] = [Infinity, Infinity, Infinity];
    this.slots.forEach((s, i) => {
      if (s.pins > 0 || s.loading) return;
      // Prefetched adapters go last (their requests are queued); then the least requested (LFU:
      // an adapter requested once does not push out a popular one); ties, the least recently used.
      const key: [number, number, number] = [s.prefetched ? 1 : 0, s.forgotten ? -1 : this.policy.frequency(s.name!), s.lastUsed];
      if (key[0] < best[0] || (key[0] === best[0] && (key[1] < best[1] || (key[1] === best[1] && key[2] < best[2])))) [victim, best] = [i, key];
    });
    if (victim >= 0) {
      const v = this.slots[victim];
      const evicted = v.info && !v.forgotten ? v.name : null; // demoted by the load that takes the slot
      Object.assign(v, { name: null, pins: 0, info: null, forgotten: false, prefetched: false, evicted });
      this.counters.evictions++;
    }
    return victim;
  }

  /** Frees a slot of a removed adapter. The engine may refuse while a step runs: the slot is free
   *  for us either way, and the next load overwrites it. */
  private unload(index: number): void {
    Object.assign(this.slots[index], { name: null, pins: 0, info: null, forgotten: false, prefetched: false, evicted: null });
    try {
      this.engine.unloadAdapter(index);
    } catch (err) {
      this.logger?.debug({ err, slot: index }, "slot unload deferred to the next load");
    }
  }
}
