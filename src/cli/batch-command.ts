// `edgelora batch`: offline batch inference over a JSON Lines file of requests, all run together
// through the engine with continuous batching and mixed LoRA adapters. Results go to stdout as
// JSON Lines {id, tokens, logprobs, text} in input order; a summary goes to stderr.
import { readFileSync } from "node:fs";
import type { Command } from "commander";

import { adapterRank } from "../batch/adapter-file.js";
import { BatchJobError, runBatch, type BatchStats } from "../batch/driver.js";
import { parseRequests, RequestLineError, type BatchRequest } from "../batch/requests.js";
import { batchAdapterSlots } from "../batch/adapter-slots.js";
import { NativeEngine } from "../engine/engine.js";
import { cliReporter } from "../engine/load-progress.js";
import { promptTokens } from "../engine/prompt-tokens.js";
import { checkModelPath, floatArg, intArg, loraPoolOption } from "./args.js";
import type { LoraPoolType } from "../engine/types.js";

interface BatchCliOptions {
  model: string;
  requests: string;
  threads: number;
  maxBatch: number;
  maxTokens: number;
  temperature: number;
  seed: number;
  loraPool: LoraPoolType;
}

const MAX_BATCH_TOKENS = 256; // per step: decode tokens first, prompt chunks fill the rest
const PREFILL_CHUNK = 128;

/** Rank of each distinct adapter path, errors naming the first line that uses it. */
function adapterRanks(requests: BatchRequest[]): Map<string, number> {
  const ranks = new Map<string, number>();
  for (const r of requests) {
    if (!r.adapter || ranks.has(r.adapter.path)) continue;
    try {
      ranks.set(r.adapter.path, adapterRank(r.adapter.path));
    } catch (e) {
      throw new RequestLineError(r.line, (e as Error).message);
    }
  }
  return ranks;
}

function summary(n: number, s: BatchStats): string {
  const tps = s.seconds > 0 ? s.generatedTokens / s.seconds : 0;
  return (
    `edgelora batch: ${n} requests, ${s.steps} steps, ${s.promptTokens} prompt + ${s.generatedTokens} generated tokens ` +
    `in ${s.seconds.toFixed(2)} s (${tps.toFixed(1)} generated tokens/s); ` +
    `at most ${s.maxSequencesInStep} sequences and ${s.maxAdaptersInStep} distinct adapters in one step\n`
  );
}

async function runBatchCommand(o: BatchCliOptions): Promise<void> {
  checkModelPath(o.model);
  let text: string;
  try {
    text = readFileSync(o.requests, "utf8");
  } catch (e) {
    throw new Error(`cannot read requests: ${(e as Error).message}`);
  }
  const requests = parseRequests(text, {
    maxTokens: o.maxTokens,
    sampling: { temperature: o.temperature, topK: 40, topP: 0.95, minP: 0.05, seed: o.seed },
  });
  const ranks = adapterRanks(requests);
  const maxSequences = Math.min(o.maxBatch, requests.length);
  // Enough slots that a sequence never waits for one: at most maxSequences adapters run at once.
  const nSlots = Math.min(ranks.size, maxSequences);

  let prompts: number[][] = [];
  const engine = await NativeEngine.open(o.model, (model) => {
    prompts = requests.map((r) => {
      try {
        return promptTokens(model, r.prompt);
      } catch (e) {
        throw new RequestLineError(r.line, (e as Error).message);
      }
    });
    // One context sized for the longest request.
    const wanted = Math.max(...requests.map((r, i) => prompts[i].length + r.maxTokens));
    const nCtx = model.info.nCtxTrain > 0 ? Math.min(wanted, model.info.nCtxTrain) : wanted;
    prompts.forEach((p, i) => {
      if (p.length >= nCtx) throw new RequestLineError(requests[i].line, `prompt is ${p.length} tokens but the context holds ${nCtx}`);
    });
    return {
      threads: o.threads,
      nCtx,
      nSeqMax: maxSequences,
      nBatchMax: Math.max(maxSequences, MAX_BATCH_TOKENS),
      kvType: "f32",
      loraSlots: nSlots,
      loraMaxRank: Math.max(0, ...ranks.values()),
      loraPoolType: o.loraPool,
    };
  }, cliReporter(o.model));
  try {
    const slots = batchAdapterSlots(engine, nSlots);
    const jobs = requests.map((r, i) => ({ promptTokens: prompts[i], adapter: r.adapter, maxTokens: r.maxTokens, sampling: r.sampling }));
    const { outputs, stats } = await runBatch(engine, jobs, slots, {
      maxSequences,
      maxBatchTokens: engine.limits.nBatchMax,
      prefillChunk: PREFILL_CHUNK,
    }).catch((e: unknown) => {
      throw e instanceof BatchJobError ? new RequestLineError(requests[e.job].line, e.message) : e;
    });
    for (const [i, r] of requests.entries()) {
      const { tokens, logprobs, text } = outputs[i];
      process.stdout.write(JSON.stringify({ id: r.id, tokens, logprobs, text }) + "\n");
    }
    process.stderr.write(summary(requests.length, stats));
  } finally {
    engine.dispose();
  }
}

export function registerBatchCommand(program: Command): void {
  program
    .command("batch")
    .description(
      'offline batch inference: one JSON request per line {"id", "prompt", "lora"?, "scale"?, "max_tokens"?, ' +
        '"temperature"?, "top_k"?, "top_p"?, "min_p"?, "seed"?}, all run together with continuous batching; ' +
        "prints {id, tokens, logprobs, text} per line in input order (lora: GGUF adapter file or PEFT directory)",
    )
    .requiredOption("--model <path>", "GGUF model file")
    .requiredOption("--requests <file>", "JSON Lines file of requests")
    .option("--threads <n>", "compute threads", intArg(1), 1)
    .option("--max-batch <n>", "sequences running at once", intArg(1), 8)
    .option("--max-tokens <n>", "default max_tokens of a request", intArg(1), 128)
    .option("--temperature <t>", "default temperature of a request (0 = greedy)", floatArg(0, 100), 0.8)
    .option("--seed <s>", "default seed of a request", intArg(0), 0)
    .addOption(loraPoolOption())
    .action((o: BatchCliOptions) => runBatchCommand(o));
}
