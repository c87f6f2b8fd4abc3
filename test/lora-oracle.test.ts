// Batched multi-LoRA against llama.cpp: one engine batch mixing four adapters (ranks 4, 8, 16, 64;
// different module subsets; GGUF and PEFT files) and base-only sequences gives, for every
// sequence, llama.cpp's greedy ids and log-probabilities with that adapter alone. Also: scale 0
// is the base model bit for bit, and a merged model (W + s·B·A) agrees with the adapter.
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { NativeModel } from "../src/engine/model.js";
import type { NativeContext } from "../src/engine/context.js";
import { storiesPath } from "./helpers/engine.js";
import { Oracle } from "./helpers/oracle.js";
import { writeSyntheticModel, type SyntheticArch, type SyntheticModelOptions } from "../src/gguf/synthetic.js";
import {
  maxLogprobDiff, mixedGreedy, writeMergedModel, writeTestAdapter,
  MIXED_ADAPTERS, FUSED_MIXED_ADAPTERS, writeQwen2LoraTestModel, type AdapterSpec, type MixedSequence, type TestAdapter,
} from "./helpers/lora.js";

// F32 models and F16-exact adapter values: both engines do float32 arithmetic on the same
// numbers, so only summation order differs (the base model agrees to ~1e-5, engine-oracle.test.ts).
const TOLERANCE = 1e-4;
const N = 24;


const dir = mkdtempSync(join(tmpdir(), "edgelora-lora-oracle-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

interface Case {
  name: string;
  model: () => Promise<string | null>;
  prompts: [string, string];
  adapters?: AdapterSpec[]; // default MIXED_ADAPTERS
  tolerance?: number; // default TOLERANCE
}

/** A small F32 model of a newer architecture, shaped as engine-oracle.test.ts's (128 wide). */
async function archModel(arch: SyntheticArch, extra: Partial<SyntheticModelOptions>): Promise<string> {
  const path = join(dir, `${arch}-f32.gguf`);
  await writeSyntheticModel({ arch, type: "f32", out: path, nEmbd: 128, nFf: 256, nHead: 4, nHeadKv: 2, nLayer: 2, seed: 7, ...extra });
  return path;
}

const CASES: Case[] = [
  { name: "stories260K", model: async () => storiesPath(), prompts: ["Once upon a time", "The little dog"] },
  {
    name: "synthetic qwen2 f32",
    model: () => writeQwen2LoraTestModel(dir),
    prompts: ["The quick brown fox", "Hello world"],
  },
  { name: "synthetic qwen3 f32", model: () => archModel("qwen3", { tied: true, headDim: 64 }), prompts: ["The quick brown fox", "Hello world"] },
  // phi3: PEFT qkv_proj / gate_up_proj and GGUF attn_qkv / ffn_up, split into the engine's modules.
  {
    name: "synthetic phi3 f32", model: () => archModel("phi3", { nRot: 24 }), prompts: ["The quick brown fox", "Hello world"],
    adapters: FUSED_MIXED_ADAPTERS,
  },
  // gemma3: llama.cpp's F16 GELU table flips a gate now and then (engine-oracle.test.ts), hence
  // its F32 bound there.
  {
    name: "synthetic gemma3 f32", model: () => archModel("gemma3", { headDim: 64, nLayer: 3, slidingWindow: 8, swaPattern: 2 }),
    prompts: ["Once upon a time", "Hello world"], tolerance: 5e-3,
  },
];

async function loraContext(model: NativeModel, adapters: TestAdapter[], nSeq: number): Promise<NativeContext> {
  const ctx = await model.createContext({
    nCtx: 96, nSeqMax: nSeq, nBatchMax: 256, kvType: "f32", threads: 1,
    loraSlots: adapters.length, loraMaxRank: Math.max(0, ...adapters.map((a) => a.spec.rank)),
  });
  for (const [slot, a] of adapters.entries()) await ctx.loadAdapter(slot, a.path);
  return ctx;
}

for (const c of CASES) {
  test.serial(`${c.name}: one batch mixing 4 adapters and the base model matches llama.cpp per adapter`, async (t) => {
    const modelPath = await c.model();
    if (!modelPath) return t.pass("skipped: ../shared/models/stories260K.gguf is absent");
    const sub = mkdtempSync(join(dir, "case-"));
    const adapters = await Promise.all((c.adapters ?? MIXED_ADAPTERS).map((s) => writeTestAdapter(modelPath, sub, s)));
    const model = await NativeModel.load(modelPath);
    const oracle = await Oracle.load(modelPath);
    try {
      const [p0, p1] = c.prompts.map((p) => model.tokenize(p, true));
      // Each adapter once (the third at scale 0.5), the first adapter on both prompts, the base on both.
      const seqs: (MixedSequence & { adapter: TestAdapter | null })[] = [
        { prompt: p0, slot: 0, scale: 1, adapter: adapters[0] },
        { prompt: p1, slot: 1, scale: 1, adapter: adapters[1] },
        { prompt: p0, slot: 2, scale: 0.5, adapter: adapters[2] },
        { prompt: p1, slot: 3, scale: 1, adapter: adapters[3] },
        { prompt: p1, slot: 0, scale: 1, adapter: adapters[0] },
        { prompt: p0, slot: -1, scale: 0, adapter: null },
        { prompt: p1, slot: -1, scale: 0, adapter: null },
      ];
      const ctx = await loraContext(model, adapters, seqs.length);
      const runs = await mixedGreedy(ctx, seqs, N);
      ctx.dispose();

      const base = new Map([[p0, runs[5].ids], [p1, runs[6].ids]]);
      for (const [i, s] of seqs.entries()) {
        const label = s.adapter ? `${s.adapter.spec.name} (${s.adapter.spec.format}) x${s.scale}` : "base";
        const adapter = s.adapter ? { filePath: s.adapter.ggufPath, scale: s.scale } : null;
        const want = await oracle.greedy(s.prompt, N, adapter);
        // llama.cpp's greedy run ends at an end-of-generation token (not returned); the engine's goes on.
        if (want.length < N) t.true(model.isEog(runs[i].ids[want.length]), `${label}: llama.cpp stopped early at a token that does not end generation`);
        t.deepEqual(runs[i].ids.slice(0, want.length), want, `${label}: greedy ids differ from llama.cpp's`);
        const ref = (await oracle.nextLogprobs([...s.prompt, ...want], adapter)).slice(s.prompt.length - 1);
        const diff = maxLogprobDiff(runs[i].rows.slice(0, want.length), ref, want);
        t.log(`${c.name} seq ${i} ${label}: max |delta logprob| ${diff.toExponential(2)}`);
        t.true(diff <= (c.tolerance ?? TOLERANCE), `${label}: max |delta logprob| ${diff} > ${c.tolerance ?? TOLERANCE}`);
        if (s.adapter) t.notDeepEqual(runs[i].ids, base.get(s.prompt), `${label}: the adapter does not change the output`);
      }
    } finally {
      model.dispose();
      await oracle.dispose();
    }
  });

  test.serial(`${c.name}: scale 0 is the base model bit for bit; a merged model agrees with the adapter`, async (t) => {
    const modelPath = await c.model();
    if (!modelPath) return t.pass("skipped: ../shared/models/stories260K.gguf is absent");
    const sub = mkdtempSync(join(dir, "merge-"));
    const adapter = await writeTestAdapter(modelPath, sub, (c.adapters ?? MIXED_ADAPTERS)[3]);
    const scale = 0.75;
    const mergedPath = join(sub, "merged.gguf");
    await writeMergedModel(modelPath, mergedPath, adapter, scale);
    const model = await NativeModel.load(modelPath);
    const merged = await NativeModel.load(mergedPath);
    try {
      const prompt = model.tokenize(c.prompts[0], true);
      const ctx = await loraContext(model, [adapter], 3);
      const [base, zero, lora] = await mixedGreedy(ctx, [
        { prompt, slot: -1, scale: 0 },
        { prompt, slot: 0, scale: 0 },
        { prompt, slot: 0, scale },
      ], N);
      ctx.dispose();
      t.deepEqual(zero.ids, base.ids);
      zero.rows.forEach((row, k) => t.deepEqual(row, base.rows[k], `scale 0 changed the logits at token ${k}`));
      t.notDeepEqual(lora.ids, base.ids, "the adapter does not change the output");

      const mctx = await loraContext(merged, [], 1);
      const [m] = await mixedGreedy(mctx, [{ prompt, slot: -1, scale: 0 }], N);
      mctx.dispose();
      t.deepEqual(m.ids, lora.ids);
      const ref = lora.rows.map((row) => new Map([...row.entries()]));
      const worst = maxLogprobDiff(m.rows, ref, lora.ids);
      t.log(`${c.name}: merged vs adapter, max |delta logprob| ${worst.toExponential(2)}`);
      t.true(worst <= (c.tolerance ?? TOLERANCE), `merged vs adapter: ${worst}`);
    } finally {
      model.dispose();
      merged.dispose();
    }
  });
}
