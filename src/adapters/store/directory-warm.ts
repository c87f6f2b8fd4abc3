// Warm backend in a directory, meant to be a zram-backed mount (hw/zram-warm.sh): the kernel
// compresses the pages (lzo-rle / zstd), so images are written as they are, one file per adapter.
// Reads go through the page cache: a recently promoted image is read from RAM as it is.
// The directory is the daemon's own: it is emptied at start-up.
import { mkdir, open, readdir, readFile, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { WarmBackend } from "./warm.js";

const SUFFIX = ".slot";

export class DirectoryWarmBackend implements WarmBackend {
  readonly kind = "directory";
  // File operations on one name run in order: a remove then a write of the same adapter must
  // not reach the disk the other way round.
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(private readonly dir: string) {}

  async write(name: string, image: Buffer): Promise<number> {
    await this.serial(name, async () => {
      const f = await open(this.file(name), "w");
      try {
        await f.writeFile(image);
        // Onto the device now: the page cache then holds a clean copy the kernel may drop under
        // memory pressure, and the image lives compressed in zram.
        await f.sync();
      } finally {
        await f.close();
      }
    });
    return image.length;
  }

  read(name: string): Promise<Buffer> {
    return this.serial(name, () => readFile(this.file(name)));
  }

  remove(name: string): void {
    void this.serial(name, () => unlink(this.file(name))).catch(() => undefined);
  }

  async clear(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const f of await readdir(this.dir)) if (f.endsWith(SUFFIX)) await rm(join(this.dir, f), { force: true });
  }

  private serial<T>(name: string, op: () => Promise<T>): Promise<T> {
    const next = (this.pending.get(name) ?? Promise.resolve()).then(op, op);
    const settled = next.catch(() => undefined);
    this.pending.set(name, settled);
    void settled.then(() => {
      if (this.pending.get(name) === settled) this.pending.delete(name);
    });
    return next;
  }

  private file(name: string): string {
    return join(this.dir, name + SUFFIX); // registry names are [A-Za-z0-9_.-]: safe as file names
  }
}
