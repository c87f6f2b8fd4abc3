import test from "ava";
import { NativeModel } from "../../src/engine/model.js";
import { Oracle } from "../helpers/oracle.js";
for (const name of ["llama-q8_0", "llama-q4_k", "qwen2-bf16"])
test.serial(name, async (t) => {
  const path = `/tmp/ea/${name}.gguf`;
  const model = await NativeModel.load(path);
  const oracle = await Oracle.load(path);
  const prompt = model.tokenize("The quick brown fox", true);
  const want = await oracle.greedy(prompt, 24);
  const toks = [...prompt, ...want];
  const a = await oracle.nextLogprobs(toks, 1);
  const b = await oracle.nextLogprobs(toks, 512);
  const line: string[] = [];
  for (let i = 0; i < a.length; i++) line.push(`${i}:${Math.abs(a[i].get(toks[i+1])! - b[i].get(toks[i+1])!).toExponential(1)}`);
  t.log(line.join(" "));
  t.pass();
});
