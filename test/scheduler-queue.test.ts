import test from "ava";
import { FairQueue } from "../src/scheduler/queue.js";

interface Item {
  tenant: string;
  n: number;
}
const limits = { maxQueue: 10, perTenantQueue: 4, perTenantInFlight: 2 };
const queue = () => new FairQueue<Item>(limits, (i) => i.tenant);
const all = () => true;

test("tenants are served round-robin, each in FIFO order", (t) => {
  const q = queue();
  for (const [tenant, n] of [["a", 1], ["a", 2], ["a", 3], ["b", 1], ["c", 1], ["c", 2]] as const) q.push({ tenant, n });
  const order: string[] = [];
  for (let item = q.take(all); item; item = q.take(all)) {
    order.push(`${item.tenant}${item.n}`);
    q.done(item.tenant);
  }
  t.deepEqual(order, ["a1", "b1", "c1", "a2", "c2", "a3"]);
  t.is(q.size, 0);
});

test("bounded queues and the in-flight cap", (t) => {
  const q = queue();
  for (let n = 0; n < 4; n++) t.true(q.push({ tenant: "a", n }));
  t.false(q.push({ tenant: "a", n: 4 }), "tenant queue full");
  for (let n = 0; n < 4; n++) t.true(q.push({ tenant: "b", n }));
  t.true(q.push({ tenant: "c", n: 0 }));
  t.true(q.push({ tenant: "d", n: 0 }));
  t.false(q.push({ tenant: "e", n: 0 }), "global queue full");
  const taken = [q.take(all), q.take(all), q.take(all), q.take(all), q.take(all), q.take(all), q.take(all), q.take(all)];
  t.deepEqual(taken.map((i) => i && `${i.tenant}${i.n}`), ["a0", "b0", "c0", "d0", "a1", "b1", undefined, undefined]);
  q.done("a");
  t.is(q.take(all)?.n, 2, "a may run another once one finished");
});

test("a put-back item is first in its tenant's line; skipped heads block only their tenant", (t) => {
  const q = queue();
  q.push({ tenant: "a", n: 1 });
  q.push({ tenant: "b", n: 1 });
  const a1 = q.take(all)!;
  q.push({ tenant: "a", n: 2 });
  q.putBack(a1);
  t.is(q.size, 3);
  t.deepEqual(q.take((i) => i.tenant !== "a"), { tenant: "b", n: 1 });
  t.deepEqual(q.take(all), a1);
  t.deepEqual(q.removeWhere((i) => i.n === 2), [{ tenant: "a", n: 2 }]);
  t.is(q.size, 0);
  t.is(q.take(all), undefined);
});
