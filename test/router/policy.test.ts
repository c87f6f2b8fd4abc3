// The router's policy alone: top k, the margin, and the tier preference inside it only.
import test from "ava";
import { choose, type AdapterTier } from "../../src/adapters/router/policy.js";

const scores = new Map([
  ["a", 0.5],
  ["b", 0.3],
  ["c", 0.15],
  ["d", 0.05],
]);
const tiers = (t: Record<string, AdapterTier>) => (name: string) => t[name] ?? "cold";

test("margin 0: always the best, with the top k as candidates in score order", (t) => {
  const r = choose(scores, tiers({ b: "hot" }), { k: 3, margin: 0 });
  t.is(r.adapter, "a");
  t.deepEqual(r.candidates.map((c) => c.adapter), ["a", "b", "c"]);
  t.deepEqual(r.candidates.map((c) => c.tier), ["cold", "hot", "cold"]);
  t.regex(r.chosen_because, /highest score/);
});

test("within the margin a hot adapter wins over a better cold one; outside it does not", (t) => {
  t.is(choose(scores, tiers({ b: "hot" }), { k: 3, margin: 0.2 }).adapter, "b");
  t.is(choose(scores, tiers({ b: "hot" }), { k: 3, margin: 0.19 }).adapter, "a");
  const r = choose(scores, tiers({ b: "hot" }), { k: 3, margin: 0.25 });
  t.regex(r.chosen_because, /hot and within margin 0.25 of the best \(a: 0.500/);
});

test("hot before warm before cold; the best of a tier first; the best itself when it is hot", (t) => {
  t.is(choose(scores, tiers({ b: "warm", c: "hot" }), { k: 4, margin: 0.4 }).adapter, "c");
  t.is(choose(scores, tiers({ b: "warm", c: "warm" }), { k: 4, margin: 0.4 }).adapter, "b");
  t.is(choose(scores, tiers({ a: "hot", b: "hot" }), { k: 4, margin: 1 }).adapter, "a");
});

test("only the top k are considered, however large the margin", (t) => {
  t.is(choose(scores, tiers({ d: "hot" }), { k: 3, margin: 1 }).adapter, "a");
  t.is(choose(scores, tiers({ d: "hot" }), { k: 4, margin: 1 }).adapter, "d");
  t.is(choose(scores, tiers({ b: "hot" }), { k: 1, margin: 1 }).adapter, "a");
});
