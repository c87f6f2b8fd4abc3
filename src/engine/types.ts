// The engine as the rest of the TypeScript code sees it. `NativeEngine` (engine.ts) is the
// real one over the C++ addon; tests of the scheduler/daemon may use a fake with the same shape.

export interface ModelInfo {
  arch: string; // general.architecture: "llama" | "qwen2" | "qwen3" | "phi3" | "gemma3"
  supportedArchs: string; // the architectures this engine runs: "llama, qwen2, qwen3, phi3, gemma3"
  name: string;
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  headDim: number;
  ropeFreqBase: number;
  rmsNormEps: number;
  ropeNeox: boolean;
  tiedOutput: boolean;
  nParams: number;
  weightBytes: number;
  weightTypes: Record<string, number>; // tensor type name -> count
  packedTypes: Record<string, number>; // type name -> matrices repacked at load (8-row interleaved) for the kernel path
  tokenizer: string; // "llama" | "gpt2"
  tokenizerPre: string;
  bos: number;
  eos: number;
  addBos: boolean;
  kernelPath: string; // "scalar" | "avx2" | "avx2-vnni" | "avx512-vnni" | "neon" | "neon-dotprod"
}

export interface ContextOptions {
  threads: number;
  nCtx: number; // max tokens per sequence
  nSeqMax: number; // sequence ids 0..nSeqMax-1
  nBatchMax: number; // max tokens per step
  kvType: "f32" | "f16";
  kvBlocks?: number; // paged KV pool size (default: enough for nSeqMax full sequences)
  kvBlockSize?: number;
  loraSlots?: number;
  loraMaxRank?: number;
  loraPoolType?: LoraPoolType; // default "f16"
}

/**
 * How the LoRA slot pool stores adapters: "f16" computes exactly as llama.cpp does with an F16
 * adapter; "q8" stores int8 weights and quantizes activations (like a Q8_0 adapter): ~0.55x the
 * memory and much faster with many different adapters in one step, with quantization error;
 * "q4" stores 4-bit weights (like a Q4_0 adapter): ~0.3x the memory and faster again, with
 * Q4_0's larger error.
 */
export type LoraPoolType = "f16" | "q8" | "q4";
export const LORA_POOL_TYPES: readonly LoraPoolType[] = ["f16", "q8", "q4"];

export interface SamplingParams {
  temperature: number; // 0 = greedy
  topK: number; // 0 = off
  topP: number; // 1 = off
  minP: number; // 0 = off
  seed: number;
}

/** One token of a step: like llama_batch. */
export interface StepToken {
  seq: number;
  token: number;
  pos: number;
  adapterSlot: number; // -1 = none
  adapterScale: number;
  /** When set, the engine samples the next token of `seq` from this position's logits. */
  sample: boolean;
}

export interface SampledToken {
  seq: number;
  token: number;
  logprob: number; // natural log-probability under the model before sampling
}

export interface StepResult {
  sampled: SampledToken[]; // in batch order of tokens with sample=true
  ms: number; // compute time of the step
}

export interface AdapterSlotInfo {
  slot: number;
  rank: number;
  alpha: number;
  factor: number; // alpha/rank (alpha/sqrt(rank) for rsLoRA; 1 for a GGUF without alpha)
  bytes: number;
  modules: string[]; // e.g. ["q", "v"]
}

/** What one context can hold: the scheduler and generate() plan steps within these. */
export interface EngineLimits {
  nCtx: number; // max tokens per sequence
  nSeqMax: number; // sequence ids 0..nSeqMax-1
  nBatchMax: number; // max tokens per step
}

/** A prompt scored under an adapter (AdapterLikelihoods.tokenLogprobs). */
export interface ScoredPrompt {
  tokens: number[];
  adapterSlot: number; // -1 = none
  adapterScale?: number; // default 1
}

/**
 * A small context of its own on the same model, for the adapter router: feature passes and
 * likelihood profiling. It never shares the serving context, so it never contends with the
 * scheduler's steps; one call at a time.
 */
export interface SideContext {
  readonly nCtx: number;
  /** Mean hidden state per prompt after its first nLayers layers (0 = token embeddings,
   *  negative or >= nLayer = every layer and the final norm), in one batched call. */
  embed(prompts: number[][], nLayers: number): Promise<Float32Array[]>;
  /** Per prompt, log P(tokens[j+1] | tokens[..j]) for j = 0..n-2 under its adapter; prompts
   *  with different adapters share each forward pass. */
  tokenLogprobs(prompts: ScoredPrompt[]): Promise<Float32Array[]>;
  loadAdapter(slot: number, path: string): Promise<AdapterSlotInfo>;
  unloadAdapter(slot: number): void;
  dispose(): void;
}

/** A loaded model with one context: everything the scheduler needs. */
export interface StepEngine {
  readonly info: ModelInfo;
  readonly limits: EngineLimits;
  tokenize(text: string, addSpecial: boolean, parseSpecial?: boolean): number[];
  detokenize(tokens: number[]): string;
  tokenBytes(token: number): Uint8Array;
  isEog(token: number): boolean;
  metaString(key: string): string | null;
  /** Per-sequence sampler settings (seed included); call before the first sampled step of seq. */
  setSampler(seq: number, params: SamplingParams): void;
  /** One forward pass over a mixed batch; runs off the JS thread. */
  step(tokens: StepToken[]): Promise<StepResult>;
  /** LoRA slot pool (batched multi-LoRA): load an adapter file (llama.cpp LoRA GGUF or PEFT
   *  directory) into a free slot; the slot's effective scale is given per token in StepToken. */
  loadAdapter(slot: number, path: string): Promise<AdapterSlotInfo>;
  unloadAdapter(slot: number): void;
  /** The slot's image: the exact bytes the slot holds (pool layout) after a small header, for the
   *  warm tier. Optional so that fakes need not have it. */
  exportAdapter?(slot: number): Buffer;
  /** Copies an image from exportAdapter into a free slot (no parse, transpose or quantization): the
   *  slot then computes bit for bit what the exported one did. Refuses an image made for another
   *  model, pool type or layout. */
  importAdapter?(slot: number, image: Buffer): Promise<AdapterSlotInfo>;
  /** Drop a sequence's KV cache and sampler. */
  clearSeq(seq: number): void;
  /** Another, independent context on the same model (the router's); absent on engines that
   *  cannot make one (then "auto" falls back to the tenant's default adapter). */
  openSideContext?(options: Partial<ContextOptions>): Promise<SideContext>;
  dispose(): void;
}
