// Single-sequence generation on a StepEngine: prompt -> tokens, sampled until max tokens,
// end-of-generation, a stop string or the context's end. Text is decoded incrementally and
// only whole UTF-8 characters are ever emitted.
import { promptTokens } from "./prompt-tokens.js";
import type { SamplingParams, StepEngine } from "./types.js";

export interface GenerateOptions {
  maxTokens: number;
  sampling: SamplingParams;
  /** Generation ends when the text contains one of these; the text is cut before it. */
  stop?: string[];
  /** Sequence id to use (default 0); it is cleared when generation ends. */
  seq?: number;
  /** Called with each new piece of text; never a piece of a stop string that later matches. */
  onText?: (delta: string) => void;
  /** A LoRA adapter already loaded in this engine slot, applied with this scale (default: none). */
  adapter?: { slot: number; scale: number };
}

export interface GenerateTimings {
  promptTokens: number;
  completionTokens: number;
  promptMs: number; // prompt processing, first sampled token included
  decodeMs: number; // the remaining tokens
  totalMs: number;
}

export interface GenerateResult {
  tokens: number[]; // generated ids (an end-of-generation token is not included)
  logprobs: number[]; // logprobs[i] = ln p(tokens[i]) under the model, before sampling
  text: string;
  finishReason: "length" | "stop";
  timings: GenerateTimings;
}

/** Length of the longest tail of `text` that could still grow into one of `stops`. */
function pendingStopPrefix(text: string, stops: string[]): number {
  let keep = 0;
  for (const s of stops)
    for (let n = Math.min(s.length - 1, text.length); n > keep; n--)
      if (text.endsWith(s.slice(0, n))) {
        keep = n;
        break;
      }
  return keep;
}

export async function generate(engine: StepEngine, prompt: string, opts: GenerateOptions): Promise<GenerateResult> {
  const seq = opts.seq ?? 0;
  const { slot: adapterSlot, scale: adapterScale } = opts.adapter ?? { slot: -1, scale: 0 };
  const stops = (opts.stop ?? []).filter((s) => s.length > 0);
  const { nCtx, nBatchMax } = engine.limits;
  const input = promptTokens(engine, prompt);
  if (input.length >= nCtx) {
    throw new Error(`prompt is ${input.length} tokens but the context holds ${nCtx} per sequence`);
  }

  const t0 = performance.now();
  const tokens: number[] = [];
  const logprobs: number[] = [];
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  let text = "";
  let emitted = 0;
  let finishReason: GenerateResult["finishReason"] = "length";
  let stopStringHit = false;
  let promptMs = 0;

  engine.setSampler(seq, opts.sampling);
  try {
    // Prompt in chunks of nBatchMax; the last chunk samples the first new token.
    let next = -1;
    let nextLogprob = 0;
    for (let start = 0; start < input.length; start += nBatchMax) {
      const chunk = input.slice(start, start + nBatchMax);
      const last = start + chunk.length === input.length;
      const r = await engine.step(
        chunk.map((token, i) => ({
          seq,
          token,
          pos: start + i,
          adapterSlot,
          adapterScale,
          sample: last && i === chunk.length - 1,
        })),
      );
      if (last) ({ token: next, logprob: nextLogprob } = r.sampled[0]);
    }
    promptMs = performance.now() - t0;

    let pos = input.length;
    while (tokens.length < opts.maxTokens) {
      if (engine.isEog(next)) {
        finishReason = "stop";
        break;
      }
      tokens.push(next);
      logprobs.push(nextLogprob);
      text += decoder.decode(engine.tokenBytes(next), { stream: true });
      const hit = stops.map((s) => text.indexOf(s, Math.max(0, emitted - s.length))).filter((i) => i >= 0);
      if (hit.length > 0) {
        text = text.slice(0, Math.min(...hit));
        finishReason = "stop";
        stopStringHit = true;
        break;
      }
      const safe = text.length - pendingStopPrefix(text, stops);
      if (opts.onText && safe > emitted) opts.onText(text.slice(emitted, safe));
      emitted = Math.max(emitted, safe);
      if (tokens.length >= opts.maxTokens || pos >= nCtx) break;
      const r = await engine.step([{ seq, token: next, pos, adapterSlot, adapterScale, sample: true }]);
      ({ token: next, logprob: nextLogprob } = r.sampled[0]);
      pos++;
    }
  } finally {
    engine.clearSeq(seq);
  }
  if (!stopStringHit) text += decoder.decode(); // an incomplete last character becomes U+FFFD
  if (opts.onText && text.length > emitted) opts.onText(text.slice(emitted));

  const totalMs = performance.now() - t0;
  return {
    tokens,
    logprobs,
    text,
    finishReason,
    timings: {
      promptTokens: input.length,
      completionTokens: tokens.length,
      promptMs,
      decodeMs: totalMs - promptMs,
      totalMs,
    },
  };
}
