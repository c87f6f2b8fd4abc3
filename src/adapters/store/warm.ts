// The warm tier: slot images (the exact bytes a slot holds, engine/types.ts exportAdapter) kept
// within a byte budget, on a backend: in process memory (memory-warm.ts) or files in a
// zram-backed directory (directory-warm.ts). Promotion from here is an image copy into a slot,
// no parse, transpose or quantization. What to drop when full is the policy's choice (policy.ts).
import type { WarmPolicy } from "./policy.js";

export interface WarmBackend {
  readonly kind: "memory" | "directory";
  /** Stores the image; resolves the bytes it takes against the budget. */
  write(name: string, image: Buffer): Promise<number>;
  /** The image as it was written. */
  read(name: string): Promise<Buffer>;
  remove(name: string): void;
  /** Drops everything (start-up: images of an earlier run may be for another model or pool). */
  clear(): Promise<void>;
}

export interface WarmStats {
  backend: WarmBackend["kind"];
  entries: number;
  usedBytes: number;
  budgetBytes: number;
  imageBytes: number; // the images' own size (usedBytes is less when the backend compresses)
  evictions: number;
  refused: number; // images not admitted (larger than the budget, or less requested than every victim)
}

interface Entry {
  stored: number; // bytes against the budget
  image: number; // bytes of the image itself
  reading: number; // reads in flight: the entry is not evicted under them
}

export class WarmTier {
  private readonly entries = new Map<string, Entry>();
  private used = 0;
  private evictions = 0;
  private refused = 0;

  constructor(
    private readonly backend: WarmBackend,
    readonly budgetBytes: number,
    private readonly policy: WarmPolicy,
  ) {}

  has(name: string): boolean {
    return this.entries.has(name);
  }

  get usedBytes(): number {
    return this.used;
  }

  /** Names held, in no particular order. */
  names(): IterableIterator<string> {
    return this.entries.keys();
  }

  /** Adds an image, evicting by policy to stay within the budget; false when it was not admitted. */
  async put(name: string, image: Buffer): Promise<boolean> {
    if (this.entries.has(name)) return true;
    if (image.length > this.budgetBytes) return this.refuse();
    // Make room for the raw size first: the stored size is known only after the write.
    if (!this.makeRoom(name, image.length)) return this.refuse();
    const entry: Entry = { stored: image.length, image: image.length, reading: 0 };
    this.entries.set(name, entry);
    this.used += entry.stored;
    try {
      const stored = await this.backend.write(name, image);
      if (this.entries.get(name) !== entry) {
        // Dropped (evicted or forgotten) while it was being written: the write came last, undo it.
        this.backend.remove(name);
        return false;
      }
      this.used += stored - entry.stored;
      entry.stored = stored;
      return true;
    } catch (err) {
      if (this.entries.get(name) === entry) this.drop(name);
      throw err;
    }
  }

  /** The image, or null when it is not (or no longer) here. */
  async get(name: string): Promise<Buffer | null> {
    const entry = this.entries.get(name);
    if (!entry) return null;
    entry.reading++;
    try {
      return await this.backend.read(name);
    } catch {
      this.drop(name);
      return null;
    } finally {
      entry.reading--;
    }
  }

  /** Whether an image of `bytes` for `name` would be admitted now (nothing is evicted to tell). */
  canAdmit(name: string, bytes: number): boolean {
    if (this.entries.has(name)) return true;
    if (bytes > this.budgetBytes) return false;
    let free = this.budgetBytes - this.used;
    const chosen = new Set<string>();
    while (free < bytes) {
      const victim = this.policy.victim(this.entries.keys(), (n) => chosen.has(n) || this.entries.get(n)!.reading > 0);
      if (victim === null || !this.policy.admits(name, victim)) return false;
      chosen.add(victim);
      free += this.entries.get(victim)!.stored;
    }
    return true;
  }

  /** The mean image size held (0 when empty): what the next image will likely take. */
  meanImageBytes(): number {
    if (this.entries.size === 0) return 0;
    let sum = 0;
    for (const e of this.entries.values()) sum += e.image;
    return sum / this.entries.size;
  }

  delete(name: string): void {
    if (this.entries.has(name)) this.drop(name);
  }

  stats(): WarmStats {
    let imageBytes = 0;
    for (const e of this.entries.values()) imageBytes += e.image;
    return {
      backend: this.backend.kind,
      entries: this.entries.size,
      usedBytes: this.used,
      budgetBytes: this.budgetBytes,
      imageBytes,
      evictions: this.evictions,
      refused: this.refused,
    };
  }

  private makeRoom(name: string, bytes: number): boolean {
    while (this.used + bytes > this.budgetBytes) {
      const victim = this.policy.victim(this.entries.keys(), (n) => this.entries.get(n)!.reading > 0);
      if (victim === null || !this.policy.admits(name, victim)) return false;
      this.drop(victim);
      this.evictions++;
    }
    return true;
  }

  private drop(name: string): void {
    const entry = this.entries.get(name)!;
    this.entries.delete(name);
    this.used -= entry.stored;
    this.backend.remove(name);
  }

  private refuse(): false {
    this.refused++;
    return false;
  }
}
