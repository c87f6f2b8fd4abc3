// Cache-aware admission: with one slot, requests whose adapter is resident go first, but a request
// needing a load is passed over at most maxPassOver times (no starvation); without tier() (or with
// maxPassOver 0) the fair queue's order is kept.
import test from "ava";
import { Scheduler } from "../src/scheduler/scheduler.js";
import type { AdapterTier, Job, SchedulerLimits } from "../src/scheduler/types.js";
import { FakeEngine, FakeSlots } from "./helpers/fake-engine.js";

const LIMITS: SchedulerLimits = {
  maxBatchTokens: 32, maxSequences: 1, prefillChunk: 8, maxQueue: 64, perTenantInFlight: 4, perTenantQueue: 32,
};

class TieredFakeSlots extends FakeSlots {
  readonly order: string[] = [];
  async acquire(name: string) {
    this.order.push(name);
    return super.acquire(name);
  }
  tier(name: string): AdapterTier | null {
    return this.slots.some((s) => s.name === name) ? "hot" : "cold";
  }
}

async function admissionOrder(opts: { tiered: boolean; maxPassOver?: number }): Promise<string[]> {
  const engine = new FakeEngine({ loadDelayMs: 1 });
  const slots = opts.tiered ? new TieredFakeSlots(engine, 1, { hot: 1, cold: 1 }) : new (class extends FakeSlots {
    readonly order: string[] = [];
    async acquire(name: string) {
      this.order.push(name);
      return super.acquire(name);
    }
  })(engine, 1, { hot: 1, cold: 1 });
  const scheduler = new Scheduler({ engine, adapters: slots, limits: { ...LIMITS, maxPassOver: opts.maxPassOver } });
  const done: Promise<void>[] = [];
  let n = 0;
  const submit = (tenant: string, adapter: string) => {
    const job: Job = {
      id: `${tenant}/${n++}`, tenant, promptTokens: engine.tokenize("hello", true), adapter, maxTokens: 2,
      sampling: { temperature: 0, topK: 0, topP: 1, minP: 0, seed: 1 }, stop: [], timeoutMs: 60_000,
    };
    done.push(new Promise((resolve) => scheduler.submit(job, { onDone: () => resolve(), onError: () => resolve() })));
  };
  // "hot" is resident before the others queue: b's first request warms the slot.
  submit("b", "hot");
  scheduler.start();
  await done[0];
  submit("a", "cold"); // a's request needs a load; b and c keep sending requests for the resident adapter
  for (let i = 0; i < 4; i++) {
    submit("b", "hot");
    submit("c", "hot");
  }
  await Promise.all(done);
  await scheduler.stop(0);
  return slots.order.slice(1);
}

test("resident adapters are admitted first, and a request needing a load waits at most maxPassOver turns", async (t) => {
  const order = await admissionOrder({ tiered: true, maxPassOver: 3 });
  t.is(order.length, 9);
  t.is(order.indexOf("cold"), 3, `passed over exactly 3 times: ${order.join(",")}`);
  const unbounded = await admissionOrder({ tiered: true, maxPassOver: 100 });
  t.is(unbounded.indexOf("cold"), 8, "with a loose bound it goes last");
});

test("without tier() or with maxPassOver 0 the fair queue's order stands", async (t) => {
  t.is((await admissionOrder({ tiered: false })).indexOf("cold"), 0);
  t.is((await admissionOrder({ tiered: true, maxPassOver: 0 })).indexOf("cold"), 0);
});
