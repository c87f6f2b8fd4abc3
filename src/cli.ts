#!/usr/bin/env node
// The `edgelora` command: serve (the daemon), generate, batch, tokenize, info, adapters and bench over
// the native engine.
// Bad input ends with one line on stderr and exit code 1, never a stack trace.
import { Command } from "commander";
import { NativeEngine } from "./engine/engine.js";
import { cliReporter, loadModelReporting } from "./engine/load-progress.js";
import { NativeModel } from "./engine/model.js";
import { generate } from "./engine/generate.js";
import { registerServeCommand } from "./daemon/serve-command.js";
import { promptTokens } from "./engine/prompt-tokens.js";
import type { LoraPoolType, ModelInfo } from "./engine/types.js";
import { adapterRank, type AdapterRef } from "./batch/adapter-file.js";
import { adapterArg, checkModelPath, floatArg, intArg, loraPoolOption } from "./cli/args.js";
import { registerBatchCommand } from "./cli/batch-command.js";
import { registerAdaptersCommand } from "./cli/adapters-command.js";
import { registerPullCommand } from "./cli/pull-command.js";
import { registerBenchCommand } from "./cli/bench-command.js";

function formatInfo(path: string, i: ModelInfo): string {
  const types = Object.entries(i.weightTypes)
    .map(([t, n]) => `${t} x${n}`)
    .join(", ");
  const packed = Object.entries(i.packedTypes)
    .map(([t, n]) => `${t} x${n} (8-row interleaved at load; EDGELORA_PACK=0 turns this off)`)
    .join(", ");
  return [
    `file:          ${path}`,
    `name:          ${i.name}`,
    `architecture:  ${i.arch} (supported: ${i.supportedArchs})`,
    `parameters:    ${i.nParams} (${(i.weightBytes / 2 ** 20).toFixed(2)} MiB of weights)`,
    `shape:         n_embd ${i.nEmbd}, n_layer ${i.nLayer}, n_head ${i.nHead}, n_head_kv ${i.nHeadKv}, head_dim ${i.headDim}, n_ff ${i.nFf}`,
    `vocab:         ${i.nVocab}, context (trained) ${i.nCtxTrain}`,
    `rope:          freq_base ${i.ropeFreqBase}, ${i.ropeNeox ? "neox" : "normal"}; rms_norm_eps ${i.rmsNormEps}`,
    `output:        ${i.tiedOutput ? "tied to token embeddings" : "own weight"}`,
    `tensor types:  ${types}`,
    `tokenizer:     ${i.tokenizer}${i.tokenizerPre ? ` (pre: ${i.tokenizerPre})` : ""}, bos ${i.bos}, eos ${i.eos}, add_bos ${i.addBos}`,
    `kernel path:   ${i.kernelPath}`,
    `packed:        ${packed || "none"}`,
  ].join("\n");
}

interface GenerateCliOptions {
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed: number;
  threads: number;
  lora?: AdapterRef;
  loraPool: LoraPoolType;
  json?: boolean;
}

async function runGenerate(o: GenerateCliOptions): Promise<void> {
  checkModelPath(o.model);
  const rank = o.lora ? adapterRank(o.lora.path) : 0;
  const engine = await NativeEngine.open(o.model, (model) => {
    // Size the context for this one request: prompt plus the tokens asked for.
    const wanted = promptTokens(model, o.prompt).length + o.maxTokens;
    const nCtx = model.info.nCtxTrain > 0 ? Math.min(wanted, model.info.nCtxTrain) : wanted;
    return {
      threads: o.threads,
      nCtx,
      nSeqMax: 1,
      nBatchMax: Math.min(512, nCtx),
      kvType: "f32",
      loraSlots: o.lora ? 1 : 0,
      loraMaxRank: rank,
      loraPoolType: o.loraPool,
    };
  }, cliReporter(o.model));
  try {
    if (o.lora) await engine.loadAdapter(0, o.lora.path);
    const r = await generate(engine, o.prompt, {
      adapter: o.lora ? { slot: 0, scale: o.lora.scale } : undefined,
      maxTokens: o.maxTokens,
      sampling: { temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP, seed: o.seed },
      onText: o.json ? undefined : (delta) => process.stdout.write(delta),
    });
    if (o.json) {
      process.stdout.write(
        JSON.stringify({ tokens: r.tokens, logprobs: r.logprobs, text: r.text, timings: r.timings }) + "\n",
      );
    } else {
      process.stdout.write("\n");
    }
  } finally {
    engine.dispose();
  }
}

async function withModel<T>(path: string, f: (m: NativeModel) => T): Promise<T> {
  checkModelPath(path);
  const model = await loadModelReporting(path, cliReporter(path));
  try {
    return f(model);
  } finally {
    model.dispose();
  }
}

const program = new Command()
  .name("edgelora")
  .description("Serve many LoRA fine-tunes of one GGUF base model, batched, over MQTT");

program
  .command("generate")
  .description("generate text from a prompt (one sequence)")
  .requiredOption("--model <path>", "GGUF model file")
  .option("--prompt <text>", "prompt (empty: start from BOS alone)", "")
  .option("--max-tokens <n>", "tokens to generate at most", intArg(0), 128)
  .option("--temperature <t>", "sampling temperature (0 = greedy)", floatArg(0, 100), 0.8)
  .option("--top-k <k>", "keep the k most likely tokens (0 = off)", intArg(0), 40)
  .option("--top-p <p>", "keep the smallest set with this probability mass (1 = off)", floatArg(Number.MIN_VALUE, 1), 0.95)
  .option("--min-p <p>", "drop tokens below p times the top probability (0 = off)", floatArg(0, 1), 0.05)
  .option("--seed <s>", "random seed", intArg(0), 0)
  .option("--threads <n>", "compute threads", intArg(1), 1)
  .option("--lora <path[:scale]>", "LoRA adapter (GGUF file or PEFT directory) and its scale (default 1)", adapterArg)
  .addOption(loraPoolOption())
  .option("--json", "print one JSON object {tokens, logprobs, text, timings}")
  .action((o: GenerateCliOptions) => runGenerate(o));

program
  .command("tokenize")
  .description("print the token ids of a text as a JSON array (with BOS if the model adds one)")
  .requiredOption("--model <path>", "GGUF model file")
  .requiredOption("--text <text>", "text to tokenize")
  .action(async (o: { model: string; text: string }) => {
    const ids = await withModel(o.model, (m) => m.tokenize(o.text, true));
    process.stdout.write(JSON.stringify(ids) + "\n");
  });

program
  .command("info")
  .description("describe a model: architecture, shapes, tensor types, tokenizer, kernel path")
  .requiredOption("--model <path>", "GGUF model file")
  .option("--json", "print one JSON object")
  .action(async (o: { model: string; json?: boolean }) => {
    const info = await withModel(o.model, (m) => m.info);
    process.stdout.write((o.json ? JSON.stringify(info) : formatInfo(o.model, info)) + "\n");
  });

registerBatchCommand(program);
registerAdaptersCommand(program);
registerPullCommand(program);
registerServeCommand(program);
registerBenchCommand(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`edgelora: error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
