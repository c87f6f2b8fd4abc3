// The projections a LoRA adapter may adapt (the engine's slot layout order), with their
// names in llama.cpp GGUF adapters and in PEFT (Hugging Face) adapters.

export const LORA_MODULES = ["q", "k", "v", "o", "gate", "up", "down"] as const;
// phi3's fused projections: qkv (attn_qkv: q rows, k rows, v rows) and gate_up (its ffn_up: gate
// rows, then up rows). The engine splits their B rows into the modules above.
export const FUSED_MODULES = ["qkv", "gate_up"] as const;
/** Every module an adapter file may name: the seven, then the fused ones. */
export const ALL_LORA_MODULES = [...LORA_MODULES, ...FUSED_MODULES] as const;
export type LoraModule = (typeof ALL_LORA_MODULES)[number];

export const GGUF_MODULE_NAME: Readonly<Record<LoraModule, string>> = {
  q: "attn_q", k: "attn_k", v: "attn_v", o: "attn_output", gate: "ffn_gate", up: "ffn_up", down: "ffn_down",
  qkv: "attn_qkv", gate_up: "ffn_up",
};

export const PEFT_MODULE_NAME: Readonly<Record<LoraModule, string>> = {
  q: "q_proj", k: "k_proj", v: "v_proj", o: "o_proj", gate: "gate_proj", up: "up_proj", down: "down_proj",
  qkv: "qkv_proj", gate_up: "gate_up_proj",
};

/** Whether a module lives under self_attn in a PEFT key (else under mlp). */
export function isAttentionModule(m: LoraModule): boolean {
  return m === "q" || m === "k" || m === "v" || m === "o" || m === "qkv";
}

/** PEFT key of a module in layer `layer`: model.layers.N.self_attn.q_proj, model.layers.N.mlp.up_proj. */
export function peftModuleKey(layer: number, m: LoraModule): string {
  const block = isAttentionModule(m) ? "self_attn" : "mlp";
  return `model.layers.${layer}.${block}.${PEFT_MODULE_NAME[m]}`;
}

/** One adapted projection: y += factor * B (A x). */
export interface LoraPair {
  layer: number;
  module: LoraModule;
  rank: number;
  nIn: number;
  nOut: number;
  a: Float32Array; // rank rows of nIn
  b: Float32Array; // nOut rows of rank
}

/** Throws when a pair's arrays do not have the sizes its shape implies. */
export function checkPair(p: LoraPair): void {
  const what = `layer ${p.layer} ${p.module}`;
  if (!ALL_LORA_MODULES.includes(p.module)) throw new Error(`${what}: unknown module`);
  if (![p.layer, p.rank, p.nIn, p.nOut].every((n) => Number.isInteger(n) && n >= 0) || p.rank < 1)
    throw new Error(`${what}: layer, rank, nIn and nOut must be integers (rank >= 1)`);
  if (p.a.length !== p.rank * p.nIn) throw new Error(`${what}: A has ${p.a.length} values, expected rank x nIn = ${p.rank * p.nIn}`);
  if (p.b.length !== p.nOut * p.rank) throw new Error(`${what}: B has ${p.b.length} values, expected nOut x rank = ${p.nOut * p.rank}`);
}
