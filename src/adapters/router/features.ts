// Router features from the base model itself: the mean hidden state of a cheap partial pass over
// the prompt (SideContext.embed), on the router's own small context, one call at a time.
import type { SideContext } from "../../engine/types.js";

/** Prompts per feature pass: what a routed request may have to wait for. */
const CHUNK = 16;

export interface FeatureOptions {
  /** Layers the feature pass runs: 0 = token embeddings only, negative = every layer. */
  layers: number;
  /** Tokens of a prompt the features read (its first ones). */
  maxTokens: number;
}

export class FeatureExtractor {
  // The side context takes one call at a time: calls queue here.
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly side: SideContext,
    readonly tokenize: (text: string) => number[],
    readonly opts: FeatureOptions,
    /** Names the model and the pass, so stored features from another one are recomputed. */
    readonly spec: string,
  ) {}

  /** Feature vectors of prompts given as text. */
  ofTexts(texts: string[]): Promise<Float32Array[]> {
    return this.ofTokens(texts.map((t) => this.tokenize(t)));
  }

  /** Feature vectors of already tokenized prompts (a request's own tokens), in batched calls of
   *  at most CHUNK prompts, so that a request's routing never waits behind a whole training set. */
  async ofTokens(prompts: number[][]): Promise<Float32Array[]> {
    const limit = Math.min(this.opts.maxTokens, this.side.nCtx);
    const clipped = prompts.map((p) => (p.length > limit ? p.slice(0, limit) : p.length === 0 ? [0] : p));
    const out: Float32Array[] = [];
    for (let i = 0; i < clipped.length; i += CHUNK) {
      const chunk = clipped.slice(i, i + CHUNK);
      out.push(...(await this.serial(() => this.side.embed(chunk, this.opts.layers))));
    }
    return out;
  }

  /** Frees the side context once every queued call is done. */
  async dispose(): Promise<void> {
    await this.queue;
    this.side.dispose();
  }

  /** Runs `fn` on the side context once every earlier call is done. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
