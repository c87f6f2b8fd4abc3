// Seeded synthetic LoRA adapters for a base model, in either format. Shapes come from the
// base model (GQA k/v included). A ~ N(0, 1/nIn) keeps A x at the scale of x's elements;
// B ~ N(0, (strength / (factor * sqrt(rank)))^2) makes each adapted projection's output move
// by about `strength` per unit-RMS input: far from zero (B is never zero, unlike a freshly
// initialised PEFT adapter), so the adapter visibly changes what the model generates.
import { Prng } from "../gguf/prng.js";
import { GGMLType } from "../gguf/quantize.js";
import { metaValue, readGGUF } from "../gguf/reader.js";
import { writeLoraGguf } from "./gguf-adapter.js";
import { ALL_LORA_MODULES, GGUF_MODULE_NAME, LoraModule, LoraPair } from "./modules.js";
import { writePeftDir } from "./peft.js";

export interface AdapterModelShapes {
  arch: string;
  nLayer: number;
  nHead: number; // <arch>.attention.head_count
  nHeadKv: number; // <arch>.attention.head_count_kv (nHead when absent)
  nIn: Partial<Record<LoraModule, number>>; // absent for a module the model does not have
  nOut: Partial<Record<LoraModule, number>>;
}

/** The adaptable shapes of a base model GGUF (from blk.0.<module>.weight). A phi3 model has the
 *  fused qkv and gate_up (its ffn_up) instead of q, k, v, gate and up. */
export function readModelShapes(ggufPath: string): AdapterModelShapes {
  const info = readGGUF(ggufPath);
  const arch = metaValue(info, "general.architecture");
  if (typeof arch !== "string") throw new Error(`${ggufPath}: no general.architecture`);
  const nLayer = Number(metaValue(info, `${arch}.block_count`));
  if (!Number.isInteger(nLayer) || nLayer < 1) throw new Error(`${ggufPath}: no ${arch}.block_count`);
  const nHead = Number(metaValue(info, `${arch}.attention.head_count`));
  if (!Number.isInteger(nHead) || nHead < 1) throw new Error(`${ggufPath}: no ${arch}.attention.head_count`);
  const kv = metaValue(info, `${arch}.attention.head_count_kv`);
  const nHeadKv = kv === undefined ? nHead : Number(kv);
  const nIn: Partial<Record<LoraModule, number>> = {};
  const nOut: Partial<Record<LoraModule, number>> = {};
  const has = (n: string) => info.tensors.some((x) => x.name === `blk.0.${n}.weight`);
  const fusedFfn = arch === "phi3" && !has("ffn_gate");
  for (const m of ALL_LORA_MODULES) {
    const name = `blk.0.${GGUF_MODULE_NAME[m]}.weight`;
    const t = info.tensors.find((x) => x.name === name);
    const present = t && (m === "up" ? !fusedFfn : m === "gate_up" ? fusedFfn : true);
    if (t && present) [nIn[m], nOut[m]] = t.shape;
  }
  for (const m of ["o", "down"] as const) if (!nIn[m]) throw new Error(`${ggufPath}: no tensor blk.0.${GGUF_MODULE_NAME[m]}.weight`);
  return { arch, nLayer, nHead, nHeadKv, nIn, nOut };
}

export type AdapterDtype = "f32" | "f16" | "bf16" | "q8_0";

export interface SyntheticAdapterOptions {
  model: string | AdapterModelShapes; // base model GGUF path, or its shapes
  out: string; // GGUF file, or PEFT directory
  format: "gguf" | "peft";
  rank: number;
  alpha?: number; // default: rank (factor 1)
  modules?: LoraModule[]; // default: all seven (phi3: qkv, o, gate_up, down)
  seed?: number; // default 1
  dtype?: AdapterDtype; // default f32; gguf: f32 | f16 | q8_0, peft: f32 | f16 | bf16
  strength?: number; // default 0.5
  useRslora?: boolean; // peft only: factor alpha / sqrt(rank)
}

export interface SyntheticAdapter {
  path: string;
  shapes: AdapterModelShapes;
  pairs: LoraPair[]; // the float values written (before any F16/BF16/Q8_0 rounding), in the model's (GGUF) row order
  factor: number;
}

const GGUF_TYPES: Partial<Record<AdapterDtype, GGMLType.F32 | GGMLType.F16 | GGMLType.Q8_0>> = {
  f32: GGMLType.F32, f16: GGMLType.F16, q8_0: GGMLType.Q8_0,
};
const PEFT_TYPES = { f32: "F32", f16: "F16", bf16: "BF16" } as const;

/** Random A/B for every layer and module. Each (layer, module) has its own PRNG stream, so
 *  its values do not depend on which other modules are adapted. */
export function syntheticPairs(
  shapes: AdapterModelShapes, rank: number, modules: readonly LoraModule[], seed: number, bStd: number,
): LoraPair[] {
  const pairs: LoraPair[] = [];
  for (let layer = 0; layer < shapes.nLayer; layer++) {
    for (const [mi, m] of ALL_LORA_MODULES.entries()) {
      if (!modules.includes(m)) continue;
      if (!shapes.nIn[m]) throw new Error(`the ${shapes.arch} model has no ${m} projection to adapt`);
      const rng = new Prng(Math.imul(seed, 0x9e3779b1) ^ Math.imul(layer + 1, 0x85ebca6b) ^ Math.imul(mi + 1, 0xc2b2ae35));
      const nIn = shapes.nIn[m]!;
      const nOut = shapes.nOut[m]!;
      const a = rng.normals(rank * nIn, 1 / Math.sqrt(nIn));
      const b = rng.normals(nOut * rank, bStd);
      pairs.push({ layer, module: m, rank, nIn, nOut, a, b });
    }
  }
  return pairs;
}

export async function writeSyntheticAdapter(o: SyntheticAdapterOptions): Promise<SyntheticAdapter> {
  const shapes = typeof o.model === "string" ? readModelShapes(o.model) : o.model;
  const rank = o.rank;
  if (!Number.isInteger(rank) || rank < 1) throw new Error("rank must be a positive integer");
  const alpha = o.alpha ?? rank;
  const modules = o.modules ?? ALL_LORA_MODULES.filter((m) => shapes.nIn[m] !== undefined);
  if (modules.length === 0) throw new Error("no modules to adapt");
  for (const m of modules) if (!ALL_LORA_MODULES.includes(m)) throw new Error(`unknown module '${m}'`);
  const dtype = o.dtype ?? "f32";
  const useRslora = o.useRslora ?? false;
  if (useRslora && o.format !== "peft") throw new Error("rsLoRA scaling exists only in the PEFT format");
  const factor = useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
  const pairs = syntheticPairs(shapes, rank, modules, o.seed ?? 1, (o.strength ?? 0.5) / (factor * Math.sqrt(rank)));

  if (o.format === "gguf") {
    const type = GGUF_TYPES[dtype];
    if (type === undefined) throw new Error(`a GGUF adapter cannot hold ${dtype} (f32, f16 or q8_0)`);
    if (type === GGMLType.Q8_0 && (rank % 32 !== 0 || modules.some((m) => (shapes.nIn[m] ?? 0) % 32 !== 0)))
      throw new Error("q8_0 needs the rank and every adapted input size to be multiples of 32");
    await writeLoraGguf(o.out, { arch: shapes.arch, alpha, pairs, type, name: `edgelora synthetic r${rank} seed ${o.seed ?? 1}` });
  } else {
    if (dtype === "q8_0") throw new Error("a PEFT adapter cannot hold q8_0 (f32, f16 or bf16)");
    await writePeftDir(o.out, { alpha, pairs, dtype: PEFT_TYPES[dtype], useRslora, layout: shapes });
  }
  return { path: o.out, shapes, pairs, factor };
}
