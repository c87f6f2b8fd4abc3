// Likelihood profiling: how well each adapter explains a text, as the mean negative
// log-likelihood per token under it. Adapters load into a small context of their own, a group
// at a time (as many as it has slots), and every text under every adapter of the group is one
// mixed-adapter batched call (SideContext.tokenLogprobs), not one pass per adapter.
import type { ScoredPrompt, SideContext } from "../../engine/types.js";

export interface ScoredText {
  tokens: number[];
  from: number; // first token scored (>= 1): the tokens before it are the context
}

export interface ProfilerOptions {
  /** A fresh context with LoRA slots (disposed after each profiling call). */
  open(): Promise<SideContext>;
  slots: number;
  resolve(name: string): string | null; // adapter name -> file
}

export class LikelihoodProfiler {
  constructor(private readonly o: ProfilerOptions) {}

  /** Mean NLL per scored token, [text][adapter]. Rejects for an unknown adapter name. */
  async meanNll(texts: ScoredText[], adapters: string[]): Promise<number[][]> {
    const paths = adapters.map((a) => {
      const p = this.o.resolve(a);
      if (p === null) throw new Error(`unknown adapter ${JSON.stringify(a)}`);
      return p;
    });
    const out = texts.map(() => new Array<number>(adapters.length).fill(NaN));
    const side = await this.o.open();
    try {
      for (let g0 = 0; g0 < adapters.length; g0 += this.o.slots) {
        const group = adapters.slice(g0, g0 + this.o.slots).map((_, i) => g0 + i);
        for (const [slot, a] of group.entries()) await side.loadAdapter(slot, paths[a]);
        const prompts: ScoredPrompt[] = group.flatMap((_, slot) => texts.map((t) => ({ tokens: t.tokens, adapterSlot: slot })));
        const lps = await side.tokenLogprobs(prompts);
        group.forEach((a, slot) =>
          texts.forEach((t, i) => {
            const lp = lps[slot * texts.length + i];
            let sum = 0;
            for (let j = Math.max(0, t.from - 1); j < lp.length; j++) sum -= lp[j];
            out[i][a] = sum / Math.max(1, lp.length - Math.max(0, t.from - 1));
          }),
        );
        for (const slot of group.keys()) side.unloadAdapter(slot);
      }
    } finally {
      side.dispose();
    }
    return out;
  }
}
