// Memory read bandwidth, measured in the same run as the engine benchmark: 1..N worker threads
// each sum their share of one shared buffer (far larger than the caches) with 128-bit wasm loads
// (sum-wasm.ts); a pass's bandwidth is the bytes read by all threads over the span from the
// first thread's start to the last one's end. The best pass is reported, as STREAM does.
import { Worker } from "node:worker_threads";

import type { BandwidthPass, BandwidthWorkerData } from "./bandwidth-worker.js";
import { sumModuleBytes } from "./sum-wasm.js";

const PAGE = 65536;

export interface BandwidthResult {
  threads: number;
  bytes: number; // buffer size
  gbPerS: number; // best pass, 1e9 bytes/s
  passesGbPerS: number[];
}

export interface BandwidthOptions {
  bytes: number; // rounded down to whole 64 KiB pages
  passes: number;
  repsPerPass: number;
}

export const DEFAULT_BANDWIDTH: BandwidthOptions = { bytes: 512 * 2 ** 20, passes: 5, repsPerPass: 2 };

function once<T>(w: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    w.once("error", onError);
    w.once("message", (m: T) => {
      w.off("error", onError);
      resolve(m);
    });
  });
}

export async function measureBandwidth(threadCounts: number[], opts = DEFAULT_BANDWIDTH): Promise<BandwidthResult[]> {
  const pages = Math.floor(opts.bytes / PAGE);
  const bytes = pages * PAGE;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  // Touch every page: untouched pages would all map the kernel's zero page, which stays cached.
  new Uint8Array(memory.buffer).fill(1);
  const module = new WebAssembly.Module(sumModuleBytes(pages));

  const results: BandwidthResult[] = [];
  for (const threads of threadCounts) {
    const share = Math.floor(bytes / threads / 64) * 64;
    const workers = Array.from({ length: threads }, (_, i) => {
      const data: BandwidthWorkerData = { module, memory, start: i * share, end: (i + 1) * share, reps: opts.repsPerPass };
      return new Worker(new URL("./bandwidth-worker.js", import.meta.url), { workerData: data });
    });
    try {
      const passesGbPerS: number[] = [];
      for (let p = 0; p < opts.passes; p++) {
        const done = workers.map((w) => once<BandwidthPass>(w));
        for (const w of workers) w.postMessage("run");
        const passes = await Promise.all(done);
        const span = Math.max(...passes.map((x) => x.t1)) - Math.min(...passes.map((x) => x.t0));
        passesGbPerS.push((share * threads * opts.repsPerPass) / (span / 1000) / 1e9);
      }
      results.push({ threads, bytes, gbPerS: Math.max(...passesGbPerS), passesGbPerS });
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  }
  return results;
}
