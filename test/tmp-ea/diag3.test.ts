import test from "ava";
import { NativeModel } from "../../src/engine/model.js";
import { engineNextLogprobs } from "../helpers/engine.js";
import { Oracle } from "../helpers/oracle.js";
for (const name of ["llama-q8_0", "llama-q4_k", "qwen2-bf16"])
test.serial(name, async (t) => {
  const path = `/tmp/ea/${name}.gguf`;
  const model = await NativeModel.load(path);
  const oracle = await Oracle.load(path);
  const prompt = model.tokenize("The quick brown fox", true);
  const want = await oracle.greedy(prompt, 24);
  const toks = [...prompt, ...want];
  const ref = await oracle.nextLogprobs(toks);
  const ctx = await model.createContext({ nCtx: 256, nSeqMax: 1, nBatchMax: 64, kvType: "f32", threads: 1 });
  const mine = await engineNextLogprobs(ctx, toks);
  let first = -1;
  for (let i = 0; i < ref.length && first < 0; i++) if (Math.abs(mine[i][toks[i+1]] - ref[i].get(toks[i+1])!) > 1e-3) first = i;
  t.log(`first divergence at ${first}, input token ${toks[first]} (${JSON.stringify(Buffer.from(model.tokenBytes(toks[first])).toString())}), prompt len ${prompt.length}`);
  // the same token alone after BOS
  const solo = [model.info.bos, toks[first], 5];
  const r2 = await oracle.nextLogprobs(solo);
  const m2 = await engineNextLogprobs(ctx, solo);
  t.log(`solo: ${Math.abs(m2[1][5] - r2[1].get(5)!).toExponential(2)} ; before: ${Math.abs(m2[0][toks[first]] - r2[0].get(toks[first])!).toExponential(2)}`);
  t.pass();
});
