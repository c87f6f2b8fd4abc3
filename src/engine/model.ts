// NativeModel: a loaded GGUF model (info, tokenizer) over the addon; the factory of contexts.
import type { ContextOptions, ModelInfo } from "./types.js";
import { loadAddon, type AddonModel, type AddonModelInfo } from "./native.js";
import { NativeContext } from "./context.js";

function parseWeightTypes(s: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of s.split(",")) {
    const [type, count] = part.split(":");
    if (type && count) out[type] = Number(count);
  }
  return out;
}

function toModelInfo(i: AddonModelInfo): ModelInfo {
  return { ...i, weightTypes: parseWeightTypes(i.weightTypes), packedTypes: parseWeightTypes(i.packedTypes) };
}

export class NativeModel {
  readonly info: ModelInfo;
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });

  private constructor(private readonly handle: AddonModel) {
    this.info = toModelInfo(handle.info());
  }

  /** Maps and checks a GGUF file off the JS thread; rejects with a message naming the problem.
   *  `onProgress` gets the bytes of weights read into place so far and their total (at most
   *  every 1%, and once at the end). */
  static async load(path: string, onProgress?: (bytesDone: number, bytesTotal: number) => void): Promise<NativeModel> {
    return new NativeModel(await loadAddon().loadModel(path, onProgress));
  }

  /** Token ids; addSpecial adds BOS when the model's metadata asks for it. */
  tokenize(text: string, addSpecial: boolean, parseSpecial = false): number[] {
    return Array.from(this.handle.tokenize(text, addSpecial, parseSpecial));
  }

  /** Raw bytes of one token (may be part of a UTF-8 character); control tokens render empty. */
  tokenBytes(token: number, renderSpecial = false): Uint8Array {
    return this.handle.tokenPiece(token, renderSpecial);
  }

  detokenize(tokens: number[]): string {
    return this.decoder.decode(Buffer.concat(tokens.map((t) => this.handle.tokenPiece(t, false))));
  }

  isEog(token: number): boolean {
    return this.handle.isEog(token);
  }

  metaString(key: string): string | null {
    return this.handle.metaString(key);
  }

  async createContext(options: Partial<ContextOptions> = {}): Promise<NativeContext> {
    const ctx = await this.handle.createContext({
      threads: options.threads,
      nCtx: options.nCtx,
      nSeqMax: options.nSeqMax,
      nBatchMax: options.nBatchMax,
      kvType: options.kvType,
      kvBlocks: options.kvBlocks,
      kvBlockSize: options.kvBlockSize,
      loraSlots: options.loraSlots,
      loraMaxRank: options.loraMaxRank,
      loraPoolType: options.loraPoolType,
    });
    return new NativeContext(ctx, this.info.nVocab, options);
  }

  /** Releases the model once no context uses it any more. */
  dispose(): void {
    this.handle.dispose();
  }
}
