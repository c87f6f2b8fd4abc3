// The addon's rules (one decode in flight per context, dispose at any time, argument checks)
// and generate() (stop strings, streamed text) on stories260K.
import test from "ava";
import { createSampler } from "../src/engine/context.js";
import { NativeEngine, GREEDY } from "../src/engine/engine.js";
import { generate } from "../src/engine/generate.js";
import { NativeModel } from "../src/engine/model.js";
import { storiesPath } from "./helpers/engine.js";

const stories = storiesPath();
const SKIP = "skipped: ../shared/models/stories260K.gguf is absent";
const CTX = { nCtx: 128, nSeqMax: 2, nBatchMax: 32, kvType: "f32", threads: 1 } as const;

test("a second decode while one is in flight is rejected; the first completes", async (t) => {
  if (!stories) return t.pass(SKIP);
  const model = await NativeModel.load(stories);
  const ctx = await model.createContext(CTX);
  const first = ctx.decode({ tokens: [1], pos: [0], seq: [0] }, [createSampler(GREEDY)]);
  t.throws(() => ctx.decode({ tokens: [1], pos: [0], seq: [1] }, [null]), { message: /a decode is in flight on this context/ });
  t.throws(() => ctx.seqClear(0), { message: /a decode is in flight on this context/ });
  t.is((await first).tokens.length, 1);
  t.is(ctx.seqLength(0), 1);
  ctx.dispose();
  model.dispose();
});

test("dispose during a decode is safe; a disposed context or model says so", async (t) => {
  if (!stories) return t.pass(SKIP);
  const model = await NativeModel.load(stories);
  const ctx = await model.createContext(CTX);
  model.dispose(); // the context keeps the weights alive
  const pending = ctx.decode({ tokens: [1, 403], pos: [0, 1], seq: [0, 0] }, [null]);
  ctx.dispose();
  const r = await pending;
  t.is(r.logits.length, model.info.nVocab);
  t.throws(() => ctx.seqLength(0), { message: /context is disposed/ });
  t.throws(() => model.tokenize("x", true), { message: /model is disposed/ });
});

test("decode checks its arguments", async (t) => {
  if (!stories) return t.pass(SKIP);
  const model = await NativeModel.load(stories);
  const ctx = await model.createContext(CTX);
  t.throws(() => ctx.decode({ tokens: [1, 2], pos: [0], seq: [0, 0] }, [null]), { message: /same length/ });
  t.throws(() => ctx.decode({ tokens: [1], pos: [0], seq: [0] }, []), { message: /1 token\(s\) want logits but 0/ });
  await t.throwsAsync(ctx.decode({ tokens: [1], pos: [5], seq: [0] }, [null])); // not the sequence's length
  t.is(ctx.seqLength(0), 0); // a rejected batch changes nothing
  t.throws(() => createSampler({ ...GREEDY, topP: 0 }), { message: /top_p/ });
  ctx.dispose();
  model.dispose();
});

test("generate: stop strings cut the text, streamed pieces add up to it", async (t) => {
  if (!stories) return t.pass(SKIP);
  const engine = await NativeEngine.open(stories, CTX);
  try {
    const full = await generate(engine, "", { maxTokens: 60, sampling: GREEDY });
    t.is(full.finishReason, "length");
    const stop = full.text.slice(20, 26); // a piece from the middle of the greedy text
    const pieces: string[] = [];
    const cut = await generate(engine, "", { maxTokens: 60, sampling: GREEDY, stop: [stop], onText: (d) => pieces.push(d) });
    t.is(cut.finishReason, "stop");
    t.is(cut.text, full.text.slice(0, full.text.indexOf(stop)));
    t.is(pieces.join(""), cut.text);
    t.deepEqual(cut.tokens, full.tokens.slice(0, cut.tokens.length));
    t.is(engine.context.seqLength(0), 0); // generate clears its sequence
  } finally {
    engine.dispose();
  }
});
