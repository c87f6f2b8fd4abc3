// The `edgelora` command on stories260K: generate --json, tokenize, info, and bad arguments; info on a
// synthetic Q4_0 model for the weights packed at load.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { packageRoot } from "../src/engine/native.js";
import { writeSyntheticModel } from "../src/gguf/synthetic.js";
import { storiesPath } from "./helpers/engine.js";
import { Oracle } from "./helpers/oracle.js";

const run = promisify(execFile);
const cli = join(packageRoot(), "dist", "src", "cli.js");
const stories = storiesPath();
const SKIP = "skipped: ../shared/models/stories260K.gguf is absent";

async function edgelora(...args: string[]): Promise<string> {
  return (await run(process.execPath, [cli, ...args])).stdout;
}

async function failing(...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [cli, ...args]);
  } catch (e) {
    return e as { code: number; stderr: string };
  }
  throw new Error(`edgelora ${args.join(" ")} should have failed`);
}

test("generate --json: tokens, logprobs, text, timings; greedy matches llama.cpp", async (t) => {
  if (!stories) return t.pass(SKIP);
  const out = JSON.parse(await edgelora("generate", "--model", stories, "--max-tokens", "20", "--temperature", "0", "--json"));
  t.deepEqual(Object.keys(out).sort(), ["logprobs", "text", "timings", "tokens"]);
  t.is(out.tokens.length, out.logprobs.length);
  t.true(out.tokens.length > 0 && out.tokens.length <= 20);
  t.true(out.logprobs.every((lp: number) => lp <= 0 && Number.isFinite(lp)));
  t.is(typeof out.text, "string");
  t.is(out.timings.promptTokens, 1); // BOS alone
  t.is(out.timings.completionTokens, out.tokens.length);
  const oracle = await Oracle.load(stories);
  try {
    t.deepEqual(out.tokens, await oracle.greedy([1], out.tokens.length));
  } finally {
    await oracle.dispose();
  }
});

test("generate: the same seed gives the same text, another seed another text", async (t) => {
  if (!stories) return t.pass(SKIP);
  const args = ["generate", "--model", stories, "--prompt", "Once upon a time", "--max-tokens", "40", "--temperature", "1", "--json"];
  const a = JSON.parse(await edgelora(...args, "--seed", "11"));
  const b = JSON.parse(await edgelora(...args, "--seed", "11"));
  const c = JSON.parse(await edgelora(...args, "--seed", "12"));
  t.deepEqual(a.tokens, b.tokens);
  t.notDeepEqual(a.tokens, c.tokens);
});

test("tokenize prints llama.cpp's ids, BOS included", async (t) => {
  if (!stories) return t.pass(SKIP);
  const oracle = await Oracle.load(stories);
  try {
    for (const text of ["Hello world!", "Once upon a time", "tab\tand\nnewline"]) {
      t.deepEqual(JSON.parse(await edgelora("tokenize", "--model", stories, "--text", text)), oracle.tokenize(text, true));
    }
  } finally {
    await oracle.dispose();
  }
});

test("info: architecture, shapes, types, tokenizer and kernel path", async (t) => {
  if (!stories) return t.pass(SKIP);
  const info = JSON.parse(await edgelora("info", "--model", stories, "--json"));
  // stories260K: dim 64, 5 layers, 8 heads, 4 KV heads, 512-token SentencePiece vocab (DESIGN.md).
  t.like(info, { arch: "llama", nEmbd: 64, nLayer: 5, nHead: 8, nHeadKv: 4, nVocab: 512, tokenizer: "llama" });
  t.is(info.supportedArchs, "llama, qwen2, qwen3, phi3, gemma3");
  t.deepEqual(Object.keys(info.weightTypes), ["f32"]);
  t.regex(info.kernelPath, /^(scalar|avx2|avx2-vnni|avx512-vnni|neon|neon-dotprod)$/);
  const text = await edgelora("info", "--model", stories);
  t.regex(text, /architecture:\s+llama \(supported: llama, qwen2, qwen3, phi3, gemma3\)/);
  t.regex(text, /kernel path:\s+\S+/);
  t.regex(text, /tensor types:\s+f32 x\d+/);
});

test("bad arguments: exit code 1 and one line on stderr", async (t) => {
  const model = stories ?? "missing.gguf";
  for (const args of [
    ["generate", "--model", model, "--max-tokens", "abc"],
    ["generate", "--model", model, "--top-p", "2"],
    ["generate", "--model", "/nonexistent/model.gguf"],
    ["info"],
    ["nosuchcommand"],
  ]) {
    const r = await failing(...args);
    t.is(r.code, 1, args.join(" "));
    t.is(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  t.regex((await failing("generate", "--model", "/nonexistent/model.gguf")).stderr, /model file not found: \/nonexistent\/model.gguf/);
});

test("info: Q4_0 matrices are repacked at load where the kernel path has packed kernels, and not with EDGELORA_PACK=0", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-pack-"));
  try {
    // 2 layers x 7 matrices whose row counts are multiples of 8; the 857-row output head is not.
    const model = join(dir, "q4_0.gguf");
    await writeSyntheticModel({ arch: "llama", type: "q4_0", out: model, seed: 5 });
    const info = async (env: NodeJS.ProcessEnv) =>
      (await run(process.execPath, [cli, "info", "--model", model, "--json"], { env: { ...process.env, ...env } })).stdout;
    const packedInfo = JSON.parse(await info({}));
    const packs = ["avx2", "avx2-vnni", "avx512-vnni"].includes(packedInfo.kernelPath);
    t.deepEqual(packedInfo.packedTypes, packs ? { q4_0: 14 } : {});
    t.deepEqual(JSON.parse(await info({ EDGELORA_PACK: "0" })).packedTypes, {});
    t.regex(await edgelora("info", "--model", model), packs ? /packed:\s+q4_0 x14/ : /packed:\s+none/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
