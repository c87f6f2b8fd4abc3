// Writes a seeded synthetic llama-family GGUF model. Examples:
//   node dist/scripts/write-synthetic-model.js --arch llama --type q4_0 --out /tmp/tiny.gguf
//   node dist/scripts/write-synthetic-model.js --arch llama --type f16 --out /tmp/bench.gguf \
//     --n-embd 896 --n-layer 24 --n-head 14 --n-head-kv 2 --n-ff 4864
import { Command, InvalidArgumentError } from "commander";

import { GGMLType, TYPE_INFO } from "../src/gguf/quantize.js";
import { WEIGHT_MIXES } from "../src/gguf/presets.js";
import { SYNTHETIC_ARCHS, SyntheticArch, SyntheticType, SyntheticVocab, writeSyntheticModel } from "../src/gguf/synthetic.js";

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function oneOf<T extends string>(...allowed: T[]) {
  return (v: string): T => {
    if (!(allowed as string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${allowed.join(", ")}`);
    return v as T;
  };
}

const program = new Command()
  .name("write-synthetic-model")
  .description("Write a seeded synthetic llama-family GGUF model (llama, qwen2, qwen3, phi3, gemma3)")
  .requiredOption("--arch <arch>", SYNTHETIC_ARCHS.join(" | "), oneOf<SyntheticArch>(...SYNTHETIC_ARCHS))
  .requiredOption("--type <type>", `a uniform type or a preset mix: ${WEIGHT_MIXES.join(" | ")}`,
    oneOf<SyntheticType>(...WEIGHT_MIXES))
  .requiredOption("--out <file>", "output GGUF path")
  .option("--n-embd <n>", "embedding size", positive, 64)
  .option("--n-layer <n>", "layers", positive, 2)
  .option("--n-head <n>", "attention heads", positive, 4)
  .option("--n-head-kv <n>", "key/value heads", positive, 2)
  .option("--n-ff <n>", "feed-forward size", positive, 128)
  .option("--n-ctx <n>", "training context length", positive, 2048)
  .option("--head-dim <n>", "head size (default n_embd / n_head; qwen3 and gemma3 may differ)", positive)
  .option("--n-rot <n>", "rotated dimensions per head (default the head size)", positive)
  .option("--sliding-window <n>", "gemma3: positions a local layer sees", positive)
  .option("--swa-pattern <n>", "gemma3: every n-th layer is global", positive)
  .option("--vocab <kind>", "spm | bpe (default: bpe for qwen2 and qwen3, spm for the others)", oneOf<SyntheticVocab>("spm", "bpe"))
  .option("--tied", "no output.weight: reuse token_embd", false)
  .option("--seed <n>", "PRNG seed", (v) => Number.parseInt(v, 10), 1)
  .parse();

const o = program.opts();
const info = await writeSyntheticModel({
  arch: o.arch, type: o.type, out: o.out, nEmbd: o.nEmbd, nLayer: o.nLayer, nHead: o.nHead, nHeadKv: o.nHeadKv,
  nFf: o.nFf, nCtx: o.nCtx, vocab: o.vocab, tied: o.tied, seed: o.seed, headDim: o.headDim, nRot: o.nRot,
  slidingWindow: o.slidingWindow, swaPattern: o.swaPattern,
});
const counts = new Map<string, number>();
for (const t of Object.values(info.tensorTypes)) {
  const name = TYPE_INFO[t as GGMLType].name;
  counts.set(name, (counts.get(name) ?? 0) + 1);
}
const types = [...counts].map(([k, v]) => `${k}×${v}`).join(" ");
process.stdout.write(`${info.path}: ${(info.bytes / 2 ** 20).toFixed(1)} MiB, ${info.nParams} parameters, ` +
  `vocab ${info.nVocab}, tensors ${types}\n`);
