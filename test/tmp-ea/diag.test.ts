import test from "ava";
import { NativeModel } from "../../src/engine/model.js";
import { writeSyntheticModel, type SyntheticType, type SyntheticArch } from "../../src/gguf/synthetic.js";
import { engineGreedy, engineNextLogprobs } from "../helpers/engine.js";
import { Oracle } from "../helpers/oracle.js";
for (const [arch, type] of [["llama", "q8_0"], ["llama", "q4_k"], ["qwen2", "bf16"]] as [SyntheticArch, SyntheticType][])
test.serial(`${arch} ${type}`, async (t) => {
  const path = `/tmp/ea/${arch}-${type}.gguf`;
  await writeSyntheticModel({ arch, type, out: path, nEmbd: 256, nFf: 256, nHead: 4, nHeadKv: 2, nLayer: 2, tied: arch === "qwen2", seed: 7 });
  const model = await NativeModel.load(path);
  const oracle = await Oracle.load(path);
  const prompt = model.tokenize("The quick brown fox", true);
  const ctx = await model.createContext({ nCtx: 64, nSeqMax: 1, nBatchMax: 64, kvType: "f32", threads: 1 });
  t.log("mine  ", JSON.stringify(await engineGreedy(ctx, prompt, 24)));
  const want = await oracle.greedy(prompt, 24);
  t.log("oracle", JSON.stringify(want));
  const toks = [...prompt, ...want];
  const mine = await engineNextLogprobs(ctx, toks);
  const ref = await oracle.nextLogprobs(toks);
  const line: string[] = [];
  for (let i = 0; i < ref.length; i++) {
    const top = [...ref[i].entries()].sort((a, b) => b[1] - a[1]).slice(0, 2);
    let worst = 0;
    for (const [id, lp] of top) worst = Math.max(worst, Math.abs(mine[i][id] - lp));
    line.push(`${i}:${worst.toExponential(1)}(${(top[0][1]-top[1][1]).toFixed(3)})`);
  }
  t.log(line.join(" "));
  t.pass();
});
