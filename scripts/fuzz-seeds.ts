// Seeds for the fuzz targets (native/fuzz/): small valid inputs of each format, so that libFuzzer
// starts from files that reach deep into the parsers. Also writes the vocabulary-only GGUFs the
// tokenizer target loads (SentencePiece, llama-bpe and qwen2 BPE), which are committed under
// native/fuzz/vocab so the ctest regression runs need no generated files.
// Usage: node dist/scripts/fuzz-seeds.js --out DIR [--vocab-dir DIR]
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { Command } from "commander";

import { packageRoot } from "../src/engine/native.js";
import { GGMLType } from "../src/gguf/quantize.js";
import { setTokenizerMeta, writeSyntheticModel } from "../src/gguf/synthetic.js";
import { bpeVocab, spmVocab, type Vocab } from "../src/gguf/vocab.js";
import { GGUFValueType, GGUFWriter, meta } from "../src/gguf/writer.js";
import { writeSafetensors } from "../src/lora/safetensors.js";
import { writeSyntheticAdapter } from "../src/lora/synthetic.js";

const o = new Command().requiredOption("--out <dir>").option("--vocab-dir <dir>").parse().opts<{ out: string; vocabDir?: string }>();

async function writeVocab(path: string, v: Vocab): Promise<void> {
  const w = new GGUFWriter();
  w.set("general.architecture", meta.str("llama"));
  setTokenizerMeta(w, v);
  await w.write(path);
}

const dir = (name: string) => {
  const d = join(o.out, name);
  mkdirSync(d, { recursive: true });
  return d;
};

// GGUF: a tiny model of each tokenizer kind and weight types, and a LoRA adapter for it.
const gguf = dir("fuzz_gguf");
const model = join(gguf, "model-q4_0.gguf");
await writeSyntheticModel({ arch: "llama", type: "q4_0", out: model, nEmbd: 32, nFf: 64, nHead: 2, nHeadKv: 1, nLayer: 1, seed: 1 });
await writeSyntheticModel({ arch: "qwen2", type: "q8_0", out: join(gguf, "model-qwen2-q8_0.gguf"), nEmbd: 32, nFf: 64, nHead: 2, nHeadKv: 1, nLayer: 1, seed: 2 });
await writeSyntheticAdapter({ model, out: join(gguf, "lora.gguf"), format: "gguf", rank: 2, seed: 3, modules: ["q", "k", "down"] });
{
  const w = new GGUFWriter();
  w.set("general.architecture", meta.str("llama"));
  w.set("v.floats", meta.array(GGUFValueType.FLOAT32, [0.5, -4]));
  w.set("v.strs", meta.array(GGUFValueType.STRING, ["<s>", "", "héllo"]));
  w.set("v.u64", meta.u64(1n << 40n));
  w.set("v.bool", meta.bool(true));
  w.addTensor("a", [4, 2], GGMLType.F32, () => new Uint8Array(32));
  w.addTensor("b", [32, 2], GGMLType.Q8_0, () => new Uint8Array(68));
  await w.write(join(gguf, "metadata.gguf"));
}

// safetensors: every dtype, and a PEFT adapter's file.
const st = dir("fuzz_safetensors");
await writeSafetensors(join(st, "dtypes.safetensors"), [
  { name: "f32", dtype: "F32", shape: [2, 3], data: new Uint8Array(24) },
  { name: "f16", dtype: "F16", shape: [3], data: new Uint8Array(6) },
  { name: "bf16", dtype: "BF16", shape: [1, 1, 2], data: new Uint8Array(4) },
], { format: "pt" });
const peft = join(o.out, "peft-seed");
await writeSyntheticAdapter({ model, out: peft, format: "peft", rank: 2, seed: 4, modules: ["q", "v"] });
writeFileSync(join(st, "peft.safetensors"), readFileSync(join(peft, "adapter_model.safetensors")));

// adapter_config.json: PEFT's usual keys and the variants the loader reads.
const json = dir("fuzz_adapter_config");
writeFileSync(join(json, "plain.json"), readFileSync(join(peft, "adapter_config.json")));
writeFileSync(join(json, "patterns.json"), JSON.stringify({
  peft_type: "LORA", r: 2, lora_alpha: 4.5, use_rslora: true, target_modules: ".*\\.(q_proj|v_proj)",
  rank_pattern: { q_proj: 2 }, alpha_pattern: {}, modules_to_save: null, bias: "none", fan_in_fan_out: false,
  nested: [1, -2.5e-3, "\u00e9\\n\\u0041", true, false, null, { a: [] }],
}));

// Tokenizer: the tokenizer parity corpus, one text per file (the first byte picks the tokenizer).
const tok = dir("fuzz_tokenizer");
const texts = JSON.parse(readFileSync(join(packageRoot(), "test", "fixtures", "tokenizer-corpus.json"), "utf8")) as string[];
texts.forEach((t, i) => writeFileSync(join(tok, `text-${i}`), Buffer.concat([Buffer.from([i % 8]), Buffer.from(t, "utf8")])));

if (o.vocabDir) {
  mkdirSync(o.vocabDir, { recursive: true });
  await writeVocab(join(o.vocabDir, "spm.gguf"), spmVocab());
  await writeVocab(join(o.vocabDir, "bpe-llama.gguf"), bpeVocab("llama-bpe"));
  await writeVocab(join(o.vocabDir, "bpe-qwen2.gguf"), bpeVocab("qwen2"));
}
