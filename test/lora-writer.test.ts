import test from "ava";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { fp16ToFp32, GGMLType } from "../src/gguf/quantize.js";
import { metaValue, readGGUF, readTensorBytes } from "../src/gguf/reader.js";
import { writeSyntheticModel } from "../src/gguf/synthetic.js";
import { writeLoraGguf } from "../src/lora/gguf-adapter.js";
import { LoraPair } from "../src/lora/modules.js";
import { encodeSafetensors } from "../src/lora/safetensors.js";
import { readModelShapes, writeSyntheticAdapter } from "../src/lora/synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "edgelora-lora-"));

/** Header and data section of a safetensors file, as the format defines them. */
function parseSafetensors(bytes: Uint8Array) {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString("utf8")) as Record<string, any>;
  return { headerLength: n, header, data: bytes.subarray(8 + n) };
}

function pair(layer: number, module: LoraPair["module"], rank: number, nIn: number, nOut: number): LoraPair {
  const a = Float32Array.from({ length: rank * nIn }, (_, i) => (i % 7) / 8 - 0.25);
  const b = Float32Array.from({ length: nOut * rank }, (_, i) => (i % 5) / 4 - 0.5);
  return { layer, module, rank, nIn, nOut, a, b };
}

test("safetensors: header, 8-byte aligned data, offsets and metadata", (t) => {
  const x = new Uint8Array(12).map((_, i) => i);
  const y = new Uint8Array(6).map((_, i) => 100 + i);
  const bytes = encodeSafetensors(
    [{ name: "x", dtype: "F32", shape: [3, 1], data: x }, { name: "y", dtype: "BF16", shape: [3], data: y }],
    { format: "pt" },
  );
  const { headerLength, header, data } = parseSafetensors(bytes);
  t.is(headerLength % 8, 0);
  t.deepEqual(header.__metadata__, { format: "pt" });
  t.deepEqual(header.x, { dtype: "F32", shape: [3, 1], data_offsets: [0, 12] });
  t.deepEqual(header.y, { dtype: "BF16", shape: [3], data_offsets: [12, 18] });
  t.deepEqual([...data], [...x, ...y]);
  t.throws(() => encodeSafetensors([{ name: "z", dtype: "F16", shape: [4], data: x }]), { message: /needs 8/ });
});

test("LoRA GGUF: llama.cpp's keys, tensor names and shapes, values", async (t) => {
  const path = join(dir, "small.gguf");
  const pairs = [pair(0, "q", 2, 8, 8), pair(1, "k", 2, 8, 4), pair(1, "down", 2, 16, 8)];
  await writeLoraGguf(path, { arch: "qwen2", alpha: 4, pairs, type: GGMLType.F16 });
  const info = readGGUF(path);
  t.is(metaValue(info, "general.type"), "adapter");
  t.is(metaValue(info, "general.architecture"), "qwen2");
  t.is(metaValue(info, "adapter.type"), "lora");
  t.is(metaValue(info, "adapter.lora.alpha"), 4);
  t.deepEqual(info.tensors.map((x) => [x.name, x.shape, x.type]), [
    ["blk.0.attn_q.weight.lora_a", [8, 2], GGMLType.F16], ["blk.0.attn_q.weight.lora_b", [2, 8], GGMLType.F16],
    ["blk.1.attn_k.weight.lora_a", [8, 2], GGMLType.F16], ["blk.1.attn_k.weight.lora_b", [2, 4], GGMLType.F16],
    ["blk.1.ffn_down.weight.lora_a", [16, 2], GGMLType.F16], ["blk.1.ffn_down.weight.lora_b", [2, 8], GGMLType.F16],
  ]);
  const b = readTensorBytes(path, info, info.tensors[3]);
  const dv = new DataView(b.buffer, b.byteOffset);
  t.deepEqual(Array.from({ length: 8 }, (_, i) => fp16ToFp32(dv.getUint16(2 * i, true))), [...pairs[1].b]);
  await t.throwsAsync(writeLoraGguf(join(dir, "bad.gguf"), { arch: "llama", alpha: 1, pairs: [{ ...pairs[0], rank: 3 }] }),
    { message: /A has 16 values, expected rank x nIn = 24/ });
});

test("synthetic adapter: base shapes (GQA k/v), nonzero B, seeded, same values in both formats", async (t) => {
  const model = join(dir, "base.gguf");
  await writeSyntheticModel({ arch: "llama", type: "f32", out: model, nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 96 });
  const shapes = readModelShapes(model);
  t.deepEqual(shapes, {
    arch: "llama", nLayer: 2, nHead: 4, nHeadKv: 2,
    nIn: { q: 64, k: 64, v: 64, o: 64, gate: 64, up: 64, down: 96 },
    nOut: { q: 64, k: 32, v: 32, o: 64, gate: 96, up: 96, down: 64 },
  });

  const gguf = await writeSyntheticAdapter({ model, out: join(dir, "syn.gguf"), format: "gguf", rank: 4, alpha: 8, seed: 3 });
  t.is(gguf.pairs.length, 14);
  t.is(gguf.factor, 2);
  // B's spread matches the requested strength: std = 0.5 / (factor * sqrt(rank)) = 0.125.
  const all = gguf.pairs.flatMap((p) => [...p.b]);
  const std = Math.sqrt(all.reduce((s, v) => s + v * v, 0) / all.length);
  t.true(std > 0.11 && std < 0.14, `B std ${std}`);

  const again = await writeSyntheticAdapter({ model, out: join(dir, "syn2.gguf"), format: "gguf", rank: 4, alpha: 8, seed: 3 });
  t.deepEqual(readFileSync(again.path), readFileSync(gguf.path));
  const other = await writeSyntheticAdapter({ model, out: join(dir, "syn3.gguf"), format: "gguf", rank: 4, alpha: 8, seed: 4 });
  t.notDeepEqual(readFileSync(other.path), readFileSync(gguf.path));

  // GGUF lora_b (ne [rank, nOut]) and PEFT lora_B ([nOut, rank]) hold the same F32 rows; for
  // llama's k_proj in Hugging Face order: per KV head of 16 rows, GGUF row 2i + j is row 8j + i.
  const peftDir = join(dir, "syn-peft");
  await writeSyntheticAdapter({ model, out: peftDir, format: "peft", rank: 4, alpha: 8, seed: 3, modules: ["k", "down"] });
  const config = JSON.parse(readFileSync(join(peftDir, "adapter_config.json"), "utf8"));
  t.like(config, { peft_type: "LORA", r: 4, lora_alpha: 8, target_modules: ["k_proj", "down_proj"], use_rslora: false });
  const st = parseSafetensors(readFileSync(join(peftDir, "adapter_model.safetensors")));
  const info = readGGUF(gguf.path);
  const names = Object.keys(st.header).filter((k) => k !== "__metadata__");
  t.is(names.length, 8);
  const hfRowOf = (g: number) => Math.floor(g / 16) * 16 + (g % 2) * 8 + Math.floor((g % 16) / 2);
  for (const [peft, ggufName, rowOf] of [
    ["base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight", "blk.1.attn_k.weight.lora_b", hfRowOf],
    ["base_model.model.model.layers.0.mlp.down_proj.lora_A.weight", "blk.0.ffn_down.weight.lora_a", (g: number) => g],
  ] as const) {
    const [begin, end] = st.header[peft].data_offsets as [number, number];
    const tensor = info.tensors.find((x) => x.name === ggufName)!;
    const mine = Buffer.from(st.data.subarray(begin, end));
    const want = Buffer.from(readTensorBytes(gguf.path, info, tensor));
    const rowBytes = 4 * tensor.shape[0];
    for (let g = 0; g < tensor.shape[1]; g++)
      t.true(mine.subarray(rowOf(g) * rowBytes, (rowOf(g) + 1) * rowBytes).equals(want.subarray(g * rowBytes, (g + 1) * rowBytes)), `${peft} row ${g}`);
  }
  t.deepEqual(st.header["base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight"].shape, [32, 4]);

  await t.throwsAsync(writeSyntheticAdapter({ model, out: join(dir, "q8.gguf"), format: "gguf", rank: 4, dtype: "q8_0" }),
    { message: /multiples of 32/ });
  await t.throwsAsync(writeSyntheticAdapter({ model, out: join(dir, "x"), format: "peft", rank: 4, dtype: "q8_0" }),
    { message: /PEFT adapter cannot hold q8_0/ });
  await t.throwsAsync(writeSyntheticAdapter({ model, out: join(dir, "y.gguf"), format: "gguf", rank: 4, useRslora: true }),
    { message: /rsLoRA/ });
});

test("stories260K shapes", (t) => {
  const path = new URL("../../../shared/models/stories260K.gguf", import.meta.url).pathname;
  if (!existsSync(path)) return t.pass("skipped: ../shared/models/stories260K.gguf is absent");
  const s = readModelShapes(path);
  t.is(s.nLayer, 5);
  t.deepEqual([s.nIn.k, s.nOut.k, s.nIn.q, s.nOut.q], [64, 32, 64, 64]);
});
