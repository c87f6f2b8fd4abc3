// The router's likelihoods against llama.cpp: el_token_logprobs over one call that mixes the base
// model and two adapters gives, per position, llama.cpp's log-probability of the given next token
// with that adapter alone (stories260K, F32 KV cache, F16-exact adapter values).
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NativeModel } from "../../src/engine/model.js";
import { storiesPath } from "../helpers/engine.js";
import { MIXED_ADAPTERS, writeTestAdapter } from "../helpers/lora.js";
import { Oracle } from "../helpers/oracle.js";

const TOLERANCE = 1e-4; // float32 on both sides, summation order apart (as lora-oracle.test.ts)

test("token log-probs under mixed adapters in one call equal llama.cpp's per adapter", async (t) => {
  const modelPath = storiesPath();
  if (!modelPath) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const dir = mkdtempSync(join(tmpdir(), "edgelora-router-oracle-"));
  const adapters = [await writeTestAdapter(modelPath, dir, MIXED_ADAPTERS[0]), await writeTestAdapter(modelPath, dir, MIXED_ADAPTERS[2])];
  const model = await NativeModel.load(modelPath);
  const oracle = await Oracle.load(modelPath);
  try {
    const ctx = await model.createContext({ nCtx: 96, nSeqMax: 3, nBatchMax: 16, kvType: "f32", threads: 1, loraSlots: 2, loraMaxRank: 16 });
    for (const [slot, a] of adapters.entries()) await ctx.loadAdapter(slot, a.path);
    const texts = ["Once upon a time, there was a little girl named Lily.", "The little dog ran to the park."].map((p) => model.tokenize(p, true));
    const prompts = [-1, 0, 1].flatMap((slot) => texts.map((tokens) => ({ tokens, adapterSlot: slot })));
    const mine = await ctx.tokenLogprobs(prompts);
    ctx.dispose();
    for (const [i, p] of prompts.entries()) {
      const a = p.adapterSlot < 0 ? null : { filePath: adapters[p.adapterSlot].ggufPath, scale: 1 };
      const ref = await oracle.nextLogprobs(p.tokens, a);
      t.is(mine[i].length, p.tokens.length - 1);
      let worst = 0;
      ref.forEach((m, j) => (worst = Math.max(worst, Math.abs(mine[i][j] - m.get(p.tokens[j + 1])!))));
      t.log(`prompt ${i % texts.length} under slot ${p.adapterSlot}: max |delta logprob| ${worst.toExponential(2)}`);
      t.true(worst <= TOLERANCE, `prompt ${i}: ${worst}`);
    }
    // The adapters change the likelihoods, so the comparison can tell them apart.
    t.true(Math.abs(mine[0][3] - mine[2][3]) > 1e-3 || Math.abs(mine[0][5] - mine[4][5]) > 1e-3);
  } finally {
    model.dispose();
    await oracle.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
