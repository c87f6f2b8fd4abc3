// engine/prompt-tokens.ts: the one rule from a prompt text to the ids a sequence starts from, as
// generate, the offline batch and the daemon's requests (plain or chat) all use it.
import test from "ava";
import { generate } from "../src/engine/generate.js";
import { EmptyPromptError, promptTokens } from "../src/engine/prompt-tokens.js";
import type { ModelInfo } from "../src/engine/types.js";
import { promptTokens as requestTokens } from "../src/daemon/prompt.js";
import { RequestError } from "../src/scheduler/types.js";
import { BOS, FakeEngine } from "./helpers/fake-engine.js";

/** A FakeEngine whose model adds BOS or not, and may have no BOS token at all. */
function engineWith(bos: number, addBos: boolean, meta: Record<string, string> = {}): FakeEngine {
  const e = new FakeEngine({ meta });
  (e as { info: ModelInfo }).info = { ...e.info, bos, addBos };
  const tokenize = e.tokenize.bind(e);
  e.tokenize = (text: string, addSpecial = false) => {
    const ids = tokenize(text, false);
    return addSpecial && addBos ? [bos, ...ids] : ids;
  };
  return e;
}

test("BOS first when the model adds one, not otherwise; an empty prompt is BOS alone on both", (t) => {
  const adds = engineWith(BOS, true);
  const plain = engineWith(BOS, false);
  t.deepEqual(promptTokens(adds, "hello"), [BOS, ...adds.tokenize("hello", false)]);
  t.deepEqual(promptTokens(plain, "hello"), plain.tokenize("hello", false));
  t.deepEqual(promptTokens(adds, ""), [BOS]);
  t.deepEqual(promptTokens(plain, ""), [BOS]);
});

test("an empty prompt on a model without a BOS token is refused with a clear error", (t) => {
  t.throws(() => promptTokens(engineWith(-1, false), ""), { instanceOf: EmptyPromptError, message: /no BOS token/ });
  t.deepEqual(promptTokens(engineWith(-1, false), "he"), [2 + 57]); // "he" is one piece
});

test("generate and the daemon's requests follow the same rule", async (t) => {
  const plain = engineWith(BOS, false, { "tokenizer.chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}" });
  const r = await generate(plain, "", { maxTokens: 1, sampling: { temperature: 0, topK: 0, topP: 1, minP: 0, seed: 0 } });
  t.is(r.timings.promptTokens, 1);
  t.deepEqual(plain.steps[0].map((s) => s.token), [BOS], "generation starts from BOS alone");
  t.deepEqual(requestTokens(plain, { prompt: "hello" }, null), promptTokens(plain, "hello"));
  t.deepEqual(requestTokens(plain, { messages: [{ role: "user", content: "" }] }, null), [BOS], "a chat rendered empty: BOS alone");
  const noBos = engineWith(-1, false, { "tokenizer.chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}" });
  const err = t.throws(() => requestTokens(noBos, { messages: [{ role: "user", content: "" }] }, null), { instanceOf: RequestError });
  t.is(err.code, "BAD_REQUEST");
  await t.throwsAsync(generate(noBos, "", { maxTokens: 1, sampling: { temperature: 0, topK: 0, topP: 1, minP: 0, seed: 0 } }), { instanceOf: EmptyPromptError });
});
