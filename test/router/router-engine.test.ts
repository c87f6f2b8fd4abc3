// The router on the real engine (stories260K): features from el_embed, a classifier trained on
// topic prompts, held-out prompts routed to their topic, the cache preference only within the
// margin, persistence, examples files, fallbacks.
import test from "ava";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FeatureExtractor } from "../../src/adapters/router/features.js";
import { Router } from "../../src/adapters/router/router.js";
import type { AdapterTier } from "../../src/adapters/router/policy.js";
import { NativeEngine } from "../../src/engine/engine.js";
import { quietLogger } from "../helpers/broker.js";
import { storiesPath } from "../helpers/engine.js";
import { TOPICS, topicPrompt, topicPrompts, type Topic } from "../helpers/router.js";

const model = storiesPath();
const topics = Object.keys(TOPICS) as Topic[];
const cold = (_name: string): AdapterTier => "cold";

async function setup(opts: { margin?: number; stateFile?: string | null; registry?: { name: string; path: string }[] } = {}) {
  const engine = await NativeEngine.open(model!, { threads: 1, nCtx: 128, nSeqMax: 1 });
  const side = await engine.openSideContext({ threads: 1, nCtx: 64, nSeqMax: 4, nBatchMax: 64, kvType: "f32" });
  const features = new FeatureExtractor(side, (t) => engine.tokenize(t, true), { layers: 1, maxTokens: 64 }, "stories260K|layers=1");
  const entries = opts.registry ?? topics.map((name) => ({ name, path: `/nonexistent/${name}.gguf` }));
  const router = new Router({
    features,
    registry: { has: (n) => entries.some((e) => e.name === n), list: () => entries },
    stateFile: opts.stateFile ?? null,
    policy: { k: 3, margin: opts.margin ?? 0 },
    logger: quietLogger,
  });
  return {
    engine,
    router,
    route: (prompt: string, allowed: string[] = topics, tierOf = cold) => router.route(engine.tokenize(prompt, true), allowed, tierOf, null),
    async close() {
      await router.stop();
      engine.dispose();
    },
  };
}

async function trainTopics(router: Router) {
  for (const topic of topics) await router.train(topic, topicPrompts(topic, 0, 8));
}

test("held-out prompts on clearly separated topics are routed to their topic's adapter", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const s = await setup();
  try {
    await trainTopics(s.router);
    t.deepEqual(s.router.labels(), ["castle", "dog", "sea"]);
    for (const topic of topics)
      for (let i = 100; i < 104; i++) {
        const d = await s.route(topicPrompt(topic, i));
        t.is(d.adapter, topic, `${topicPrompt(topic, i)} -> ${d.adapter} (${d.chosen_because})`);
        t.is(d.candidates[0].adapter, topic);
        t.true(d.candidates[0].score > 0.5);
      }
    // A tenant is only ever routed among what it may use.
    const d = await s.route(topicPrompt("dog", 200), ["castle", "sea"]);
    t.not(d.adapter, "dog");
    t.deepEqual(d.candidates.map((c) => c.adapter).sort(), ["castle", "sea"]);
    t.is(Math.round(d.candidates.reduce((a, c) => a + c.score, 0) * 1e6) / 1e6, 1, "scores renormalized over the allowed adapters");
  } finally {
    await s.close();
  }
});

test("the cache preference changes the choice only within the margin", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  // The same training (deterministic) under two margins around the measured gap.
  const probe = await setup();
  let gap: number, second: string;
  try {
    await trainTopics(probe.router);
    const d = await probe.route(topicPrompt("dog", 300));
    t.is(d.adapter, "dog");
    gap = d.candidates[0].score - d.candidates[1].score;
    second = d.candidates[1].adapter;
  } finally {
    await probe.close();
  }
  const secondHot = (name: string): AdapterTier => (name === second ? "hot" : "cold");
  for (const [margin, expected] of [
    [gap * 0.9, "dog"],
    [Math.min(1, gap * 1.1 + 1e-6), second],
  ] as const) {
    const s = await setup({ margin });
    try {
      await trainTopics(s.router);
      const d = await s.route(topicPrompt("dog", 300), topics, secondHot);
      t.is(d.adapter, expected, `margin ${margin} (gap ${gap}): ${d.chosen_because}`);
      // Without anything in memory the margin changes nothing.
      t.is((await s.route(topicPrompt("dog", 300))).adapter, "dog");
    } finally {
      await s.close();
    }
  }
});

test("state persists: a new router on the same file routes without retraining", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const stateFile = join(mkdtempSync(join(tmpdir(), "edgelora-router-state-")), "router.json");
  const a = await setup({ stateFile });
  let before: { adapter: string | null; scores: number[] };
  try {
    await trainTopics(a.router);
    const d = await a.route(topicPrompt("sea", 400));
    before = { adapter: d.adapter, scores: d.candidates.map((c) => c.score) };
  } finally {
    await a.close();
  }
  const b = await setup({ stateFile });
  try {
    t.false(b.router.trained);
    await b.router.start();
    t.true(b.router.trained);
    t.deepEqual(b.router.exampleCounts().sea, { admin: 8, file: 0, profile: 0 });
    const d = await b.route(topicPrompt("sea", 400));
    t.is(d.adapter, before.adapter);
    d.candidates.forEach((c, i) => t.true(Math.abs(c.score - before.scores[i]) < 1e-4));
    // Incremental: more examples for one adapter keep the others' and add to its own.
    const r = await b.router.train("sea", topicPrompts("sea", 50, 3).concat(topicPrompt("sea", 0)));
    t.is(r.added, 3, "a prompt already stored is not added twice");
    t.is(r.examples, 11);
  } finally {
    await b.close();
  }
});

test("examples.jsonl beside an adapter is read at start, and again only when it changes", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const dir = mkdtempSync(join(tmpdir(), "edgelora-router-files-"));
  const registry = topics.map((name) => ({ name, path: join(dir, `${name}.gguf`) }));
  for (const topic of topics)
    writeFileSync(
      join(dir, `${topic}.examples.jsonl`),
      topicPrompts(topic, 0, 6).map((p, i) => JSON.stringify(i % 2 ? { prompt: p } : p)).join("\n") + "\nnot json\n",
    );
  const stateFile = join(dir, "router.json");
  const a = await setup({ stateFile, registry });
  try {
    await a.router.start();
    t.deepEqual(a.router.exampleCounts().dog, { admin: 0, file: 6, profile: 0 });
    t.is((await a.route(topicPrompt("castle", 500))).adapter, "castle");
  } finally {
    await a.close();
  }
  writeFileSync(join(dir, "dog.examples.jsonl"), topicPrompts("dog", 10, 4).map((p) => JSON.stringify(p)).join("\n"));
  const b = await setup({ stateFile, registry });
  try {
    await b.router.start();
    t.deepEqual(b.router.exampleCounts().dog, { admin: 0, file: 4, profile: 0 }, "the changed file replaces its earlier prompts");
    t.deepEqual(b.router.exampleCounts().sea, { admin: 0, file: 6, profile: 0 });
  } finally {
    await b.close();
  }
});

test("untrained, or no examples for any allowed adapter: the fallback, said in chosen_because", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const s = await setup();
  try {
    const untrained = await s.router.route(s.engine.tokenize("The dog", true), topics, cold, "dog");
    t.is(untrained.adapter, "dog");
    t.deepEqual(untrained.candidates, []);
    t.regex(untrained.chosen_because, /fallback to the default adapter dog: the router is not trained/);
    await s.router.train("castle", topicPrompts("castle", 0, 4));
    const none = await s.router.route(s.engine.tokenize("The dog", true), ["dog", "sea"], cold, null);
    t.is(none.adapter, null);
    t.regex(none.chosen_because, /fallback to the base model: no adapter this tenant may use has example prompts/);
  } finally {
    await s.close();
  }
});

test("features of many prompts (several passes) equal each prompt's own", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const engine = await NativeEngine.open(model, { threads: 1, nCtx: 64, nSeqMax: 1 });
  const side = await engine.openSideContext({ threads: 1, nCtx: 32, nSeqMax: 3, nBatchMax: 40, kvType: "f32" });
  const features = new FeatureExtractor(side, (text) => engine.tokenize(text, true), { layers: 2, maxTokens: 24 }, "x");
  try {
    const prompts = topics.flatMap((topic) => topicPrompts(topic, 0, 13));
    const all = await features.ofTexts(prompts);
    t.is(all.length, prompts.length);
    for (const i of [0, 15, 16, 38]) {
      const [one] = await features.ofTexts([prompts[i]]);
      t.true(one.every((v, j) => Math.abs(v - all[i][j]) < 1e-5), `prompt ${i}`);
    }
    t.notDeepEqual(Array.from(all[0]), Array.from(all[1]));
  } finally {
    await features.dispose();
    engine.dispose();
  }
});
