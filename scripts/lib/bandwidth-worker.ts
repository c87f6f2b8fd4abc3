// Worker of the bandwidth probe (bandwidth.ts): sums its slice of the shared memory with the
// wasm SIMD loop each time it is told to, and answers with wall-clock start and end times
// comparable across threads (timeOrigin + now).
import { parentPort, workerData } from "node:worker_threads";

export interface BandwidthWorkerData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  start: number; // byte offset, a multiple of 64
  end: number; // exclusive
  reps: number; // sums per pass
}

export interface BandwidthPass {
  t0: number;
  t1: number;
  checksum: number;
}

const d = workerData as BandwidthWorkerData;
const instance = new WebAssembly.Instance(d.module, { env: { mem: d.memory } });
const sum = instance.exports.sum as (start: number, end: number) => number;

parentPort!.on("message", () => {
  const t0 = performance.timeOrigin + performance.now();
  let checksum = 0;
  for (let r = 0; r < d.reps; r++) checksum ^= sum(d.start, d.end);
  const t1 = performance.timeOrigin + performance.now();
  parentPort!.postMessage({ t0, t1, checksum } satisfies BandwidthPass);
});
