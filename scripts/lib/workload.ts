// What one benchmark run measures, shared by our engine's runner and llama.cpp's child process
// so that both do exactly the same work.

export interface Workload {
  promptTokens: number; // prompt before the timed decode (BOS included)
  decodeTokens: number; // timed one-token decode steps
  prefillTokens: number; // timed prompt, one batch
  runs: number; // each figure is the median of this many runs
}

export const FULL: Workload = { promptTokens: 8, decodeTokens: 64, prefillTokens: 128, runs: 3 };
export const QUICK: Workload = { promptTokens: 8, decodeTokens: 16, prefillTokens: 32, runs: 1 };

/** Token/s figures of one engine at one thread count. */
export interface Speed {
  decode: number; // median tokens/s
  prefill: number;
  decodeRuns: number[];
  prefillRuns: number[];
}

/** BOS then ordinary word pieces of the synthetic SPM vocabulary (ids 259.. follow the byte tokens). */
export function promptIds(bos: number, n: number): number[] {
  return [bos, ...Array.from({ length: n - 1 }, (_, i) => 259 + ((i * 37) % 240))];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs `once` (which returns tokens/s) `runs` times after one untimed warm-up call. */
export async function medianOf(runs: number, once: () => Promise<number>, warmUp: () => Promise<unknown>) {
  await warmUp();
  const all: number[] = [];
  for (let i = 0; i < runs; i++) all.push(await once());
  return { median: median(all), all };
}
