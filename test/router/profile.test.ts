// Likelihood profiling on the real engine (stories260K): the mixed-adapter batched likelihoods
// equal one adapter at a time, profiling gives an adapter without examples the prompts it
// explains best, and the admin op router/profile checks its input.
import test from "ava";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FeatureExtractor } from "../../src/adapters/router/features.js";
import { LikelihoodProfiler } from "../../src/adapters/router/profile.js";
import { Router } from "../../src/adapters/router/router.js";
import { NativeEngine } from "../../src/engine/engine.js";
import { quietLogger } from "../helpers/broker.js";
import { logSoftmax, storiesPath } from "../helpers/engine.js";
import { topicPrompt, topicPrompts, writeTopicAdapters, type Topic } from "../helpers/router.js";

const model = storiesPath();
const names: Topic[] = ["dog", "castle", "sea"];

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-profile-"));
  const paths = await writeTopicAdapters(model!, dir);
  const engine = await NativeEngine.open(model!, { threads: 1, nCtx: 128, nSeqMax: 1, loraSlots: 1, loraMaxRank: 8, kvType: "f32" });
  const profiler = new LikelihoodProfiler({
    open: () => engine.openSideContext({ threads: 1, nCtx: 128, nSeqMax: 4, nBatchMax: 64, kvType: "f32", loraSlots: 2, loraMaxRank: 8 }),
    slots: 2, // three adapters: two groups
    resolve: (n) => (paths as Record<string, string>)[n] ?? null,
  });
  return { engine, paths, profiler };
}

/** Mean NLL of tokens[from..] under one adapter, by plain decodes on the engine's own context. */
async function nllAlone(engine: NativeEngine, path: string, tokens: number[], from: number): Promise<number> {
  await engine.loadAdapter(0, path);
  const ctx = engine.context;
  const r = await ctx.decode(
    { tokens, pos: tokens.map((_, i) => i), seq: tokens.map(() => 0), loraSlot: tokens.map(() => 0), logits: tokens.map(() => 1) },
    tokens.map(() => null),
  );
  ctx.seqClear(0);
  engine.unloadAdapter(0);
  let sum = 0;
  for (let j = from; j < tokens.length; j++) sum -= logSoftmax(r.logits.subarray((j - 1) * 512, j * 512))[tokens[j]];
  return sum / (tokens.length - from);
}

test("batched likelihoods under several adapters equal each adapter alone", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const { engine, paths, profiler } = await setup();
  try {
    const texts = [topicPrompt("dog", 1), topicPrompt("sea", 2), "Once upon a time"].map((p, i) => ({ tokens: engine.tokenize(p, true), from: 1 + i }));
    const nll = await profiler.meanNll(texts, names);
    for (const [i, text] of texts.entries())
      for (const [a, name] of names.entries()) {
        const alone = await nllAlone(engine, paths[name], text.tokens, text.from);
        t.true(Math.abs(nll[i][a] - alone) < 1e-4, `text ${i} under ${name}: ${nll[i][a]} vs ${alone}`);
      }
    // The adapters really differ on these texts.
    t.true(Math.max(...nll[0]) - Math.min(...nll[0]) > 1e-3);
    await t.throwsAsync(profiler.meanNll(texts, ["nope"]), { message: /unknown adapter "nope"/ });
  } finally {
    engine.dispose();
  }
});

test("profiling gives an adapter without examples the prompts it explains best", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const { engine, paths, profiler } = await setup();
  const side = await engine.openSideContext({ threads: 1, nCtx: 64, nSeqMax: 4, nBatchMax: 64, kvType: "f32" });
  const features = new FeatureExtractor(side, (text) => engine.tokenize(text, true), { layers: 1, maxTokens: 64 }, "stories260K|1");
  const entries = names.map((name) => ({ name, path: paths[name] }));
  const router = new Router({
    features,
    profiler,
    registry: { has: (n) => n in paths, list: () => entries },
    stateFile: null,
    policy: { k: 3, margin: 0 },
    logger: quietLogger,
  });
  try {
    await router.train("dog", topicPrompts("dog", 0, 6));
    await router.train("castle", topicPrompts("castle", 0, 6));
    t.deepEqual(router.labels(), ["castle", "dog"]);
    const sample = [...topicPrompts("dog", 10, 6), ...topicPrompts("castle", 10, 6), ...topicPrompts("sea", 10, 6)];
    const r = await router.profile(["sea"], sample);
    t.deepEqual(r.candidates, ["sea", "dog", "castle"]);
    t.is(r.prompts, sample.length);
    // Exactly the sample prompts whose likelihood is highest under sea, by an independent count.
    const nll = await profiler.meanNll(sample.map((p) => ({ tokens: engine.tokenize(p, true), from: 1 })), ["sea", "dog", "castle"]);
    const seaWins = nll.filter((row) => row[0] < Math.min(row[1], row[2])).length;
    t.is(r.profiled.sea, seaWins);
    t.log(`sea explains ${seaWins} of ${sample.length} sample prompts best`);
    if (seaWins > 0) {
      t.deepEqual(router.labels(), ["castle", "dog", "sea"]);
      t.deepEqual(router.exampleCounts().sea, { admin: 0, file: 0, profile: seaWins });
    }
    // Profiling again replaces, not adds.
    const again = await router.profile(["sea"], sample);
    t.is(router.exampleCounts().sea?.profile ?? 0, again.profiled.sea);
  } finally {
    await router.stop();
    engine.dispose();
  }
});
