// Promotion into a slot from each tier, per pool type, on the bench model with rank-16 adapters:
//   cold (disk):   the adapter file evicted from the page cache first (dd iflag=nocache: posix_fadvise
//                  DONTNEED), then parsed, transposed / quantized into the slot by the engine;
//   cold (cache):  the same from the page cache;
//   warm memory:   the slot image from process memory (a copy), and with shuffle + deflate;
//   warm zram:     the image file on a zram-backed ext4 (hw/zram-warm.sh), evicted from the page
//                  cache first, so the kernel decompresses it (only where /dev/zram0 is free).
// Also the compression each warm form gets, and what an SD card's 40-90 MB/s would make of a cold load.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirectoryWarmBackend } from "../../src/adapters/store/directory-warm.js";
import { MemoryWarmBackend } from "../../src/adapters/store/memory-warm.js";
import { NativeEngine } from "../../src/engine/engine.js";
import { packageRoot } from "../../src/engine/native.js";
import type { LoraPoolType } from "../../src/engine/types.js";
import { median } from "./workload.js";

export interface PromotionRow {
  pool: LoraPoolType;
  source: string;
  slotBytes: number; // the adapter's bytes in the slot (what a promotion moves)
  storedBytes: number; // what the source holds (file, image, compressed image)
  ms: number; // median
  mbPerS: number; // slot bytes per second
}

export interface PromotionResult {
  rows: PromotionRow[];
  zram: { pool: LoraPoolType; algorithm: string; origBytes: number; comprBytes: number }[];
  zramSkipped: string | null;
}

const ZRAM = "/dev/zram0";

/** Drops a file's pages from the page cache (posix_fadvise DONTNEED through dd). */
export function dropFromCache(path: string): void {
  execFileSync("dd", [`if=${path}`, "iflag=nocache", "count=0", "status=none"]);
}

function zramFree(): string | null {
  if (process.getuid?.() !== 0) return "not root";
  if (!existsSync(ZRAM)) return `${ZRAM} does not exist`;
  if (readFileSync("/sys/block/zram0/disksize", "utf8").trim() !== "0") return `${ZRAM} is in use`;
  return null;
}

async function timed(runs: number, before: () => void | Promise<void>, op: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    await before();
    const t0 = performance.now();
    await op();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

export async function measurePromotions(
  model: string, adapter: string, pools: LoraPoolType[], runs: number, log: (s: string) => void,
): Promise<PromotionResult> {
  const rows: PromotionRow[] = [];
  const fileBytes = statSync(adapter).size;
  const zramWhyNot = zramFree();
  const zram: PromotionResult["zram"] = [];
  const mmStat = () => readFileSync("/sys/block/zram0/mm_stat", "utf8").trim().split(/\s+/).map(Number);
  let mnt: string | null = null;
  const algorithm = "lzo-rle";
  if (!zramWhyNot) {
    mnt = mkdtempSync(join(tmpdir(), "edgelora-bench-zram-"));
    execFileSync("bash", [join(packageRoot(), "hw", "zram-warm.sh"), "start", ZRAM, "256M", algorithm, mnt, "root"], { stdio: "ignore" });
  }
  try {
    for (const pool of pools) {
      log(`promotions, ${pool} pool`);
      const engine = await NativeEngine.open(model, { loraSlots: 2, loraMaxRank: 16, loraPoolType: pool, threads: 1, nCtx: 64, nSeqMax: 1, nBatchMax: 16 });
      try {
        // Both slots written once first: the arena's pages are then mapped, as in a running daemon.
        await engine.loadAdapter(0, adapter);
        await engine.loadAdapter(1, adapter);
        const image = engine.exportAdapter(0);
        const slotBytes = (await engine.importAdapter(1, image)).bytes;
        const row = (source: string, storedBytes: number, ms: number) => {
          rows.push({ pool, source, slotBytes, storedBytes, ms, mbPerS: slotBytes / 1e6 / (ms / 1000) });
        };
        row("cold: file, not in page cache", fileBytes, await timed(runs, () => dropFromCache(adapter), () => engine.loadAdapter(1, adapter)));
        row("cold: file in page cache", fileBytes, await timed(runs, () => undefined, () => engine.loadAdapter(1, adapter)));
        row("warm: memory, image as is", image.length, await timed(runs, () => undefined, () => engine.importAdapter(1, image)));
        const deflate = new MemoryWarmBackend("deflate", pool === "f16" ? 2 : 1);
        const stored = await deflate.write("a", image);
        row("warm: memory, shuffle + deflate", stored, await timed(runs, () => undefined, async () => engine.importAdapter(1, await deflate.read("a"))));
        if (mnt) {
          const dir = new DirectoryWarmBackend(mnt);
          const [orig0, compr0] = mmStat();
          await dir.write(`img-${pool}`, image);
          const [orig1, compr1] = mmStat();
          zram.push({ pool, algorithm, origBytes: orig1 - orig0, comprBytes: compr1 - compr0 });
          const file = join(mnt, `img-${pool}.slot`);
          row(`warm: zram directory (${algorithm}), not in page cache`, compr1 - compr0, await timed(runs, () => dropFromCache(file), async () => engine.importAdapter(1, await dir.read(`img-${pool}`))));
          row(`warm: zram directory, in page cache`, image.length, await timed(runs, () => undefined, async () => engine.importAdapter(1, await dir.read(`img-${pool}`))));
        }
      } finally {
        engine.dispose();
      }
    }
  } finally {
    if (mnt) {
      execFileSync("bash", [join(packageRoot(), "hw", "zram-warm.sh"), "stop", ZRAM, mnt], { stdio: "ignore" });
      rmSync(mnt, { recursive: true, force: true });
    }
  }
  return { rows, zram, zramSkipped: zramWhyNot };
}
