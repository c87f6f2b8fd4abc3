// NativeEngine: the StepEngine over the C++ engine (one model, one context, a sampler per sequence).
import type {
  AdapterSlotInfo,
  ContextOptions,
  EngineLimits,
  ModelInfo,
  SamplingParams,
  StepEngine,
  StepResult,
  StepToken,
} from "./types.js";
import { loadModelReporting, type LoadReporter } from "./load-progress.js";
import { NativeModel } from "./model.js";
import { createSampler, type NativeContext, type Sampler } from "./context.js";

/** The serving context's options, or a function of the loaded model that gives them. */
export type ContextSizing = Partial<ContextOptions> | ((model: NativeModel) => Partial<ContextOptions>);

export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1, minP: 0, seed: 0 };

export class NativeEngine implements StepEngine {
  private readonly samplers = new Map<number, Sampler>();
  // The addon takes one adapter load at a time per context: queue them.
  private adapterLoads: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly model: NativeModel,
    readonly context: NativeContext,
  ) {}

  /**
   * The one way to open the engine: loads the model, then makes its serving context. `context`
   * may be a function of the loaded model, for callers that size the context from the model's
   * metadata or their tokenized prompts; what it throws ends the open with the model released.
   * `reporter` (load-progress.ts) is told how the model load goes.
   */
  static async open(modelPath: string, context: ContextSizing = {}, reporter?: LoadReporter): Promise<NativeEngine> {
    const model = reporter ? await loadModelReporting(modelPath, reporter) : await NativeModel.load(modelPath);
    try {
      return new NativeEngine(model, await model.createContext(typeof context === "function" ? context(model) : context));
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  get info(): ModelInfo {
    return this.model.info;
  }

  get limits(): EngineLimits {
    const c = this.context;
    return { nCtx: c.nCtx, nSeqMax: c.nSeqMax, nBatchMax: c.nBatchMax };
  }

  tokenize(text: string, addSpecial: boolean, parseSpecial = false): number[] {
    return this.model.tokenize(text, addSpecial, parseSpecial);
  }

  detokenize(tokens: number[]): string {
    return this.model.detokenize(tokens);
  }

  tokenBytes(token: number): Uint8Array {
    return this.model.tokenBytes(token);
  }

  isEog(token: number): boolean {
    return this.model.isEog(token);
  }

  metaString(key: string): string | null {
    return this.model.metaString(key);
  }

  setSampler(seq: number, params: SamplingParams): void {
    this.samplers.set(seq, createSampler(params));
  }

  /** Sequences without setSampler() sample greedily. */
  async step(tokens: StepToken[]): Promise<StepResult> {
    const wanted = tokens.filter((t) => t.sample);
    const samplers = wanted.map((t) => {
      let s = this.samplers.get(t.seq);
      if (!s) {
        s = createSampler(GREEDY);
        this.samplers.set(t.seq, s);
      }
      return s;
    });
    const r = await this.context.decode(
      {
        tokens: tokens.map((t) => t.token),
        pos: tokens.map((t) => t.pos),
        seq: tokens.map((t) => t.seq),
        loraSlot: tokens.map((t) => t.adapterSlot),
        loraScale: tokens.map((t) => t.adapterScale),
        logits: tokens.map((t) => (t.sample ? 1 : 0)),
      },
      samplers,
    );
    return {
      sampled: wanted.map((t, i) => ({ seq: t.seq, token: r.tokens[i], logprob: r.logprobs[i] })),
      ms: r.ms,
    };
  }

  loadAdapter(slot: number, path: string): Promise<AdapterSlotInfo> {
    const load = this.adapterLoads.then(() => this.context.loadAdapter(slot, path));
    this.adapterLoads = load.catch(() => undefined);
    return load;
  }

  exportAdapter(slot: number): Buffer {
    return this.context.exportAdapter(slot);
  }

  importAdapter(slot: number, image: Buffer): Promise<AdapterSlotInfo> {
    const load = this.adapterLoads.then(() => this.context.importAdapter(slot, image));
    this.adapterLoads = load.catch(() => undefined);
    return load;
  }

  unloadAdapter(slot: number): void {
    this.context.unloadAdapter(slot);
  }

  clearSeq(seq: number): void {
    this.context.seqClear(seq);
    this.samplers.delete(seq);
  }

  openSideContext(options: Partial<ContextOptions>): Promise<NativeContext> {
    return this.model.createContext(options);
  }

  dispose(): void {
    this.context.dispose();
    this.model.dispose();
    this.samplers.clear();
  }
}
