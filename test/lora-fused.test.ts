// phi3's fused projections under LoRA (the oracle comparison is in lora-oracle.test.ts): `adapters
// convert` writes a PEFT qkv_proj / gate_up_proj adapter as convert_lora_to_gguf.py does (attn_qkv,
// ffn_up; byte for byte the reference converter's), llama.cpp and the engine load the result and
// agree with the PEFT form, a fused adapter on a model without fused projections is refused, and
// the fused activations after the LoRA expands give the same bits on 2 threads as on 1.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { NativeModel } from "../src/engine/model.js";
import { packageRoot } from "../src/engine/native.js";
import { readGGUF, readTensorBytes } from "../src/gguf/reader.js";
import { writeSyntheticModel } from "../src/gguf/synthetic.js";
import { writeSyntheticAdapter } from "../src/lora/synthetic.js";
import { mixedGreedy, type GreedyRun } from "./helpers/lora.js";
import { Oracle } from "./helpers/oracle.js";
import { referenceConvertLora } from "./helpers/reference-lora-convert.js";

const run = promisify(execFile);
const cli = join(packageRoot(), "dist", "src", "cli.js");
const dir = mkdtempSync(join(tmpdir(), "edgelora-lora-fused-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test.serial("phi3: adapters convert writes attn_qkv / ffn_up as convert_lora_to_gguf.py; PEFT and GGUF forms agree in both engines", async (t) => {
  const model = join(dir, "phi3.gguf");
  await writeSyntheticModel({ arch: "phi3", type: "f32", out: model, nEmbd: 128, nFf: 256, nHead: 4, nHeadKv: 2, nLayer: 2, seed: 5 });
  const peft = join(dir, "phi3-peft");
  await writeSyntheticAdapter({ model, out: peft, format: "peft", rank: 8, alpha: 16, modules: ["qkv", "o", "gate_up"], seed: 3, dtype: "f16", strength: 1 });
  const out = join(dir, "phi3-converted.gguf");
  await run(process.execPath, [cli, "adapters", "convert", peft, "--out", out, "--model", model]);
  const ref = join(dir, "phi3-ref.gguf");
  await referenceConvertLora(peft, ref, { arch: "phi3", numAttentionHeads: 4, numKeyValueHeads: 2 });
  const [mine, theirs] = [readGGUF(out), readGGUF(ref)];
  t.deepEqual(mine.tensors.map((x) => x.name).sort(), theirs.tensors.map((x) => x.name).sort());
  t.true(mine.tensors.some((x) => x.name === "blk.0.attn_qkv.weight.lora_b"));
  t.true(mine.tensors.some((x) => x.name === "blk.1.ffn_up.weight.lora_a"));
  for (const x of mine.tensors) {
    const y = theirs.tensors.find((z) => z.name === x.name)!;
    t.deepEqual([x.type, x.shape], [y.type, y.shape], x.name);
    t.true(Buffer.from(readTensorBytes(out, mine, x)).equals(Buffer.from(readTensorBytes(ref, theirs, y))), `${x.name}: bytes differ`);
  }

  const m = await NativeModel.load(model);
  const oracle = await Oracle.load(model);
  try {
    const prompt = m.tokenize("Once upon a time", true);
    const ctx = await m.createContext({ nCtx: 64, nSeqMax: 3, nBatchMax: 64, kvType: "f32", threads: 1, loraSlots: 2, loraMaxRank: 8 });
    await ctx.loadAdapter(0, peft);
    await ctx.loadAdapter(1, out);
    const [fromPeft, fromGguf, base] = await mixedGreedy(ctx, [
      { prompt, slot: 0, scale: 1 }, { prompt, slot: 1, scale: 1 }, { prompt, slot: -1, scale: 0 },
    ], 16);
    ctx.dispose();
    t.deepEqual(fromGguf.ids, fromPeft.ids);
    t.notDeepEqual(fromPeft.ids, base.ids, "the adapter does not change the output");
    t.deepEqual(await oracle.greedy(prompt, 16, { filePath: out, scale: 1 }), fromPeft.ids);
  } finally {
    m.dispose();
    await oracle.dispose();
  }
});

test.serial("a fused (phi3) adapter on a model without fused projections is refused by name", async (t) => {
  const model = join(dir, "qwen3.gguf");
  await writeSyntheticModel({ arch: "qwen3", type: "f32", out: model, nEmbd: 128, nFf: 256, nHead: 4, nHeadKv: 2, nLayer: 2, seed: 5 });
  const phi3 = join(dir, "phi3-shapes.gguf");
  await writeSyntheticModel({ arch: "phi3", type: "f32", out: phi3, nEmbd: 128, nFf: 256, nHead: 4, nHeadKv: 2, nLayer: 2, seed: 5 });
  const peft = join(dir, "qkv-peft");
  await writeSyntheticAdapter({ model: phi3, out: peft, format: "peft", rank: 4, modules: ["qkv"], seed: 1 });
  const m = await NativeModel.load(model);
  try {
    const ctx = await m.createContext({ nCtx: 32, nSeqMax: 1, nBatchMax: 32, kvType: "f32", threads: 1, loraSlots: 1, loraMaxRank: 4 });
    try {
      await t.throwsAsync(ctx.loadAdapter(0, peft), { message: /adapts a fused q\/k\/v projection, which this qwen3 model does not have/ });
    } finally {
      ctx.dispose();
    }
  } finally {
    m.dispose();
  }
});

// The fused activations run after an adapted token's expands, on whichever thread claims its rows
// (lora/lora_dispatch.h): 2 threads must give the bits of 1. 256 wide with a 512-wide FFN, so the
// FFN projections are split over both threads.
test.serial("gemma3 (GeGLU) and phi3 (fused SwiGLU): a mixed-adapter batch on 2 threads gives the bits of 1", async (t) => {
  for (const arch of ["gemma3", "phi3"] as const) {
    const model = join(dir, `${arch}-threads.gguf`);
    await writeSyntheticModel({ arch, type: "f32", out: model, nEmbd: 256, nFf: 512, nHead: 4, nHeadKv: 2, nLayer: 2, seed: 9 });
    const adapters = [join(dir, `${arch}-a.gguf`), join(dir, `${arch}-b.gguf`)];
    for (const [i, out] of adapters.entries()) await writeSyntheticAdapter({ model, out, format: "gguf", rank: 8, seed: 20 + i, strength: 1 });
    const m = await NativeModel.load(model);
    try {
      const prompts = ["Once upon a time", "The quick brown fox", "Hello world"].map((p) => m.tokenize(p, true));
      const runs: GreedyRun[][] = [];
      for (const threads of [1, 2]) {
        const ctx = await m.createContext({ nCtx: 64, nSeqMax: 3, nBatchMax: 64, kvType: "f32", threads, loraSlots: 2, loraMaxRank: 8 });
        for (const [slot, a] of adapters.entries()) await ctx.loadAdapter(slot, a);
        runs.push(await mixedGreedy(ctx, [
          { prompt: prompts[0], slot: 0, scale: 1 }, { prompt: prompts[1], slot: 1, scale: 1 }, { prompt: prompts[2], slot: -1, scale: 0 },
        ], 12));
        ctx.dispose();
      }
      runs[1].forEach((r, i) => {
        t.deepEqual(r.ids, runs[0][i].ids, `${arch} sequence ${i}: ids`);
        r.rows.forEach((row, k) => t.deepEqual(row, runs[0][i].rows[k], `${arch} sequence ${i}: logits at token ${k}`));
      });
    } finally {
      m.dispose();
    }
  }
});
