// A StepEngine that runs every token of every step with one adapter slot and scale: lets
// single-sequence code written for the base model (engine/generate.ts) run with a LoRA adapter.
import type {
  AdapterSlotInfo,
  EngineLimits,
  ModelInfo,
  SamplingParams,
  StepEngine,
  StepResult,
  StepToken,
} from "../engine/types.js";

export class AdapterBoundEngine implements StepEngine {
  constructor(
    private readonly inner: StepEngine,
    readonly slot: number,
    readonly scale: number,
  ) {}

  get info(): ModelInfo {
    return this.inner.info;
  }

  get limits(): EngineLimits {
    return this.inner.limits;
  }

  tokenize(text: string, addSpecial: boolean, parseSpecial?: boolean): number[] {
    return this.inner.tokenize(text, addSpecial, parseSpecial);
  }

  detokenize(tokens: number[]): string {
    return this.inner.detokenize(tokens);
  }

  tokenBytes(token: number): Uint8Array {
    return this.inner.tokenBytes(token);
  }

  isEog(token: number): boolean {
    return this.inner.isEog(token);
  }

  metaString(key: string): string | null {
    return this.inner.metaString(key);
  }

  setSampler(seq: number, params: SamplingParams): void {
    this.inner.setSampler(seq, params);
  }

  step(tokens: StepToken[]): Promise<StepResult> {
    return this.inner.step(tokens.map((t) => ({ ...t, adapterSlot: this.slot, adapterScale: this.scale })));
  }

  loadAdapter(slot: number, path: string): Promise<AdapterSlotInfo> {
    return this.inner.loadAdapter(slot, path);
  }

  unloadAdapter(slot: number): void {
    this.inner.unloadAdapter(slot);
  }

  clearSeq(seq: number): void {
    this.inner.clearSeq(seq);
  }

  dispose(): void {
    this.inner.dispose();
  }
}
