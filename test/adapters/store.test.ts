// TieredAdapterStore on a fake engine whose slot images carry the adapter's name: hot/warm/cold
// movements, pinned slots never evicted, the warm budget never exceeded, prefetch, error codes.
import test from "ava";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirectoryWarmBackend } from "../../src/adapters/store/directory-warm.js";
import { LfuPolicy, LruPolicy, type WarmPolicy } from "../../src/adapters/store/policy.js";
import { MemoryWarmBackend } from "../../src/adapters/store/memory-warm.js";
import { TieredAdapterStore, type AdapterCatalog } from "../../src/adapters/store/store.js";
import { WarmTier } from "../../src/adapters/store/warm.js";
import type { AdapterSlotInfo } from "../../src/engine/types.js";
import { RequestError } from "../../src/scheduler/types.js";
import { until } from "../helpers/broker.js";

const IMAGE = 1000;

class ImageEngine {
  readonly slots = new Map<number, string>(); // slot -> adapter path it holds
  readonly loads: string[] = [];
  readonly imports: string[] = [];
  failPath: { path: string; code?: string } | null = null;
  gate: Promise<void> | null = null; // holds loads until resolved

  private info(slot: number): AdapterSlotInfo {
    return { slot, rank: 4, alpha: 8, factor: 2, bytes: IMAGE - 64, modules: ["q"] };
  }
  async loadAdapter(slot: number, path: string): Promise<AdapterSlotInfo> {
    if (this.gate) await this.gate;
    await new Promise((r) => setImmediate(r));
    if (this.failPath?.path === path) throw Object.assign(new Error(`cannot read ${path}`), { code: this.failPath.code });
    this.slots.set(slot, path);
    this.loads.push(path);
    return this.info(slot);
  }
  unloadAdapter(slot: number): void {
    this.slots.delete(slot);
  }
  exportAdapter(slot: number): Buffer {
    const b = Buffer.alloc(IMAGE);
    b.write(this.slots.get(slot)!);
    return b;
  }
  async importAdapter(slot: number, image: Buffer): Promise<AdapterSlotInfo> {
    await new Promise((r) => setImmediate(r));
    const path = image.toString("utf8").replace(/\0+$/, "");
    this.slots.set(slot, path);
    this.imports.push(path);
    return this.info(slot);
  }
}

const NAMES = Array.from({ length: 20 }, (_, i) => `a${i}`);
function catalog(problems: Record<string, string> = {}): AdapterCatalog {
  return { resolve: (n) => (NAMES.includes(n) ? `/adapters/${n}.gguf` : null), problem: (n) => problems[n] ?? null };
}

function store(opts: { slots?: number; warmImages?: number; policy?: WarmPolicy; problems?: Record<string, string> } = {}) {
  const engine = new ImageEngine();
  const policy = opts.policy ?? new LruPolicy();
  const warm = opts.warmImages === 0 ? null : new WarmTier(new MemoryWarmBackend(), (opts.warmImages ?? 3) * IMAGE, policy);
  const s = new TieredAdapterStore({ engine, catalog: catalog(opts.problems), slots: opts.slots ?? 2, warm, policy });
  return { engine, s, warm };
}

test("cold -> hot, hot -> warm on eviction, warm -> hot by image; the slot holds the right adapter", async (t) => {
  const { engine, s } = store({ slots: 1, warmImages: 3 });
  t.is(s.tier("a0"), "cold");
  t.is(s.tier("zzz"), null);
  const a = await s.acquire("a0");
  t.is(s.tier("a0"), "hot");
  t.deepEqual(engine.loads, ["/adapters/a0.gguf"]);
  s.release("a0");
  const b = await s.acquire("a1");
  t.is(b!.slot, a!.slot);
  t.is(s.tier("a0"), "warm");
  s.release("a1");
  await s.acquire("a0");
  t.deepEqual(engine.imports, ["/adapters/a0.gguf"], "a0 came back from its image, not its file");
  t.is(engine.slots.get(a!.slot), "/adapters/a0.gguf");
  const st = s.stats();
  t.deepEqual(st.hits, { hot: 0, warm: 1, cold: 2 });
  t.deepEqual(st.misses, { hot: 3, warm: 2 });
  t.is(st.promotions.warm.count, 1);
  t.is(st.promotions.cold.count, 2);
});

test("exclusive tiers: warm keeps no copy of what a slot holds, so 2 slots + 3 images serve 5 adapters with no further load", async (t) => {
  const { engine, s, warm } = store({ slots: 2, warmImages: 3 });
  const five = NAMES.slice(0, 5);
  for (let round = 0; round < 3; round++) {
    for (const name of five) {
      t.truthy(await s.acquire(name));
      s.release(name);
      await new Promise((r) => setImmediate(r));
      const hot = s.resident().map((r) => r.name);
      const inWarm = [...warm!.names()];
      t.deepEqual(hot.filter((n) => inWarm.includes(n)), [], `no adapter both hot and warm (hot ${hot}, warm ${inWarm})`);
      if (round > 0) t.is(hot.length + inWarm.length, 5);
    }
  }
  t.deepEqual(engine.loads, five.map((n) => `/adapters/${n}.gguf`), "each file read once");
  t.like(s.stats().hits, { cold: 5, warm: 10 });
  t.is(s.stats().warm!.evictions, 0, "nothing dropped: the five fit");
});

test("LFU picks the slot to free by request count (LRU breaks ties), and a prefetched adapter last", async (t) => {
  const { s } = store({ slots: 2, warmImages: 3, policy: new LfuPolicy() });
  for (let i = 0; i < 3; i++) {
    await s.acquire("a10");
    s.release("a10");
  }
  await s.acquire("a11");
  s.release("a11");
  await s.acquire("a12"); // a10 is the least recently used, a11 the least requested: a11 leaves
  s.release("a12");
  t.is(s.tier("a10"), "hot");
  t.is(s.tier("a11"), "warm");
  t.is(s.tier("a12"), "hot");
  s.prefetch("a13"); // takes a12's slot (requested once against a10's 3)
  await until(() => s.tier("a13") === "hot", "the prefetch of a13"); // loads in the background
  t.is(s.tier("a13"), "hot");
  t.is(s.tier("a12"), "warm");
  await s.acquire("a14"); // a13 has no request counted yet, but its request is queued: a10 goes
  t.is(s.tier("a13"), "hot");
  t.is(s.tier("a10"), "warm");
  t.is(s.tier("a14"), "hot");
});

test("pinned slots are never evicted; all pinned -> null", async (t) => {
  const { engine, s } = store({ slots: 2 });
  await s.acquire("a0");
  await s.acquire("a1");
  t.is(await s.acquire("a2"), null);
  s.prefetch("a3");
  t.is(s.tier("a3"), "cold", "prefetch does not take a pinned slot either");
  t.deepEqual([...engine.slots.values()].sort(), ["/adapters/a0.gguf", "/adapters/a1.gguf"]);
  s.release("a1");
  const c = await s.acquire("a2");
  t.is(engine.slots.get(c!.slot), "/adapters/a2.gguf");
  t.is(s.tier("a0"), "hot");
});

test("warm tier off (the offline batch's slots): concurrent acquires share one load; the least recently used unpinned slot is reused", async (t) => {
  const { engine, s } = store({ slots: 2, warmImages: 0 });
  const [a1, a2] = await Promise.all([s.acquire("a0"), s.acquire("a0")]);
  t.deepEqual(a1, a2);
  t.deepEqual(engine.loads, ["/adapters/a0.gguf"], "one load for both");
  const b = await s.acquire("a1");
  t.not(b!.slot, a1!.slot);
  s.release("a1");
  s.release("a0");
  s.release("a0");
  const c = await s.acquire("a2"); // a0 was used before a1: its slot goes
  t.is(c!.slot, a1!.slot);
  t.is(s.tier("a0"), "cold", "no warm tier: evicted means back to the file");
  t.deepEqual(engine.imports, []);
  t.is(s.stats().evictions, 1);
  t.is(s.stats().warm, null);
  t.deepEqual(s.resident().map((r) => r.name).sort(), ["a1", "a2"]);
});

test("the warm budget is never exceeded while adapters cycle", async (t) => {
  const { s, warm } = store({ slots: 2, warmImages: 3 });
  for (let round = 0; round < 3; round++) {
    for (const name of NAMES.slice(0, 8)) {
      const lease = await s.acquire(name);
      t.truthy(lease);
      s.release(name);
      await new Promise((r) => setImmediate(r));
      t.true(warm!.usedBytes <= warm!.budgetBytes, `${warm!.usedBytes} <= ${warm!.budgetBytes}`);
    }
  }
  const st = s.stats();
  t.true(st.warm!.evictions > 0);
  t.true(st.warm!.entries <= 3);
});

test("prefetch loads into a free slot off the caller; the acquire is then a hit", async (t) => {
  const { engine, s } = store({ slots: 2 });
  let open!: () => void;
  engine.gate = new Promise((r) => (open = r));
  s.prefetch("a5");
  t.notThrows(() => s.prefetch("nope"));
  t.is(s.tier("a5"), "cold", "loading: not hot yet");
  const lease = s.acquire("a5"); // joins the prefetch's load
  open();
  t.truthy(await lease);
  t.deepEqual(engine.loads, ["/adapters/a5.gguf"], "one load");
  t.is(s.stats().prefetch.hits, 1);
  t.like(s.stats().hits, { hot: 0, cold: 1 }, "counted where the prefetch found it");
});

test("error codes: unknown, invalid (registry), bad file (engine) -> ADAPTER_INVALID, other engine errors -> INTERNAL", async (t) => {
  const { engine, s } = store({ problems: { a9: "the file changed since it was registered" } });
  const code = async (name: string) => ((await t.throwsAsync(s.acquire(name), { instanceOf: RequestError })) as RequestError).code;
  t.is(await code("zzz"), "ADAPTER_NOT_FOUND");
  t.is(await code("a9"), "ADAPTER_INVALID");
  engine.failPath = { path: "/adapters/a1.gguf", code: "BAD_FILE" };
  t.is(await code("a1"), "ADAPTER_INVALID");
  engine.failPath = { path: "/adapters/a1.gguf", code: "OUT_OF_MEMORY" };
  t.is(await code("a1"), "INTERNAL");
  engine.failPath = null;
  t.truthy(await s.acquire("a1"), "the slot was given back after the failures");
});

test("forget drops the warm copy and unloads once the last pin goes", async (t) => {
  const { engine, s } = store({ slots: 1 });
  const lease = await s.acquire("a0");
  s.forget("a0");
  t.is(engine.slots.get(lease!.slot), "/adapters/a0.gguf", "still running");
  t.not(s.tier("a0"), "warm");
  s.release("a0");
  t.false(engine.slots.has(lease!.slot));
});

test("LFU keeps the frequently requested through a burst of one-off requests; LRU does not", (t) => {
  const run = (policy: WarmPolicy) => {
    const held = new Set<string>();
    const request = (name: string) => {
      policy.touch(name);
      if (held.has(name)) return;
      if (held.size >= 3) {
        const victim = policy.victim(held);
        if (victim === null || !policy.admits(name, victim)) return;
        held.delete(victim);
      }
      held.add(name);
    };
    for (let i = 0; i < 5; i++) for (const n of ["p", "q", "r"]) request(n);
    for (let i = 0; i < 10; i++) request(`once${i}`);
    return [...held].sort();
  };
  t.deepEqual(run(new LfuPolicy()), ["p", "q", "r"]);
  t.deepEqual(run(new LruPolicy()), ["once7", "once8", "once9"]);
});

test("prewarm puts the most requested adapters that are not warm into warm, and stops when busy", async (t) => {
  const policy = new LfuPolicy();
  const { engine, s, warm } = store({ slots: 1, warmImages: 3, policy });
  // Counts as if requests had come (a5 most, then a6, a7, a8), none served yet.
  for (const [name, n] of [["a5", 4], ["a6", 3], ["a7", 2], ["a8", 1]] as const) for (let i = 0; i < n; i++) policy.touch(name);
  let calls = 0;
  t.is(await s.prewarm(() => ++calls > 2), 2, "busy after two");
  t.true(warm!.has("a5") && warm!.has("a6") && !warm!.has("a7"));
  t.is(await s.prewarm(() => false), 1, "then the next one; a8 does not fit in the budget");
  t.true(warm!.has("a7") && !warm!.has("a8"));
  t.deepEqual(engine.loads, ["/adapters/a5.gguf", "/adapters/a6.gguf", "/adapters/a7.gguf"]);
  t.is(s.stats().prewarmed, 3);
});

test("the directory backend (any directory): images round-trip, removes and writes of one name stay in order, clear keeps other files", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-warmdir-"));
  writeFileSync(join(dir, "keep.txt"), "not ours");
  const backend = new DirectoryWarmBackend(dir);
  const warm = new WarmTier(backend, 3 * IMAGE, new LruPolicy());
  const img = (s: string) => Buffer.concat([Buffer.from(s), Buffer.alloc(IMAGE - s.length)]);
  t.true(await warm.put("a", img("first a")));
  warm.delete("a");
  const again = warm.put("a", img("second a")); // queued behind the remove
  t.true(await again);
  t.is((await warm.get("a"))!.subarray(0, 8).toString(), "second a");
  for (const n of ["b", "c", "d"]) await warm.put(n, img(n));
  t.false(warm.has("a"), "LRU evicted a");
  t.true(warm.usedBytes <= warm.budgetBytes);
  // The files of removed images are unlinked in the background.
  await until(() => !readdirSync(dir).includes("a.slot"), "a.slot removed");
  t.deepEqual(readdirSync(dir).sort(), ["b.slot", "c.slot", "d.slot", "keep.txt"]);
  await backend.clear();
  t.deepEqual(readdirSync(dir), ["keep.txt"]);
});
