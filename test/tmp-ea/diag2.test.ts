import test from "ava";
import { NativeModel } from "../../src/engine/model.js";
import { engineNextLogprobs } from "../helpers/engine.js";
import { Oracle } from "../helpers/oracle.js";
test.serial(`kv`, async (t) => {
  const path = `/tmp/ea/llama-q8_0.gguf`;
  const model = await NativeModel.load(path);
  const oracle = await Oracle.load(path);
  const prompt = model.tokenize("The quick brown fox", true);
  const want = await oracle.greedy(prompt, 24);
  const toks = [...prompt, ...want];
  const ref = await oracle.nextLogprobs(toks);
  for (const [bs, nb] of [[32, 64], [16, 64], [64, 64], [32, 1], [128, 1]]) {
    const ctx = await model.createContext({ nCtx: 256, nSeqMax: 1, nBatchMax: nb, kvType: "f32", threads: 1, kvBlockSize: bs });
    const mine = await engineNextLogprobs(ctx, toks);
    const line: string[] = [];
    for (let i = 28; i < ref.length; i++) {
      const id = toks[i + 1];
      line.push(`${i}:${Math.abs(mine[i][id] - ref[i].get(id)!).toExponential(1)}`);
    }
    t.log(`block ${bs} batch ${nb}: ${line.join(" ")}`);
    ctx.dispose();
  }
  t.pass();
});
