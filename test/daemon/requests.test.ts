import test from "ava";
import { collect, sleep } from "../helpers/broker.js";
import type { RequestHandler } from "../../src/daemon/request-handler.js";
import { startDaemon } from "../helpers/daemon.js";
import { FakeEngine, scriptedModel } from "../helpers/fake-engine.js";

function scripted(replies: Record<string, string>, meta: Record<string, string> = {}) {
  const engine = new FakeEngine({ meta, nCtx: 64 });
  engine.model = scriptedModel(engine, replies);
  return engine;
}

test("plain text and JSON requests: reply routing, transaction echo, default adapter", async (t) => {
  const d = await startDaemon({ engine: scripted({ "hello": " world" }) });
  try {
    const alice = await d.connect("alice", "alice");
    const responses = await collect(alice, "edgelora/alice/response");
    const inbox = await collect(alice, "edgelora/alice/inbox/1");

    await alice.publishAsync("edgelora/alice/request", "hello", { qos: 1 });
    const r1 = (await responses.next(1)).json;
    t.is(r1.status, "ok");
    t.is(r1.text, " world");
    t.is(r1.adapter, "pirate");
    t.regex(r1.transaction, /^[0-9a-f-]{36}$/, "a transaction is generated when absent");
    t.deepEqual(Object.keys(r1.usage), ["prompt_tokens", "completion_tokens"]);
    t.deepEqual(Object.keys(r1.timings).sort(), ["queue_ms", "total_ms", "ttft_ms"]);

    await alice.publishAsync("edgelora/alice/request", JSON.stringify({ prompt: "hello", transaction: 42, reply_to: "edgelora/alice/inbox/1", adapter: null }), { qos: 1 });
    const r2 = (await inbox.next(1)).json;
    t.is(r2.transaction, "42");
    t.is(r2.text, " world");
    t.is(r2.adapter, null);
    t.is(responses.got.length, 1, "reply_to replies do not also go to the default topic");
  } finally {
    await d.close();
  }
});

test("streaming: chunks in order, then the final message", async (t) => {
  const d = await startDaemon({ engine: scripted({ "hello": " world, hello world." }) });
  try {
    const bob = await d.connect("bob", "bob");
    const responses = await collect(bob, "edgelora/bob/response");
    await bob.publishAsync("edgelora/bob/request", JSON.stringify({ prompt: "hello", stream: true, transaction: "s1" }), { qos: 1 });
    let last;
    for (let i = 1; ; i++) {
      last = (await responses.next(i)).json;
      if (last.type === "final") break;
    }
    const chunks = responses.got.slice(0, -1).map((m) => m.json);
    t.true(chunks.length >= 2);
    t.deepEqual(chunks.map((c) => c.seq), chunks.map((_, i) => i));
    t.true(chunks.every((c) => c.type === "chunk" && c.transaction === "s1"));
    t.is(chunks.map((c) => c.delta).join(""), " world, hello world.");
    t.is(last.status, "ok");
    t.is(last.text, " world, hello world.");
  } finally {
    await d.close();
  }
});

test("every bad input gets its error code and the daemon keeps serving", async (t) => {
  const template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
  const d = await startDaemon({
    engine: scripted({ "hello": " world", "<user>hi<assistant>": "Hello" }, { "tokenizer.chat_template": template }),
    edit: (c) => {
      c.mqtt.max_payload_bytes = 1024;
      c.scheduler.max_tokens_limit = 100;
    },
  });
  try {
    const alice = await d.connect("alice", "alice");
    const responses = await collect(alice, "edgelora/alice/response");
    const cases: [string, string][] = [
      ["{not json", "BAD_REQUEST"],
      [JSON.stringify({ prompt: "x", colour: "red" }), "BAD_REQUEST"],
      [JSON.stringify({ prompt: "" }), "BAD_REQUEST"],
      [JSON.stringify({ prompt: "x", temperature: -1 }), "BAD_REQUEST"],
      [JSON.stringify({ prompt: "x", messages: [{ role: "user", content: "x" }] }), "BAD_REQUEST"],
      [JSON.stringify({ prompt: "x", max_tokens: 101 }), "BAD_REQUEST"],
      [JSON.stringify({ prompt: "x", reply_to: "edgelora/bob/response" }), "BAD_REQUEST"],
      [JSON.stringify({ prompt: "x", adapter: "chef" }), "ADAPTER_FORBIDDEN"],
      [JSON.stringify({ prompt: "x".repeat(64) }), "PROMPT_TOO_LONG"],
      ["y".repeat(2000), "BAD_REQUEST"],
      [JSON.stringify({ transaction: "nope", cancel: true }), "BAD_REQUEST"],
      ["   ", "BAD_REQUEST"],
    ];
    for (const [i, [payload, code]] of cases.entries()) {
      await alice.publishAsync("edgelora/alice/request", payload, { qos: 1 });
      const r = (await responses.next(i + 1)).json;
      t.is(r.status, "error", payload.slice(0, 40));
      t.is(r.error.code, code, `${payload.slice(0, 40)}: ${r.error.message}`);
      t.truthy(r.transaction);
    }
    const bob = await d.connect("bob", "bob");
    const bobResponses = await collect(bob, "edgelora/bob/response");
    await bob.publishAsync("edgelora/bob/request", JSON.stringify({ prompt: "x", adapter: "nope", transaction: "t9" }), { qos: 1 });
    const nf = (await bobResponses.next(1)).json;
    t.deepEqual([nf.transaction, nf.error.code], ["t9", "ADAPTER_NOT_FOUND"]);

    await alice.publishAsync("edgelora/alice/request", JSON.stringify({ messages: [{ role: "user", content: "hi" }], temperature: 0 }), { qos: 1 });
    const chat = (await responses.next(cases.length + 1)).json;
    t.is(chat.status, "ok");
    t.is(chat.text, "Hello");
  } finally {
    await d.close();
  }
});

test("QoS-1 redelivery of a transaction runs once; a late copy gets the same reply", async (t) => {
  const d = await startDaemon({ engine: scripted({ "hello": " world" }) });
  try {
    const alice = await d.connect("alice", "alice");
    const responses = await collect(alice, "edgelora/alice/response");
    const req = JSON.stringify({ prompt: "hello", transaction: "dup-1" });
    await alice.publishAsync("edgelora/alice/request", req, { qos: 1 });
    await alice.publishAsync("edgelora/alice/request", req, { qos: 1, dup: true });
    const first = (await responses.next(1)).json;
    await sleep(100);
    t.is(responses.got.length, 1, "the copy that arrived while running was dropped");
    await alice.publishAsync("edgelora/alice/request", req, { qos: 1, dup: true });
    const again = (await responses.next(2)).json;
    t.deepEqual(again, first);
    t.is(d.controller.context.scheduler!.stats().completed, 1, "generated once");
  } finally {
    await d.close();
  }
});

test("a journal replay of a request the broker's redelivered copy got answered first is dropped, not answered again", async (t) => {
  const d = await startDaemon({ engine: scripted({ "hello": " world" }) });
  try {
    const alice = await d.connect("alice", "alice");
    const responses = await collect(alice, "edgelora/alice/response");
    const req = JSON.stringify({ prompt: "hello", transaction: "replay-1" });
    await alice.publishAsync("edgelora/alice/request", req, { qos: 1 });
    const first = (await responses.next(1)).json;
    // What the controller does at start with a request the journal left open (private: the test reaches in).
    const handler = (d.controller as unknown as { requests: RequestHandler }).requests;
    handler.inject({ topic: "edgelora/alice/request", payload: Buffer.from(req), qos: 1, dup: true }, true, true);
    // Replies leave in order: once the reply to a later request is in, one to the replay would be too.
    await alice.publishAsync("edgelora/alice/request", JSON.stringify({ prompt: "hello", transaction: "barrier" }), { qos: 1 });
    const barrier = (await responses.next(2)).json;
    t.is(barrier.transaction, "barrier", "the replay sent nothing");
    t.is(first.transaction, "replay-1");
    t.is(d.controller.context.scheduler!.stats().completed, 2, "replay-1 generated once, and the barrier");
  } finally {
    await d.close();
  }
});

test("cancel ends a running request with finish_reason cancelled", async (t) => {
  const engine = new FakeEngine({ nCtx: 4096 });
  engine.model = () => 2 + 5; // never EOS
  engine.beforeStep = async () => {
    await sleep(5);
  };
  const d = await startDaemon({ engine, edit: (c) => (c.scheduler.max_tokens_limit = 4000) });
  try {
    const bob = await d.connect("bob", "bob");
    const responses = await collect(bob, "edgelora/bob/response");
    await bob.publishAsync("edgelora/bob/request", JSON.stringify({ prompt: "go", max_tokens: 4000, transaction: "long", stream: true }), { qos: 1 });
    await responses.next(1); // the first chunk: it runs
    await bob.publishAsync("edgelora/bob/request", JSON.stringify({ transaction: "long", cancel: true }), { qos: 1 });
    let final;
    for (let i = 2; ; i++) {
      final = (await responses.next(i)).json;
      if (final.type === "final") break;
    }
    t.is(final.status, "ok");
    t.is(final.finish_reason, "cancelled");
    t.true(final.usage.completion_tokens < 4000);
  } finally {
    await d.close();
  }
});
