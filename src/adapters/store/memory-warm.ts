// Warm backend in process memory, for boards without a zram directory. Images are kept as they
// are by default: on the bench model's rank-16 images, byte-plane shuffle + deflate saves 3.5%
// (q8, q4) to 14% (f16) of the bytes but brings a promotion down from several GB/s (a copy) to
// 50-170 MB/s (README, "Adapter tiers"). `deflate` is there for RAM-starved boards.
import { promisify } from "node:util";
import { deflateRaw, inflateRaw } from "node:zlib";
import { shuffle, unshuffle } from "./shuffle.js";
import type { WarmBackend } from "./warm.js";

export type WarmCompression = "none" | "deflate";
export const WARM_COMPRESSIONS: readonly WarmCompression[] = ["none", "deflate"];

const deflateAsync = promisify(deflateRaw);
const inflateAsync = promisify(inflateRaw);

export class MemoryWarmBackend implements WarmBackend {
  readonly kind = "memory";
  private readonly images = new Map<string, Buffer>();

  /** `planeBytes`: the shuffle's element size before deflate (2 for fp16 pools, 1 = none). */
  constructor(
    private readonly compression: WarmCompression = "none",
    private readonly planeBytes = 2,
  ) {}

  async write(name: string, image: Buffer): Promise<number> {
    // zlib runs on the libuv pool, off the JS thread; the shuffle is a pass over the bytes here.
    const stored =
      this.compression === "deflate" ? await deflateAsync(this.planeBytes > 1 ? shuffle(image, this.planeBytes) : image, { level: 1 }) : image;
    this.images.set(name, stored);
    return stored.length;
  }

  async read(name: string): Promise<Buffer> {
    const stored = this.images.get(name);
    if (!stored) throw new Error(`warm image ${JSON.stringify(name)} is gone`);
    if (this.compression === "none") return stored;
    const raw = await inflateAsync(stored);
    return this.planeBytes > 1 ? unshuffle(raw, this.planeBytes) : raw;
  }

  remove(name: string): void {
    this.images.delete(name);
  }

  async clear(): Promise<void> {
    this.images.clear();
  }
}
