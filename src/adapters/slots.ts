// AdapterSlots over the engine's LoRA slot pool: an adapter pinned by running sequences stays;
// when a new one needs a slot and none is free, the least recently used unpinned one is unloaded.
import { accessSync, constants } from "node:fs";
import type { AdapterSlotInfo, StepEngine } from "../engine/types.js";
import { RequestError, type AdapterSlots } from "../scheduler/types.js";

interface Slot {
  name: string | null;
  pins: number;
  lastUsed: number;
  loading: Promise<AdapterSlotInfo> | null;
  info: AdapterSlotInfo | null;
  forgotten: boolean; // removed from the registry: unload when the last pin goes
}

export interface SlotStats {
  hits: number;
  loads: number;
  evictions: number;
}

export interface ResidentAdapter {
  name: string;
  slot: number;
  pins: number;
  rank: number;
  bytes: number;
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** The per-token scale handed to the engine: the user scale, as llama.cpp's --lora (the
 *  engine applies alpha/rank itself). */
const USER_SCALE = 1.0;

export class LruAdapterSlots implements AdapterSlots {
  private readonly slots: Slot[];
  private clock = 0;
  readonly stats: SlotStats = { hits: 0, loads: 0, evictions: 0 };

  constructor(
    private readonly engine: Pick<StepEngine, "loadAdapter" | "unloadAdapter">,
    private readonly registry: { resolve(name: string): string | null },
    nSlots: number,
  ) {
    this.slots = Array.from({ length: nSlots }, () => ({ name: null, pins: 0, lastUsed: 0, loading: null, info: null, forgotten: false }));
  }

  async acquire(name: string): Promise<{ slot: number; scale: number } | null> {
    const found = this.slots.findIndex((s) => s.name === name && !s.forgotten);
    if (found >= 0) {
      const s = this.slots[found];
      s.pins++;
      s.lastUsed = ++this.clock;
      if (s.loading) {
        try {
          await s.loading;
        } catch (err) {
          s.pins--;
          throw err;
        }
      }
      this.stats.hits++;
      return { slot: found, scale: USER_SCALE };
    }
    const path = this.registry.resolve(name);
    if (path === null) throw new RequestError("ADAPTER_NOT_FOUND", `unknown adapter ${JSON.stringify(name)}`);
    const index = this.freeSlot();
    if (index < 0) return null;
    const s = this.slots[index];
    Object.assign(s, { name, pins: 1, lastUsed: ++this.clock, forgotten: false, info: null });
    s.loading = this.engine.loadAdapter(index, path);
    try {
      s.info = await s.loading;
      this.stats.loads++;
      return { slot: index, scale: USER_SCALE };
    } catch (err) {
      Object.assign(s, { name: null, pins: 0 });
      // Deleted or made unreadable since it was registered: the admin's to fix, not an engine fault.
      if (!readable(path)) throw new RequestError("ADAPTER_INVALID", `adapter ${JSON.stringify(name)}: ${path} is missing or unreadable`);
      throw new RequestError("INTERNAL", `adapter ${JSON.stringify(name)} failed to load: ${(err as Error).message}`);
    } finally {
      s.loading = null;
    }
  }

  release(name: string): void {
    const index = this.slots.findIndex((s) => s.name === name && s.pins > 0);
    if (index < 0) return;
    const s = this.slots[index];
    s.pins--;
    if (s.pins === 0 && s.forgotten) this.unload(index);
  }

  /** After an admin remove: unload now, or when the running sequences release it. */
  forget(name: string): void {
    this.slots.forEach((s, i) => {
      if (s.name !== name) return;
      s.forgotten = true;
      if (s.pins === 0 && !s.loading) this.unload(i);
    });
  }

  resident(): ResidentAdapter[] {
    return this.slots.flatMap((s, slot) =>
      s.name && s.info ? [{ name: s.name, slot, pins: s.pins, rank: s.info.rank, bytes: s.info.bytes }] : [],
    );
  }

  get size(): number {
    return this.slots.length;
  }

  /** A free slot, else the least recently used unpinned one (unloaded), else -1. */
  private freeSlot(): number {
    const free = this.slots.findIndex((s) => s.name === null);
    if (free >= 0) return free;
    let victim = -1;
    this.slots.forEach((s, i) => {
      if (s.pins === 0 && !s.loading && (victim < 0 || s.lastUsed < this.slots[victim].lastUsed)) victim = i;
    });
    if (victim >= 0) {
      this.unload(victim);
      this.stats.evictions++;
    }
    return victim;
  }

  private unload(index: number): void {
    this.engine.unloadAdapter(index);
    Object.assign(this.slots[index], { name: null, pins: 0, info: null, forgotten: false });
  }
}
