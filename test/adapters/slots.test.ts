import test from "ava";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LruAdapterSlots } from "../../src/adapters/slots.js";
import { RequestError } from "../../src/scheduler/types.js";
import { FakeEngine } from "../helpers/fake-engine.js";

const registry = { resolve: (n: string) => (["a", "b", "c", "bad"].includes(n) ? `/adapters/${n}.gguf` : null) };

test("resident adapters are reused; the LRU unpinned one is evicted; all pinned -> null", async (t) => {
  const engine = new FakeEngine();
  const slots = new LruAdapterSlots(engine, registry, 2);
  const [a1, a2] = await Promise.all([slots.acquire("a"), slots.acquire("a")]);
  t.deepEqual(a1, a2);
  t.is(engine.loads.length, 1, "concurrent acquires share one load");
  const b = await slots.acquire("b");
  t.not(b!.slot, a1!.slot);
  t.is(await slots.acquire("c"), null, "both slots pinned");
  slots.release("a");
  slots.release("a");
  const c = await slots.acquire("c");
  t.is(c!.slot, a1!.slot, "a (unpinned) was evicted");
  t.deepEqual(engine.unloads, [a1!.slot]);
  t.is(slots.stats.evictions, 1);
  t.deepEqual(slots.resident().map((r) => r.name).sort(), ["b", "c"]);
});

test("unknown names reject with ADAPTER_NOT_FOUND, failed loads free the slot; a deleted file is ADAPTER_INVALID", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-slots-"));
  const bad = join(dir, "bad.gguf");
  writeFileSync(bad, "not an adapter");
  const files = { resolve: (n: string) => (n === "bad" ? bad : n === "gone" ? join(dir, "gone.gguf") : registry.resolve(n)) };
  const engine = new FakeEngine();
  engine.failLoad = bad;
  engine.failLoadPaths.add(join(dir, "gone.gguf"));
  const slots = new LruAdapterSlots(engine, files, 1);
  const missing = await t.throwsAsync(slots.acquire("zzz"), { instanceOf: RequestError });
  t.is((missing as RequestError).code, "ADAPTER_NOT_FOUND");
  const broken = await t.throwsAsync(slots.acquire("bad"), { message: /failed to load/ });
  t.is((broken as RequestError).code, "INTERNAL");
  const gone = await t.throwsAsync(slots.acquire("gone"), { instanceOf: RequestError });
  t.is((gone as RequestError).code, "ADAPTER_INVALID", "a registered file deleted from the disk");
  t.truthy(await slots.acquire("a"), "the slot is free again");
});

test("forget unloads once the last pin is released", async (t) => {
  const engine = new FakeEngine();
  const slots = new LruAdapterSlots(engine, registry, 1);
  await slots.acquire("a");
  slots.forget("a");
  t.deepEqual(engine.unloads, []);
  slots.release("a");
  t.deepEqual(engine.unloads, [0]);
});
