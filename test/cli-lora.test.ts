// The CLI's LoRA features on stories260K: generate --lora (GGUF file or PEFT directory, with a
// scale), batch (input order, mixed adapters in one step, summary, bad lines), adapters convert
// (the GGUF form gives what the PEFT form gives, and has the tensors of an independent
// implementation of convert_lora_to_gguf.py's rules), and clear errors for bad adapters.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { packageRoot } from "../src/engine/native.js";
import { metaValue, readGGUF, readTensorBytes } from "../src/gguf/reader.js";
import { writeSyntheticModel } from "../src/gguf/synthetic.js";
import { writeSyntheticAdapter } from "../src/lora/synthetic.js";
import { storiesPath } from "./helpers/engine.js";
import { writeTestAdapter, type TestAdapter } from "./helpers/lora.js";
import { Oracle } from "./helpers/oracle.js";
import { referenceConvertLora } from "./helpers/reference-lora-convert.js";

const run = promisify(execFile);
const cli = join(packageRoot(), "dist", "src", "cli.js");
const stories = storiesPath();
const SKIP = "skipped: ../shared/models/stories260K.gguf is absent";

async function edgelora(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [cli, ...args]);
}

async function failing(...args: string[]): Promise<string> {
  try {
    await run(process.execPath, [cli, ...args]);
  } catch (e) {
    const err = e as { code: number; stderr: string };
    if (err.code !== 1) throw new Error(`exit code ${err.code}, expected 1: ${err.stderr}`);
    return err.stderr;
  }
  throw new Error(`edgelora ${args.join(" ")} should have failed`);
}

interface GenerateJson {
  tokens: number[];
  logprobs: number[];
  text: string;
}

async function greedy(model: string, maxTokens: number, ...extra: string[]): Promise<GenerateJson> {
  const { stdout } = await edgelora("generate", "--model", model, "--max-tokens", String(maxTokens), "--temperature", "0", "--json", ...extra);
  const { tokens, logprobs, text } = JSON.parse(stdout) as GenerateJson; // timings differ from run to run
  return { tokens, logprobs, text };
}

const dir = mkdtempSync(join(tmpdir(), "edgelora-cli-lora-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

let adapters: Promise<{ gguf: TestAdapter; peft: TestAdapter }> | undefined;
function storiesAdapters(model: string) {
  adapters ??= (async () => ({
    gguf: await writeTestAdapter(model, dir, { name: "a-gguf", format: "gguf", rank: 16, modules: ["q", "k", "v", "o", "gate", "up", "down"], seed: 31 }),
    peft: await writeTestAdapter(model, dir, { name: "b", format: "peft", rank: 8, modules: ["q", "k", "v", "down"], seed: 32, strength: 1 }),
  }))();
  return adapters;
}

test.serial("generate --lora: llama.cpp's greedy ids with the adapter; scale 0 is the base model", async (t) => {
  if (!stories) return t.pass(SKIP);
  const { gguf, peft } = await storiesAdapters(stories);
  const base = await greedy(stories, 24);
  const withGguf = await greedy(stories, 24, "--lora", gguf.path);
  const withPeft = await greedy(stories, 24, "--lora", `${peft.path}:0.5`);
  const oracle = await Oracle.load(stories);
  try {
    t.deepEqual(withGguf.tokens, await oracle.greedy([1], 24, { filePath: gguf.ggufPath, scale: 1 }));
    t.deepEqual(withPeft.tokens, await oracle.greedy([1], 24, { filePath: peft.ggufPath, scale: 0.5 }));
  } finally {
    await oracle.dispose();
  }
  t.notDeepEqual(withGguf.tokens, base.tokens);
  t.notDeepEqual(withPeft.tokens, base.tokens);
  t.deepEqual(await greedy(stories, 24, "--lora", `${gguf.path}:0`), base);
});

test.serial("generate --lora-pool: the option reaches the engine (q8 and q4 are not the f16 pool's bits); a bad type is refused", async (t) => {
  if (!stories) return t.pass(SKIP);
  const { gguf } = await storiesAdapters(stories);
  const f16 = await greedy(stories, 8, "--lora", gguf.path, "--lora-pool", "f16");
  t.deepEqual(f16, await greedy(stories, 8, "--lora", gguf.path), "f16 is the default pool");
  for (const pool of ["q8", "q4"]) {
    const quantized = await greedy(stories, 8, "--lora", gguf.path, "--lora-pool", pool);
    t.is(quantized.tokens.length, 8);
    t.notDeepEqual(quantized.logprobs, f16.logprobs, `${pool}: the same bits as the f16 pool`);
  }
  const err = await failing("generate", "--model", stories, "--lora", gguf.path, "--lora-pool", "q2");
  t.regex(err, /--lora-pool.*q2.*(f16, q8, q4|choices)/is);
});

test.serial("batch: results in input order, mixed adapters in one step, same as generate one at a time", async (t) => {
  if (!stories) return t.pass(SKIP);
  const { gguf, peft } = await storiesAdapters(stories);
  const requests = [
    { id: "first", prompt: "Once upon a time", lora: gguf.path, max_tokens: 12, temperature: 0 },
    { id: 2, prompt: "Once upon a time", max_tokens: 20, temperature: 0 },
    { id: "c", prompt: "The dog", lora: peft.path, scale: 0.5, max_tokens: 5, temperature: 0 },
    { id: "d", prompt: "", lora: gguf.path, scale: 0.25, max_tokens: 16, temperature: 0.8, seed: 5 },
    { id: "e", prompt: "The dog", lora: peft.path, max_tokens: 9, temperature: 0 },
  ];
  const file = join(dir, "requests.jsonl");
  writeFileSync(file, requests.map((r) => JSON.stringify(r)).join("\n") + "\n\n");
  const { stdout, stderr } = await edgelora("batch", "--model", stories, "--requests", file, "--max-batch", "3");
  const lines = stdout.trim().split("\n").map((l) => JSON.parse(l) as GenerateJson & { id: unknown });
  t.deepEqual(lines.map((l) => l.id), requests.map((r) => r.id));
  for (const l of lines) t.deepEqual(Object.keys(l), ["id", "tokens", "logprobs", "text"]);
  const m = /at most (\d+) sequences and (\d+) distinct adapters in one step/.exec(stderr);
  t.truthy(m, stderr);
  t.is(Number(m![1]), 3);
  t.true(Number(m![2]) > 1, stderr);
  t.regex(stderr, /5 requests, \d+ steps, \d+ prompt \+ \d+ generated tokens in [\d.]+ s \([\d.]+ generated tokens\/s\)/);

  // Each greedy request alone through generate gives the same tokens and text.
  for (const [i, r] of requests.entries()) {
    if (r.temperature !== 0) continue;
    const lora = r.lora ? ["--lora", `${r.lora}:${r.scale ?? 1}`] : [];
    const alone = await greedy(stories, r.max_tokens, "--prompt", r.prompt, ...lora);
    t.deepEqual(lines[i].tokens, alone.tokens, `request ${r.id}`);
    t.is(lines[i].text, alone.text);
  }
});

test.serial("batch: a bad line is an error naming the line", async (t) => {
  if (!stories) return t.pass(SKIP);
  const cases: [string, RegExp][] = [
    ['{"id": 1, "prompt": "a"}\n{"id": 2, "prompt": 3}\n', /line 2: "prompt" must be a string/],
    ['{"id": 1, "prompt": "a"}\n\n{"id": 1, "prompt": "b"}\n', /line 3: id 1 already used on line 1/],
    ['{"id": 1, "prompt": "a", "max_tokens": 0}\n', /line 1: "max_tokens" must be an integer >= 1/],
    ['{"id": 1, "prompt": "a", "temprature": 0}\n', /line 1: unknown field "temprature"/],
    ["{oops\n", /line 1: not valid JSON/],
    [`{"id": 1, "prompt": "a"}\n{"id": 2, "prompt": "a", "lora": "${join(dir, "missing.gguf")}"}\n`, /line 2: adapter not found/],
  ];
  for (const [text, want] of cases) {
    const file = join(dir, "bad.jsonl");
    writeFileSync(file, text);
    t.regex(await failing("batch", "--model", stories, "--requests", file), want);
  }
});

test.serial("adapters convert: the GGUF form gives exactly what the PEFT form gives (plain and rsLoRA), with convert_lora_to_gguf.py's tensors", async (t) => {
  if (!stories) return t.pass(SKIP);
  for (const useRslora of [false, true]) {
    const peftDir = join(dir, `convert-${useRslora}`);
    // Hugging Face layout: the q/k lora_B rows are in rotate-half order in the file.
    await writeSyntheticAdapter({ model: stories, out: peftDir, format: "peft", rank: 16, alpha: 8, modules: ["q", "k", "up", "down"], seed: 41, dtype: "bf16", useRslora });
    const out = join(dir, `convert-${useRslora}.gguf`);
    const { stderr } = await edgelora("adapters", "convert", peftDir, "--out", out, "--model", stories);
    t.regex(stderr, /rank 16, alpha 8/);
    const fromPeft = await greedy(stories, 24, "--lora", `${peftDir}:0.7`);
    const fromGguf = await greedy(stories, 24, "--lora", `${out}:0.7`);
    t.deepEqual(fromGguf, fromPeft);
    t.notDeepEqual(fromPeft.tokens, (await greedy(stories, 24)).tokens);
    // The tensors are the reference converter's, byte for byte (rsLoRA differs only in alpha).
    const ref = join(dir, `convert-${useRslora}-ref.gguf`);
    await referenceConvertLora(peftDir, ref, { arch: "llama", numAttentionHeads: 8, numKeyValueHeads: 4 });
    const [mine, theirs] = [readGGUF(out), readGGUF(ref)];
    t.deepEqual(mine.tensors.map((x) => x.name).sort(), theirs.tensors.map((x) => x.name).sort());
    for (const x of mine.tensors) {
      const y = theirs.tensors.find((z) => z.name === x.name)!;
      t.deepEqual([x.type, x.shape], [y.type, y.shape], x.name);
      t.true(Buffer.from(readTensorBytes(out, mine, x)).equals(Buffer.from(readTensorBytes(ref, theirs, y))), `${x.name}: bytes differ from the reference converter's`);
    }
    t.is(metaValue(mine, "adapter.lora.alpha"), useRslora ? 8 * 4 : 8);
  }
  // llama.cpp loads the output and computes what it computes with the reference conversion.
  const oracle = await Oracle.load(stories);
  try {
    const mine = { filePath: join(dir, "convert-false.gguf"), scale: 0.7 };
    const ref = { filePath: join(dir, "convert-false-ref.gguf"), scale: 0.7 };
    const ids = await oracle.greedy([1], 16, mine);
    t.deepEqual(ids, await oracle.greedy([1], 16, ref));
    t.notDeepEqual(ids, await oracle.greedy([1], 16, null));
    const [a, b] = [await oracle.nextLogprobs([1, ...ids], mine), await oracle.nextLogprobs([1, ...ids], ref)];
    a.forEach((row, k) => t.deepEqual([...row.entries()], [...b[k].entries()], `position ${k}`));
  } finally {
    await oracle.dispose();
  }
  // --arch instead of --model: llama needs the head counts; neither is an error.
  const out = join(dir, "arch.gguf");
  t.regex(await failing("adapters", "convert", join(dir, "convert-false"), "--out", out, "--arch", "llama"), /head counts: give --model PATH, or --n-head N/);
  await edgelora("adapters", "convert", join(dir, "convert-false"), "--out", out, "--arch", "llama", "--n-head", "8", "--n-head-kv", "4");
  t.deepEqual(readFileSync(out), readFileSync(join(dir, "convert-false.gguf")));
  t.regex(await failing("adapters", "convert", join(dir, "convert-false"), "--out", out, "--arch", "llama", "--n-head", "5"), /q_proj lora_B: 64 rows cannot be split into 5 heads/);
  t.regex(await failing("adapters", "convert", join(dir, "convert-false"), "--out", out), /--model PATH or --arch NAME/);
});

test.serial("bad adapters: wrong architecture, wrong shapes, truncated file, not an adapter", async (t) => {
  if (!stories) return t.pass(SKIP);
  const { gguf } = await storiesAdapters(stories);
  // Same layer count, other widths: an adapter made for another llama model.
  const other = join(dir, "other.gguf");
  await writeSyntheticModel({ arch: "llama", type: "f32", out: other, nEmbd: 128, nFf: 256, nHead: 4, nHeadKv: 2, nLayer: 5 });
  const wrongShape = join(dir, "wrong-shape.gguf");
  await writeSyntheticAdapter({ model: other, out: wrongShape, format: "gguf", rank: 4, modules: ["q"] });
  const qwen = join(dir, "qwen.gguf");
  await writeSyntheticModel({ arch: "qwen2", type: "f32", out: qwen, nEmbd: 64, nFf: 172, nHead: 8, nHeadKv: 4, nLayer: 5 });
  const wrongArch = join(dir, "wrong-arch.gguf");
  await writeSyntheticAdapter({ model: qwen, out: wrongArch, format: "gguf", rank: 4, modules: ["q"] });
  const truncated = join(dir, "cut.gguf"); // a name that cannot match the error's wording
  const bytes = readFileSync(gguf.path);
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 1000));

  t.regex(await failing("generate", "--model", stories, "--lora", wrongArch), /architecture 'qwen2' does not match the model's 'llama'/);
  t.regex(await failing("generate", "--model", stories, "--lora", wrongShape), /another base model/);
  t.regex(await failing("generate", "--model", stories, "--lora", truncated), /out of bounds: bytes \[\d+, \d+\) exceed the file size/);
  writeFileSync(truncated, bytes.subarray(0, 100));
  t.regex(await failing("generate", "--model", stories, "--lora", truncated), /not a readable GGUF adapter: .*truncated at offset/);
  t.regex(await failing("generate", "--model", stories, "--lora", stories), /not a LoRA adapter/);
  t.regex(await failing("generate", "--model", stories, "--lora", join(dir, "nothing")), /adapter not found/);
  const peftWrongShape = join(dir, "peft-wrong-shape");
  await writeSyntheticAdapter({ model: other, out: peftWrongShape, format: "peft", rank: 4, modules: ["down"] });
  t.regex(await failing("generate", "--model", stories, "--lora", peftWrongShape), /another base model/);
  t.regex(await failing("adapters", "convert", peftWrongShape, "--out", join(dir, "x.gguf"), "--model", stories), /adapter is 256 -> 128, the model's projection is/);
  // In a batch, the error names the first line that uses the adapter.
  const file = join(dir, "bad-adapter.jsonl");
  writeFileSync(file, `{"id": 1, "prompt": "a"}\n{"id": 2, "prompt": "a", "lora": "${wrongArch}"}\n`);
  t.regex(await failing("batch", "--model", stories, "--requests", file), /line 2: .*does not match the model's 'llama'/);
});
