// Child process of the llama.cpp baseline (llama-baseline.ts): loads node-llama-cpp from the
// install it is given (the default one, or a copy that only holds the AVX2 CPU build), runs
// the benchmark workload at one thread count and sends the result back over IPC. One process
// per run, so that different llama.cpp builds never share a process.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

import { LLAMA_OPTIONS } from "../../src/bench/llama-options.js";
import { medianOf, promptIds, type Speed, type Workload } from "./workload.js";

export interface LlamaJob {
  entry: string; // node-llama-cpp's dist/index.js in the install to use
  modelPath: string;
  threads: number;
  workload: Workload;
}

export interface LlamaChildResult {
  speed: Speed;
  cpuLibrary: string; // the libggml-cpu-*.so mapped into this process
  systemInfo: string;
  flashAttention: string; // the context's setting: "auto", "true" or "false"
  batchSize: number;
}

type NodeLlamaCpp = typeof import("node-llama-cpp");
type Sequence = import("node-llama-cpp").LlamaContextSequence;
type Token = import("node-llama-cpp").Token;

async function decodeTps(seq: Sequence, prompt: Token[], n: number): Promise<number> {
  await seq.clearHistory();
  await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
  // The timed part: n one-token decodes (the prompt's last token, then each generated one).
  const t0 = performance.now();
  let got = 0;
  for await (const _ of seq.evaluate(prompt.slice(-1), { temperature: 0 })) if (++got === n) break;
  return n / ((performance.now() - t0) / 1000);
}

async function prefillTps(seq: Sequence, prompt: Token[]): Promise<number> {
  await seq.clearHistory();
  const t0 = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
  return prompt.length / ((performance.now() - t0) / 1000);
}

/** Which CPU build of ggml this process loaded (llama.cpp picks one at run time). */
function loadedCpuLibrary(): string {
  const m = readFileSync("/proc/self/maps", "utf8").match(/libggml-cpu-[\w-]+\.so/);
  return m ? m[0] : "unknown";
}

async function run(job: LlamaJob): Promise<LlamaChildResult> {
  const { getLlama } = (await import(pathToFileURL(job.entry).href)) as NodeLlamaCpp;
  const llama = await getLlama(LLAMA_OPTIONS);
  const model = await llama.loadModel({ modelPath: job.modelPath });
  const w = job.workload;
  const context = await model.createContext({
    contextSize: 512,
    batchSize: Math.max(w.prefillTokens, w.promptTokens),
    sequences: 1,
    threads: { ideal: job.threads, min: job.threads },
  });
  const seq = context.getSequence();
  const bos = model.tokens.bos;
  if (bos === null) throw new Error("model has no BOS token");
  const decodePrompt = promptIds(bos, w.promptTokens) as Token[];
  const prefillPrompt = promptIds(bos, w.prefillTokens) as Token[];
  const d = await medianOf(w.runs, () => decodeTps(seq, decodePrompt, w.decodeTokens), () => decodeTps(seq, decodePrompt, 2));
  const p = await medianOf(w.runs, () => prefillTps(seq, prefillPrompt), () => prefillTps(seq, prefillPrompt));
  const result: LlamaChildResult = {
    speed: { decode: d.median, prefill: p.median, decodeRuns: d.all, prefillRuns: p.all },
    cpuLibrary: loadedCpuLibrary(),
    systemInfo: llama.systemInfo,
    flashAttention: String(context.flashAttention),
    batchSize: context.batchSize,
  };
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return result;
}

const job = JSON.parse(process.argv[2] ?? "null") as LlamaJob;
run(job).then(
  (result) => process.send!({ ok: true, result }, () => process.exit(0)),
  (e: unknown) => process.send!({ ok: false, error: e instanceof Error ? e.stack ?? e.message : String(e) }, () => process.exit(1)),
);
