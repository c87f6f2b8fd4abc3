// NativeContext: one engine context (paged KV cache, LoRA slots) over the addon, plus samplers.
import type { AdapterSlotInfo, ContextOptions, SamplingParams, ScoredPrompt, SideContext } from "./types.js";
import {
  loadAddon,
  type AddonBatch,
  type AddonContext,
  type AddonDecodeResult,
  type AddonLoraInfo,
  type AddonSampler,
} from "./native.js";

export type Sampler = AddonSampler;

export function toSlotInfo(i: AddonLoraInfo): AdapterSlotInfo {
  return {
    slot: i.slot,
    rank: i.rank,
    alpha: i.alpha,
    factor: i.factor,
    bytes: i.bytes,
    modules: i.modules ? i.modules.split(",") : [],
  };
}

/** A native sampler; its RNG state advances with every token it samples. */
export function createSampler(params: SamplingParams): Sampler {
  const Ctor = loadAddon().Sampler;
  return new Ctor({
    temperature: params.temperature,
    topK: params.topK,
    topP: params.topP,
    minP: params.minP,
    seed: params.seed,
  });
}

export class NativeContext implements SideContext {
  /** Max tokens per decode call. */
  readonly nBatchMax: number;
  /** Max tokens per sequence. */
  readonly nCtx: number;
  readonly nSeqMax: number;

  constructor(
    private readonly handle: AddonContext,
    readonly nVocab: number,
    readonly options: Partial<ContextOptions>,
  ) {
    const st = handle.stats();
    this.nBatchMax = st.nBatchMax;
    this.nCtx = st.nCtx;
    this.nSeqMax = st.nSeqMax;
  }

  /** One forward pass; samplers has one entry per logits-wanted token (null = raw logits). */
  decode(batch: AddonBatch, samplers: (Sampler | null)[]): Promise<AddonDecodeResult> {
    return this.handle.decode(batch, samplers);
  }

  /**
   * Appends `tokens` to sequence `seq` (from its current length) and returns the raw logits
   * after each of them, in chunks of at most nBatchMax tokens: teacher forcing.
   */
  async logitsAfterEach(seq: number, tokens: number[]): Promise<Float32Array[]> {
    const rows: Float32Array[] = [];
    for (let start = 0; start < tokens.length; start += this.nBatchMax) {
      const chunk = tokens.slice(start, start + this.nBatchMax);
      const pos0 = this.handle.seqLength(seq);
      const r = await this.decode(
        {
          tokens: chunk,
          pos: chunk.map((_, i) => pos0 + i),
          seq: chunk.map(() => seq),
          logits: chunk.map(() => 1),
        },
        chunk.map(() => null),
      );
      for (let i = 0; i < chunk.length; i++) rows.push(r.logits.subarray(i * this.nVocab, (i + 1) * this.nVocab));
    }
    return rows;
  }

  async embed(prompts: number[][], nLayers: number): Promise<Float32Array[]> {
    if (prompts.length === 0) return [];
    const { tokens, nTokens } = flatten(prompts);
    const out = await this.handle.embed(tokens, nTokens, nLayers);
    const width = out.length / prompts.length;
    return prompts.map((_, i) => out.slice(i * width, (i + 1) * width));
  }

  async tokenLogprobs(prompts: ScoredPrompt[]): Promise<Float32Array[]> {
    if (prompts.length === 0) return [];
    const { tokens, nTokens } = flatten(prompts.map((p) => p.tokens));
    const out = await this.handle.tokenLogprobs(
      tokens,
      nTokens,
      Int32Array.from(prompts, (p) => p.adapterSlot),
      Float32Array.from(prompts, (p) => p.adapterScale ?? 1),
    );
    const rows: Float32Array[] = [];
    let at = 0;
    for (const n of nTokens) {
      rows.push(out.slice(at, at + n - 1));
      at += n - 1;
    }
    return rows;
  }

  seqClear(seq: number): void {
    this.handle.seqClear(seq);
  }

  seqLength(seq: number): number {
    return this.handle.seqLength(seq);
  }

  stats(): ReturnType<AddonContext["stats"]> {
    return this.handle.stats();
  }

  async loadAdapter(slot: number, path: string): Promise<AdapterSlotInfo> {
    return toSlotInfo(await this.handle.loraLoad(slot, path));
  }

  exportAdapter(slot: number): Buffer {
    return this.handle.loraExport(slot);
  }

  async importAdapter(slot: number, image: Buffer): Promise<AdapterSlotInfo> {
    return toSlotInfo(await this.handle.loraImport(slot, image));
  }

  unloadAdapter(slot: number): void {
    this.handle.loraUnload(slot);
  }

  adapterSlot(slot: number): AddonLoraInfo {
    return this.handle.loraSlotInfo(slot);
  }

  dispose(): void {
    this.handle.dispose();
  }
}

function flatten(prompts: number[][]): { tokens: Int32Array; nTokens: Int32Array } {
  const nTokens = Int32Array.from(prompts, (p) => p.length);
  const tokens = new Int32Array(nTokens.reduce((a, b) => a + b, 0));
  let at = 0;
  for (const p of prompts) {
    tokens.set(p, at);
    at += p.length;
  }
  return { tokens, nTokens };
}
