// A deterministic StepEngine for scheduler, adapter and daemon tests. Its "model" picks the next token from the
// sequence's own history, the adapter loaded in its slot (by path, not slot number), the scale and the sampler
// seed, so a sequence's output can never depend on its batch-mates. It rejects what a real engine would not
// survive (position gaps, a seq id reused without clearSeq, two steps at once) and records steps and loads.
import type {
  AdapterSlotInfo,
  EngineLimits,
  ModelInfo,
  SampledToken,
  SamplingParams,
  StepEngine,
  StepResult,
  StepToken,
} from "../../src/engine/types.js";
import { RequestError, type AdapterSlots } from "../../src/scheduler/types.js";

export const BOS = 0;
export const EOS = 1;

// Text pieces from id 2 on; characters without a piece are spelt as UTF-8 byte tokens (like SentencePiece's
// byte fallback), so multi-byte characters arrive split across tokens.
const PIECES = [
  " ", ..."abcdefghijklmnopqrstuvwxyz", ..."ABCDEFGHIJKLMNOPQRSTUVWXYZ", ".", ",", "!", "\n",
  "he", "llo", " wor", "ld", "ST", "OP", "Hello",
];
const BYTE_BASE = 2 + PIECES.length; // token BYTE_BASE + b is the raw byte b
const N_VOCAB = BYTE_BASE + 256;
// The hash "model" speaks only in single ASCII letters and spaces, plus EOS now and then.
const BABBLE = Array.from({ length: 53 }, (_, i) => 2 + i);

/** What the fake model generates: the next token after `history` (prompt and completion fed so far). */
export type FakeModel = (history: readonly number[], adapter: string | null, scale: number, sampling: SamplingParams) => number;

export const hashModel: FakeModel = (history, adapter, scale, sampling) => {
  let h = 2166136261 ^ sampling.seed ^ Math.round(scale * 1000);
  for (const ch of adapter ?? "") h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  for (const t of history) h = Math.imul(h ^ t, 16777619);
  h >>>= 0;
  return h % 17 === 0 ? EOS : BABBLE[h % BABBLE.length];
};

export interface FakeEngineOptions {
  model?: FakeModel;
  meta?: Record<string, string>; // GGUF metadata for metaString
  nCtxTrain?: number;
  nCtx?: number;
  nSeqMax?: number;
  nBatchMax?: number;
  loadDelayMs?: number;
}

export class FakeEngine implements StepEngine {
  readonly info: ModelInfo;
  readonly limits: EngineLimits;
  model: FakeModel;
  /** Every step's tokens, in order. */
  readonly steps: StepToken[][] = [];
  /** Runs (and is awaited) before each step computes: tests advance a clock or pause here. */
  beforeStep: ((tokens: StepToken[]) => void | Promise<void>) | null = null;
  /** When it returns true for a step, that step rejects and changes nothing. */
  failWhen: ((tokens: StepToken[], index: number) => boolean) | null = null;
  readonly samplers = new Map<number, SamplingParams>();
  readonly histories = new Map<number, number[]>();
  readonly loads: { slot: number; path: string }[] = [];
  readonly unloads: number[] = [];
  failLoad: string | null = null; // a path whose load fails
  readonly failLoadPaths = new Set<string>(); // more of them (a file a real engine could not open)
  private readonly loaded = new Map<number, string>(); // slot -> adapter path
  private readonly seqSlot = new Map<number, number>(); // seq -> adapter slot it started with
  private readonly meta: Record<string, string>;
  private readonly loadDelayMs: number;
  private inStep = false;

  constructor(options: FakeEngineOptions = {}) {
    this.model = options.model ?? hashModel;
    this.meta = options.meta ?? {};
    this.limits = { nCtx: options.nCtx ?? 512, nSeqMax: options.nSeqMax ?? 64, nBatchMax: options.nBatchMax ?? 4096 };
    this.loadDelayMs = options.loadDelayMs ?? 5;
    this.info = {
      arch: "llama", name: "fake", nVocab: N_VOCAB, nCtxTrain: options.nCtxTrain ?? 2048, nEmbd: 64, nLayer: 2,
      nHead: 4, nHeadKv: 4, nFf: 128, headDim: 16, ropeFreqBase: 10000, rmsNormEps: 1e-5, ropeNeox: false,
      tiedOutput: false, nParams: 1000, weightBytes: 4000, weightTypes: { F32: 10 }, packedTypes: {}, tokenizer: "llama",
      tokenizerPre: "default", bos: BOS, eos: EOS, addBos: true, kernelPath: "scalar",
      supportedArchs: "llama, qwen2, qwen3, phi3, gemma3",
    };
  }

  /** Greedy longest-piece tokenization; characters without a piece become byte tokens. */
  tokenize(text: string, addSpecial = false): number[] {
    const out: number[] = addSpecial ? [BOS] : [];
    let i = 0;
    while (i < text.length) {
      let best = -1;
      for (let p = 0; p < PIECES.length; p++) {
        if (text.startsWith(PIECES[p], i) && (best < 0 || PIECES[p].length > PIECES[best].length)) best = p;
      }
      if (best >= 0) {
        out.push(2 + best);
        i += PIECES[best].length;
      } else {
        const ch = String.fromCodePoint(text.codePointAt(i)!);
        for (const b of Buffer.from(ch, "utf8")) out.push(BYTE_BASE + b);
        i += ch.length;
      }
    }
    return out;
  }

  detokenize(tokens: number[]): string {
    return Buffer.concat(tokens.map((t) => this.tokenBytes(t))).toString("utf8");
  }

  tokenBytes(token: number): Uint8Array {
    if (token < 2) return new Uint8Array(0);
    if (token < BYTE_BASE) return Buffer.from(PIECES[token - 2], "utf8");
    return Uint8Array.of(token - BYTE_BASE);
  }

  isEog(token: number): boolean {
    return token === EOS;
  }

  metaString(key: string): string | null {
    return this.meta[key] ?? null;
  }

  setSampler(seq: number, params: SamplingParams): void {
    this.idle("setSampler");
    if (params.temperature < 0) throw new Error("temperature must be >= 0");
    this.samplers.set(seq, { ...params });
  }

  async step(tokens: StepToken[]): Promise<StepResult> {
    if (this.inStep) throw new Error("two steps in flight");
    this.inStep = true;
    try {
      await new Promise((resolve) => setImmediate(resolve)); // like the real engine: resolves on a later turn
      if (this.beforeStep) await this.beforeStep(tokens);
      const index = this.steps.length;
      this.steps.push(tokens.map((t) => ({ ...t })));
      this.validate(tokens);
      if (this.failWhen?.(tokens, index)) throw new Error("injected step failure");
      const sampled: SampledToken[] = [];
      for (const t of tokens) {
        const history = this.histories.get(t.seq) ?? [];
        history.push(t.token);
        this.histories.set(t.seq, history);
        this.seqSlot.set(t.seq, t.adapterSlot);
        if (t.sample) {
          const adapter = t.adapterSlot < 0 ? null : this.loaded.get(t.adapterSlot)!;
          const token = this.model(history, adapter, t.adapterScale, this.samplers.get(t.seq)!);
          sampled.push({ seq: t.seq, token, logprob: -1 });
        }
      }
      return { sampled, ms: 1 };
    } finally {
      this.inStep = false;
    }
  }

  private validate(tokens: StepToken[]): void {
    if (tokens.length === 0 || tokens.length > this.limits.nBatchMax) throw new Error(`bad batch size ${tokens.length}`);
    const nextPos = new Map<number, number>();
    for (const t of tokens) {
      if (t.seq < 0 || t.seq >= this.limits.nSeqMax) throw new Error(`seq ${t.seq} out of range`);
      const expected = nextPos.get(t.seq) ?? this.histories.get(t.seq)?.length ?? 0;
      if (t.pos >= this.limits.nCtx) throw new Error(`seq ${t.seq}: pos ${t.pos} beyond the context`);
      if (t.pos !== expected) throw new Error(`seq ${t.seq}: pos ${t.pos}, expected ${expected}`);
      nextPos.set(t.seq, t.pos + 1);
      const slot = this.seqSlot.get(t.seq);
      if (slot !== undefined && slot !== t.adapterSlot) throw new Error(`seq ${t.seq} changed adapter slot`);
      if (t.adapterSlot >= 0 && !this.loaded.has(t.adapterSlot)) throw new Error(`slot ${t.adapterSlot} is empty`);
      if (t.sample && !this.samplers.has(t.seq)) throw new Error(`seq ${t.seq} sampled without a sampler`);
    }
  }

  async loadAdapter(slot: number, path: string): Promise<AdapterSlotInfo> {
    await new Promise((resolve) => setTimeout(resolve, this.loadDelayMs));
    if (path === this.failLoad || this.failLoadPaths.has(path)) throw new Error("bad adapter file");
    this.loaded.set(slot, path);
    this.loads.push({ slot, path });
    return { slot, rank: 8, alpha: 16, factor: 2, bytes: 1024, modules: ["q", "v"] };
  }

  unloadAdapter(slot: number): void {
    this.idle("unloadAdapter");
    this.loaded.delete(slot);
    this.unloads.push(slot);
  }

  clearSeq(seq: number): void {
    this.idle("clearSeq");
    this.histories.delete(seq);
    this.samplers.delete(seq);
    this.seqSlot.delete(seq);
  }

  dispose(): void {}

  // Like the native context: only adapter loads may overlap a step.
  private idle(what: string): void {
    if (this.inStep) throw new Error(`${what}: a step is in flight`);
  }
}

/** A model that answers each known prompt (tokenized with BOS) with a fixed text, then EOS; other prompts babble. */
export function scriptedModel(engine: FakeEngine, replies: Record<string, string>): FakeModel {
  const scripts = Object.entries(replies).map(([prompt, reply]) => ({
    prompt: engine.tokenize(prompt, true),
    reply: [...engine.tokenize(reply), EOS],
  }));
  return (history, adapter, scale, sampling) => {
    for (const { prompt, reply } of scripts) {
      if (history.length >= prompt.length && prompt.every((t, i) => history[i] === t)) {
        return reply[history.length - prompt.length] ?? EOS;
      }
    }
    return hashModel(history, adapter, scale, sampling);
  };
}

/** A LoRA slot pool over a FakeEngine for scheduler tests: pins per slot, the least recently used unpinned slot
 *  is evicted, the adapter's name is its path. */
export class FakeSlots implements AdapterSlots {
  readonly slots: { name: string | null; pins: number; used: number; loading: Promise<unknown> | null }[];
  private clock = 0;

  constructor(
    private readonly engine: FakeEngine,
    nSlots: number,
    private readonly scales: Record<string, number>, // registered adapter name -> scale
  ) {
    this.slots = Array.from({ length: nSlots }, () => ({ name: null, pins: 0, used: 0, loading: null }));
  }

  async acquire(name: string): Promise<{ slot: number; scale: number } | null> {
    if (!(name in this.scales)) throw new RequestError("ADAPTER_NOT_FOUND", `no adapter ${name}`);
    let slot = this.slots.findIndex((s) => s.name === name);
    if (slot < 0) {
      const unpinned = this.slots.map((s, i) => ({ s, i })).filter(({ s }) => s.pins === 0);
      if (unpinned.length === 0) return null;
      slot = unpinned.reduce((a, b) => (b.s.used < a.s.used ? b : a)).i;
      const s = this.slots[slot];
      s.name = name;
      s.pins++;
      const loading = this.engine.loadAdapter(slot, name);
      s.loading = loading;
      try {
        await loading;
      } finally {
        if (s.loading === loading) s.loading = null;
      }
    } else {
      // A load still in flight is shared, as the product's store does: the slot is not usable before.
      this.slots[slot].pins++;
      await this.slots[slot].loading;
    }
    this.slots[slot].used = ++this.clock;
    return { slot, scale: this.scales[name] };
  }

  release(name: string): void {
    const slot = this.slots.find((s) => s.name === name);
    if (!slot || slot.pins === 0) throw new Error(`release of unpinned adapter ${name}`);
    slot.pins--;
  }

  get pinned(): number {
    return this.slots.reduce((n, s) => n + s.pins, 0);
  }
}
