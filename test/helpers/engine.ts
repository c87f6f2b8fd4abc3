// Engine-side helpers shared by the engine tests: test model paths and teacher forcing.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../src/engine/native.js";
import type { NativeContext } from "../../src/engine/context.js";
import { createSampler } from "../../src/engine/context.js";
import { GREEDY } from "../../src/engine/engine.js";

/** ../shared/models/stories260K.gguf from the package root, or null when absent. */
export function storiesPath(): string | null {
  const p = join(packageRoot(), "..", "shared", "models", "stories260K.gguf");
  return existsSync(p) ? p : null;
}

/** log_softmax of one row of raw logits, in float64. */
export function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const l of logits) max = Math.max(max, l);
  let sum = 0;
  for (const l of logits) sum += Math.exp(l - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (l) => l - lse);
}

/** Greedy continuation of `prompt` on sequence `seq` (cleared first), not stopping at EOG. */
export async function engineGreedy(ctx: NativeContext, prompt: number[], n: number, seq = 0): Promise<number[]> {
  ctx.seqClear(seq);
  const sampler = createSampler(GREEDY);
  const out: number[] = [];
  let r = await ctx.decode({ tokens: prompt, pos: prompt.map((_, i) => i), seq: prompt.map(() => seq) }, [sampler]);
  while (out.length < n) {
    out.push(r.tokens[0]);
    if (out.length === n) break;
    const pos = prompt.length + out.length - 1;
    r = await ctx.decode({ tokens: [r.tokens[0]], pos: [pos], seq: [seq] }, [sampler]);
  }
  ctx.seqClear(seq);
  return out;
}

/** Teacher forcing: log-probabilities of the next token after each prefix tokens[0..i]. */
export async function engineNextLogprobs(ctx: NativeContext, tokens: number[], seq = 0): Promise<Float64Array[]> {
  ctx.seqClear(seq);
  const rows = await ctx.logitsAfterEach(seq, tokens.slice(0, -1));
  ctx.seqClear(seq);
  return rows.map(logSoftmax);
}
