// llama.cpp (through node-llama-cpp) as the numerical oracle, loaded as ORACLE.md says:
// prebuilt CPU binaries, F32 KV cache, no flash attention, one sequence per context, and at
// most one LoRA adapter per context.
// Tests only: the product never calls llama.cpp.
import { getLlama, type Llama, type LlamaContextSequence, type LlamaModel } from "node-llama-cpp";
import { LLAMA_OPTIONS } from "../../src/bench/llama-options.js";

let llamaPromise: Promise<Llama> | undefined;

function llama(): Promise<Llama> {
  llamaPromise ??= getLlama(LLAMA_OPTIONS);
  return llamaPromise;
}

/** A llama.cpp LoRA GGUF and the scale it is applied with. */
export interface OracleAdapter {
  filePath: string;
  scale: number;
}

export class Oracle {
  private constructor(private readonly model: LlamaModel) {}

  static async load(path: string): Promise<Oracle> {
    const l = await llama();
    return new Oracle(await l.loadModel({ modelPath: path, gpuLayers: 0 }));
  }

  /** llama.cpp's ids for `text`, BOS first when addBos (tokenize() itself never adds it). */
  tokenize(text: string, addBos: boolean): number[] {
    const ids = this.model.tokenize(text, false).map(Number);
    const bos = this.model.tokens.bos;
    return addBos && bos !== null ? [Number(bos), ...ids] : ids;
  }

  // One token per decode (batchSize 1: llama.cpp's decode path, not its GEMM prompt path, the
  // tightest reference for per-position numbers), with at most one adapter per context:
  // llama.cpp's own way to serve an adapter.
  private async withSequence<T>(nCtx: number, adapter: OracleAdapter | null, f: (seq: LlamaContextSequence) => Promise<T>): Promise<T> {
    const ctx = await this.model.createContext({
      contextSize: nCtx,
      sequences: 1,
      batchSize: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
      threads: 1,
      ...(adapter ? { lora: { adapters: [adapter] } } : {}),
    });
    try {
      return await f(ctx.getSequence());
    } finally {
      await ctx.dispose();
    }
  }

  /** Greedy continuation of `prompt`: n ids, not stopping at end-of-generation tokens. */
  greedy(prompt: number[], n: number, adapter: OracleAdapter | null = null): Promise<number[]> {
    return this.withSequence(prompt.length + n + 1, adapter, async (seq) => {
      const out: number[] = [];
      if (n === 0) return out;
      for await (const t of seq.evaluate(prompt as never[], { temperature: 0 })) {
        out.push(Number(t));
        if (out.length === n) break;
      }
      return out;
    });
  }

  /**
   * Teacher forcing: for each i >= 1, llama.cpp's probabilities of the next token after
   * tokens[0..i-1], as natural logs of its float32 softmax. Result[i-1] maps id -> log-prob
   * for every id of the vocabulary.
   */
  nextLogprobs(tokens: number[], adapter: OracleAdapter | null = null): Promise<Map<number, number>[]> {
    return this.withSequence(tokens.length + 1, adapter, async (seq) => {
      const input = tokens.slice(0, -1).map(
        (t) => [t, { generateNext: { probabilities: true, token: true, options: { temperature: 0 } } }] as const,
      );
      const res = await seq.controlledEvaluate(input as never);
      return res.map((r, i) => {
        const probs = r?.next?.probabilities;
        if (!probs) throw new Error(`oracle: no probabilities at position ${i}`);
        const m = new Map<number, number>();
        for (const [id, p] of probs) m.set(Number(id), Math.log(p));
        return m;
      });
    });
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}
