// bench:router: how well "adapter": "auto" picks, and what it costs.
//  1. Eight topic adapters on stories260K that genuinely differ (lib/topic-adapters.ts), prompts
//     drawn per topic, each with a continuation; ground truth = the adapter under which the
//     continuation has the lowest NLL (computed in mixed-adapter batches).
//  2. The router trained on half the prompts (labelled by that ground truth), tested on the
//     other half: top-1 / top-3 accuracy and the NLL given up, per feature depth.
//  3. A trace (the paper's popularity) through an LRU pool: adapter loads and NLL given up with
//     the cache preference at several margins, against naming the best adapter every time.
//  4. Router latency per request and its share of time to first token on stories260K and on
//     the bench model (n_embd 896, 24 layers, Q4_0).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Command, InvalidArgumentError } from "commander";
import pino from "pino";

import { DEFAULT_TRAIN } from "../src/adapters/router/classifier.js";
import { FeatureExtractor } from "../src/adapters/router/features.js";
import { LikelihoodProfiler } from "../src/adapters/router/profile.js";
import { Router } from "../src/adapters/router/router.js";
import { GREEDY, NativeEngine } from "../src/engine/engine.js";
import { createSampler } from "../src/engine/context.js";
import { packageRoot } from "../src/engine/native.js";
import { benchModel } from "./lib/bench-model.js";
import { writeBenchResults } from "./lib/results.js";
import { daemonTrace } from "./lib/router-daemon-trace.js";
import { accuracy, namedBest, routed, runCache, trace, type Scored } from "./lib/router-eval.js";
import { fmt, renderTable } from "./lib/table.js";
import { readTopicModel, tokenSets, topicDirection, writeTopicAdapter } from "./lib/topic-adapters.js";
import { TOPIC_NAMES, topicPrompt } from "./lib/topic-prompts.js";
import { median } from "./lib/workload.js";

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a positive integer");
  return n;
};
const opts = new Command()
  .name("bench-router")
  .description("Adaptive adapter selection: accuracy against a likelihood ground truth, swaps saved, latency")
  .option("--per-topic <n>", "prompts per topic (half for training)", int, 40)
  .option("--slots <n>", "LoRA slots of the simulated pool", int, 3)
  .option("--requests <n>", "requests in each simulated trace", int, 1000)
  .option("--daemon-requests <n>", "requests of the trace sent through the daemon (0: skip)", (v: string) => Number(v), 200)
  .option("--l2 <x>", "the classifier's L2 weight decay", Number, DEFAULT_TRAIN.l2)
  .option("--layers <list>", "feature depths to compare", (v: string) => v.split(",").map(Number), [0, 1, 2, -1])
  .option("--k <n>", "router top-k", int, 3)
  .option("--gamma <x>", "strength of the topic adapters", Number, 0.2)
  .option("--set-size <n>", "tokens each topic adapter favours", int, 6)
  .option("--prompt-tokens <n>", "tokens of each sampled prompt", int, 32)
  .option("--continuation-tokens <n>", "tokens of the continuation the ground truth scores", int, 48)
  .option("--no-bench-model", "skip the latency on the 896x24 bench model")
  .parse()
  .opts<{ perTopic: number; slots: number; requests: number; daemonRequests: number; l2: number; layers: number[]; k: number; gamma: number; setSize: number; promptTokens: number; continuationTokens: number; benchModel: boolean }>();

const log = (s: string) => process.stderr.write(`${s}\n`);
const quiet = pino({ level: "silent" });
const root = packageRoot();
const stories = join(root, "..", "shared", "models", "stories260K.gguf");
const MARGINS = [0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5];
const ALPHAS = [1, 0.5];
const PROMPT_TOKENS = opts.promptTokens;
const CONTINUATION_TOKENS = opts.continuationTokens;

const dir = mkdtempSync(join(tmpdir(), "edgelora-bench-router-"));
const engine = await NativeEngine.open(stories, { threads: 1, nCtx: 256, nSeqMax: 1, kvType: "f32", loraSlots: 8, loraMaxRank: 8 });
const names = TOPIC_NAMES.map((_, i) => `topic${i}`);
const paths = names.map((n) => join(dir, `${n}.gguf`));
const profiler = new LikelihoodProfiler({
  open: () => engine.openSideContext({ threads: 1, nCtx: 160, nSeqMax: 8, nBatchMax: 512, kvType: "f32", loraSlots: 8, loraMaxRank: 8 }),
  slots: 8,
  resolve: (n) => paths[names.indexOf(n)] ?? null,
});

// ---- 1. adapters, prompts, ground truth -------------------------------------------------------
// Topic i = a set of word-piece tokens its adapter makes likelier; its prompts and continuations
// are text the model writes under that adapter (so a prompt carries its topic's signature only
// as a tendency), and the ground truth is decided by likelihood, not by where a prompt came from.
const model = readTopicModel(stories);
const decoder = new TextDecoder();
const sets = tokenSets(model.nVocab, (id) => decoder.decode(engine.tokenBytes(id)), names.length, opts.setSize);
const union = sets.flat();
const setPieces = sets.map((set) => set.map((id) => decoder.decode(engine.tokenBytes(id))));
for (const [i, p] of paths.entries())
  await writeTopicAdapter(p, model, topicDirection(model, sets[i], union), { rank: 4, beta: 4, gamma: opts.gamma, seed: 7 });
for (const [i, p] of paths.entries()) await engine.loadAdapter(i, p);

/** BOS and `n` tokens sampled under adapter `slot` (temperature 0.8, top-k 40). */
async function sampleTokens(slot: number, n: number, seed: number): Promise<number[]> {
  engine.setSampler(0, { temperature: 0.8, topK: 40, topP: 1, minP: 0, seed });
  const toks = [engine.info.bos];
  for (let i = 0; i < n; i++) {
    const r = await engine.step([{ seq: 0, token: toks[toks.length - 1], pos: toks.length - 1, adapterSlot: slot, adapterScale: 1, sample: true }]);
    toks.push(r.sampled[0].token);
  }
  engine.clearSeq(0);
  return toks;
}
const items: { topic: number; prompt: string; text: { tokens: number[]; from: number } }[] = [];
for (let t = 0; t < names.length; t++)
  for (let k = 0; k < opts.perTopic; k++) {
    const tokens = await sampleTokens(t, PROMPT_TOKENS + CONTINUATION_TOKENS, 1000 * t + k + 1);
    const prompt = engine.detokenize(tokens.slice(1, 1 + PROMPT_TOKENS));
    items.push({ topic: t, prompt, text: { tokens, from: 1 + PROMPT_TOKENS } });
  }
for (let i = 0; i < names.length; i++) engine.unloadAdapter(i);
const t0 = performance.now();
const nll = await profiler.meanNll(items.map((it) => it.text), names);
const truthMs = performance.now() - t0;
const best = nll.map((row) => row.indexOf(Math.min(...row)));
const truthIsTopic = items.filter((it, i) => best[i] === it.topic).length / items.length;
log(`ground truth: ${items.length} prompts x ${names.length} adapters in ${truthMs.toFixed(0)} ms; equals the prompt's topic for ${(100 * truthIsTopic).toFixed(1)}%`);
const train = items.map((_, i) => i).filter((i) => i % opts.perTopic % 2 === 0);
const test = items.map((_, i) => i).filter((i) => i % opts.perTopic % 2 === 1);

// ---- 2. accuracy per feature depth ---------------------------------------------------------------
async function trainedRouter(e: NativeEngine, layers: number, spec: string) {
  const side = await e.openSideContext({ threads: 1, nCtx: 64, nSeqMax: 4, nBatchMax: 64, kvType: "f32" });
  const features = new FeatureExtractor(side, (t) => e.tokenize(t, true), { layers, maxTokens: 64 }, spec);
  const router = new Router({
    features,
    registry: { has: (n) => names.includes(n), list: () => names.map((name, i) => ({ name, path: paths[i] })) },
    stateFile: null,
    policy: { k: opts.k, margin: 0 },
    logger: quiet,
    train: { ...DEFAULT_TRAIN, l2: opts.l2 },
  });
  const t1 = performance.now();
  for (const [a, name] of names.entries()) {
    const prompts = train.filter((i) => best[i] === a).map((i) => items[i].prompt);
    if (prompts.length) await router.train(name, prompts);
  }
  return { router, trainMs: performance.now() - t1 };
}

async function scoreTest(router: Router, e: NativeEngine): Promise<{ scored: Scored[]; routeMs: number[] }> {
  const scored: Scored[] = [];
  const routeMs: number[] = [];
  for (const i of test) {
    const d = await router.route(e.tokenize(items[i].prompt, true), names, () => "cold", null);
    routeMs.push(d.ms);
    // Every adapter's probability (the decision lists the top k only).
    const all = new Map(names.map((n) => [n, 0]));
    for (const c of d.candidates) all.set(c.adapter, c.score);
    scored.push({ prompt: items[i].prompt, topic: items[i].topic, best: best[i], nll: nll[i], scores: all });
  }
  return { scored, routeMs };
}

const accRows: string[][] = [];
const accFigures: Record<string, unknown>[] = [];
let chosen: { layers: number; scored: Scored[] } | null = null;
for (const layers of opts.layers) {
  const { router, trainMs } = await trainedRouter(engine, layers, `stories|${layers}`);
  const { scored, routeMs } = await scoreTest(router, engine);
  // Top-3 needs every score: route with k = all adapters.
  const acc = accuracy(scored, names);
  await router.stop();
  accRows.push([String(layers), fmt(100 * acc.top1, 1, "%"), fmt(100 * acc.top3, 1, "%"), fmt(acc.nllGap, 4), fmt(median(routeMs), 3), fmt(trainMs, 0)]);
  accFigures.push({ layers, ...acc, routeMsMedian: median(routeMs), trainMs });
  if (layers === 1 || chosen === null) chosen = { layers, scored };
}

// ---- 3. the cache preference on a trace ------------------------------------------------------
const cacheRows: string[][] = [];
const cacheFigures: Record<string, unknown>[] = [];
for (const alpha of ALPHAS) {
  const requests = trace(chosen!.scored, names.length, alpha, opts.requests, 42);
  const named = runCache(requests, names, opts.slots, namedBest);
  cacheRows.push([String(alpha), "named best", String(named.loads), "", fmt(named.nllGivenUp, 4), fmt(100 * named.agreeWithBest, 1, "%")]);
  cacheFigures.push({ alpha, policy: "named best", ...named });
  for (const margin of MARGINS) {
    const r = runCache(requests, names, opts.slots, routed(names, opts.k, margin));
    const saved = named.loads - r.loads;
    cacheRows.push([String(alpha), `auto, margin ${margin}`, String(r.loads), `${saved >= 0 ? "" : "-"}${fmt(Math.abs((100 * saved) / named.loads), 1, "%")}`, fmt(r.nllGivenUp, 4), fmt(100 * r.agreeWithBest, 1, "%")]);
    cacheFigures.push({ alpha, policy: "auto", margin, ...r, loadsSavedVsNamed: saved });
  }
}

// ---- 3b. the same trace through the real daemon (its own slot pool counts the loads) ----------
const daemonRows: string[][] = [];
const daemonFigures: Record<string, unknown>[] = [];
if (opts.daemonRequests > 0) {
  const requests = trace(chosen!.scored, names.length, 1, opts.daemonRequests, 7);
  const adapters = Object.fromEntries(names.map((n, i) => [n, paths[i]]));
  const examples = Object.fromEntries(names.map((n, a) => [n, train.filter((i) => best[i] === a).map((i) => items[i].prompt)]));
  for (const margin of [null, 0, 0.3, 0.5]) {
    const t1 = performance.now();
    const { served, loads } = await daemonTrace(
      { model: stories, adapters, slots: opts.slots, featureLayers: chosen!.layers, margin: margin ?? 0, k: opts.k, examples },
      requests.map((r) => ({ prompt: r.prompt, adapter: margin === null ? names[r.best] : "auto" })),
    );
    const given = requests.reduce((s, r, i) => s + r.nll[names.indexOf(served[i])] - r.nll[r.best], 0) / requests.length;
    const agree = requests.filter((r, i) => served[i] === names[r.best]).length / requests.length;
    const label = margin === null ? "named best" : `auto, margin ${margin}`;
    daemonRows.push([label, String(loads), fmt(given, 4), fmt(100 * agree, 1, "%"), fmt((performance.now() - t1) / 1000, 1)]);
    daemonFigures.push({ policy: label, margin, loads, nllGivenUp: given, agreeWithBest: agree });
  }
}

// ---- 4. latency: router per request against time to first token ---------------------------------
/** Prompts of the trace's input lengths (uniform in [8, 128] tokens), topic sentences joined. */
function tracePrompts(e: NativeEngine, n: number): { tokens: number[]; topic: number }[] {
  return Array.from({ length: n }, (_, i) => {
    const topic = i % names.length;
    const len = 8 + ((i * 37) % 121);
    let text = "";
    for (let s = 0; e.tokenize(text, true).length < len; s++) text += `${text ? " " : ""}${topicPrompt(TOPIC_NAMES[topic], 20_000 + i * 10 + s)}`;
    return { tokens: e.tokenize(text, true).slice(0, len), topic };
  });
}

async function ttftVsRouter(e: NativeEngine, router: Router, n: number) {
  const prompts = tracePrompts(e, n);
  const ttft: number[] = [], route: number[] = [];
  const sampler = createSampler(GREEDY);
  for (const [i, p] of [...prompts, ...prompts.slice(0, 2)].entries()) {
    // Alternating, so both see the same machine state; the first two are warm-up.
    const r0 = performance.now();
    await router.route(p.tokens, names, () => "cold", null);
    const r1 = performance.now();
    await e.context.decode({ tokens: p.tokens, pos: p.tokens.map((_, j) => j), seq: p.tokens.map(() => 0) }, [sampler]);
    const r2 = performance.now();
    e.clearSeq(0);
    if (i >= 2) {
      route.push(r1 - r0);
      ttft.push(r2 - r1);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { routeMsMedian: median(route), ttftMsMedian: median(ttft), routeMsMean: mean(route), ttftMsMean: mean(ttft), share: mean(route) / mean(ttft) };
}

const latRows: string[][] = [];
const latFigures: Record<string, unknown>[] = [];
async function latency(label: string, e: NativeEngine, threads: number, layersList: number[], n: number) {
  for (const layers of layersList) {
    const { router, trainMs } = await trainedRouter(e, layers, `${label}|${layers}`);
    const r = await ttftVsRouter(e, router, n);
    await router.stop();
    latRows.push([label, String(threads), String(layers), fmt(r.routeMsMedian, 2), fmt(r.ttftMsMedian, 2), fmt(100 * r.share, 1, "%"), fmt(trainMs, 0)]);
    latFigures.push({ model: label, threads, layers, ...r, trainMs });
    log(`${label} layers ${layers}: router ${r.routeMsMean.toFixed(2)} ms, TTFT ${r.ttftMsMean.toFixed(2)} ms`);
  }
}
await latency("stories260K", engine, 1, opts.layers, 40);
engine.dispose();
if (opts.benchModel) {
  const path = await benchModel(join(root, ".tmp", "bench-models"), "q4_0", log);
  const big = await NativeEngine.open(path, { threads: 2, nCtx: 256, nSeqMax: 1, nBatchMax: 256 });
  await latency("bench Q4_0 896x24", big, 2, opts.layers.filter((l) => l >= 0 && l <= 2), 24);
  big.dispose();
}

// ---- report -------------------------------------------------------------------------------------
const out: string[] = [];
out.push(`## Accuracy on held-out prompts (${test.length}; ${train.length} for training; ${names.length} topic adapters on stories260K)`);
out.push(`ground truth = the adapter with the lowest NLL of the prompt's continuation; it equals the prompt's topic for ${fmt(100 * truthIsTopic, 1, "%")}`);
out.push(renderTable(["feature layers", "top-1", "top-3", "NLL gap (nats/token)", "route ms (median)", "training ms"], accRows));
out.push("");
out.push(`## Cache preference (layers ${chosen!.layers}, k ${opts.k}, ${opts.slots} slots for ${names.length} adapters, ${opts.requests} requests, popularity floor(U^(1/alpha) n))`);
out.push(renderTable(["alpha", "policy", "adapter loads", "loads saved", "NLL given up (nats/token)", "= best adapter"], cacheRows));
out.push("");
if (daemonRows.length) {
  out.push(`## The trace through the daemon (alpha 1, ${opts.daemonRequests} requests one at a time, ${opts.slots} LoRA slots, loads counted by the daemon)`);
  out.push(renderTable(["policy", "adapter loads", "NLL given up (nats/token)", "= best adapter", "seconds"], daemonRows));
  out.push("");
}
out.push("## Router latency against time to first token (router: 1 thread, own context; TTFT: prefill + first token, idle engine)");
out.push(renderTable(["model", "engine threads", "feature layers", "router ms (median)", "TTFT ms (median)", "router / TTFT (means)", "training ms"], latRows));
process.stdout.write(`${out.join("\n")}\n`);
const file = writeBenchResults("router", {
  options: opts,
  tokenSets: setPieces,
  groundTruthMs: truthMs,
  groundTruthEqualsTopic: truthIsTopic,
  accuracy: accFigures,
  cache: cacheFigures,
  daemon: daemonFigures,
  latency: latFigures,
});
log(`results: ${file}`);
