// Our engine on the benchmark workload, driven through the addon's context (one sequence,
// greedy sampling, F16 KV cache), timed in JS around each decode call as for llama.cpp.
import { createSampler, type NativeContext } from "../../src/engine/context.js";
import { GREEDY } from "../../src/engine/engine.js";
import { NativeModel } from "../../src/engine/model.js";
import type { ModelInfo } from "../../src/engine/types.js";
import { medianOf, promptIds, type Speed, type Workload } from "./workload.js";

export interface OursResult {
  info: ModelInfo;
  speeds: Map<number, Speed>; // by thread count
}

const SEQ = 0;

/** Decodes `tokens` as one batch at positions pos0.. and returns the greedy next token. */
async function feed(ctx: NativeContext, tokens: number[], pos0: number): Promise<number> {
  const r = await ctx.decode(
    {
      tokens,
      pos: tokens.map((_, i) => pos0 + i),
      seq: tokens.map(() => SEQ),
      logits: tokens.map((_, i) => (i === tokens.length - 1 ? 1 : 0)),
    },
    [createSampler(GREEDY)],
  );
  return r.tokens[0];
}

async function decodeTps(ctx: NativeContext, prompt: number[], n: number): Promise<number> {
  ctx.seqClear(SEQ);
  let next = await feed(ctx, prompt, 0);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) next = await feed(ctx, [next], prompt.length + i);
  return n / ((performance.now() - t0) / 1000);
}

async function prefillTps(ctx: NativeContext, prompt: number[]): Promise<number> {
  ctx.seqClear(SEQ);
  const t0 = performance.now();
  await feed(ctx, prompt, 0);
  return prompt.length / ((performance.now() - t0) / 1000);
}

export async function benchOurs(modelPath: string, threadCounts: number[], w: Workload, log: (s: string) => void): Promise<OursResult> {
  const model = await NativeModel.load(modelPath);
  try {
    const speeds = new Map<number, Speed>();
    for (const threads of threadCounts) {
      const ctx = await model.createContext({
        threads,
        nCtx: 512,
        nSeqMax: 1,
        nBatchMax: Math.max(w.prefillTokens, w.promptTokens),
        kvType: "f16",
      });
      try {
        const decodePrompt = promptIds(model.info.bos, w.promptTokens);
        const prefillPrompt = promptIds(model.info.bos, w.prefillTokens);
        const d = await medianOf(w.runs, () => decodeTps(ctx, decodePrompt, w.decodeTokens), () => decodeTps(ctx, decodePrompt, 2));
        const p = await medianOf(w.runs, () => prefillTps(ctx, prefillPrompt), () => prefillTps(ctx, prefillPrompt));
        speeds.set(threads, { decode: d.median, prefill: p.median, decodeRuns: d.all, prefillRuns: p.all });
        log(`  ours       ${threads}t: decode ${d.median.toFixed(1)} tok/s, prefill ${p.median.toFixed(1)} tok/s`);
      } finally {
        ctx.dispose();
      }
    }
    return { info: model.info, speeds };
  } finally {
    model.dispose();
  }
}
