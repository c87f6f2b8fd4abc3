import test from "ava";
import { bracket, nextRate, type RateResult } from "../../src/bench/slo-search.js";

const runs = (sustained: number[], not: number[]): RateResult[] => [
  ...sustained.map((rate) => ({ rate, sustained: true })),
  ...not.map((rate) => ({ rate, sustained: false })),
];

test("the bracket: highest sustained rate, lowest failed rate above it", (t) => {
  t.deepEqual(bracket(runs([0.5, 1, 2], [4, 8])), { lo: 2, hi: 4 });
  t.deepEqual(bracket(runs([0.5, 2], [1, 4])), { lo: 2, hi: 4 }); // a noisy failure below a success is outside the bracket
  t.deepEqual(bracket(runs([], [1, 2])), { lo: 0, hi: 1 });
  t.deepEqual(bracket(runs([1, 2], [])), { lo: 2, hi: null });
});

test("bisection: the middle of the bracket until it is within the tolerance", (t) => {
  t.is(nextRate(runs([0.5, 1, 2, 4], [6]), 0.1), 5);
  t.is(nextRate(runs([4, 5], [6]), 0.1), 5.5);
  t.is(nextRate(runs([4, 5, 5.5], [6]), 0.1), null); // (6 - 5.5) / 6 <= 0.1
  t.is(nextRate(runs([1, 2], []), 0.1), 4); // all sustained: look higher
  t.is(nextRate(runs([], [0.5, 1]), 0.1), 0.25); // none sustained: look lower
  t.is(nextRate(runs([1], [1.5]), 0.1), 1.25);
  t.is(nextRate([], 0.1), null);
});

test("a server with a sharp knee is found within the tolerance in a few runs", (t) => {
  const capacity = 3.7;
  const results: RateResult[] = [0.5, 1, 2, 4].map((rate) => ({ rate, sustained: rate <= capacity }));
  let steps = 0;
  for (let r = nextRate(results, 0.05); r !== null && steps < 10; r = nextRate(results, 0.05), steps++) results.push({ rate: r, sustained: r <= capacity });
  const { lo, hi } = bracket(results);
  t.true(lo <= capacity && hi !== null && hi > capacity);
  t.true((hi! - lo) / hi! <= 0.05);
  t.true(steps <= 4);
});
