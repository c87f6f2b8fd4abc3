import test from "ava";
import { percentile, summarize, sustained, type RequestRecord } from "../../src/bench/metrics.js";

function rec(id: number, arrivalMs: number, ttft: number | null, done: number | null, tokens: number, error: string | null = null): RequestRecord {
  return {
    id, tenant: 0, adapter: 0, arrivalMs, sentMs: arrivalMs, firstTokenMs: ttft === null ? null : arrivalMs + ttft,
    doneMs: done === null ? null : arrivalMs + done, promptTokens: 10, completionTokens: tokens, error,
  };
}

test("nearest-rank percentiles", (t) => {
  const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  t.is(percentile(xs, 50), 5);
  t.is(percentile(xs, 90), 9);
  t.is(percentile(xs, 99), 10);
  t.true(Number.isNaN(percentile([], 50)));
});

test("a run's summary: throughput over the busy window, TTFT of answered requests, errors as SLO misses", (t) => {
  const records = [
    rec(0, 0, 100, 1000, 10),
    rec(1, 500, 7000, 9000, 20), // answered, but past the SLO
    rec(2, 1000, 200, 3000, 30),
    rec(3, 1500, null, null, 0, "OVERLOADED"),
    rec(4, 1800, 900, null, 40, "UNFINISHED"), // 40 tokens generated before the run ended
  ];
  const s = summarize(records, { sloMs: 6000, durationS: 2, endMs: 9500, usage: { cpuS: 3, peakRssBytes: 64 * 2 ** 20 } });
  t.is(s.requests, 5);
  t.is(s.completed, 3);
  t.is(s.errors, 2);
  t.is(s.wallS, 9.5); // an error keeps the run's end in the window
  t.is(s.offeredRps, 2.5);
  t.is(s.requestsPerS, 3 / 9.5);
  t.is(s.tokensPerS, 60 / 9.5);
  t.is(s.generatedTokensPerS, 100 / 9.5);
  t.is(s.ttftMs.p50, 200);
  t.is(s.ttftMs.p99, 7000);
  t.is(s.sloAttainment, 2 / 5);
  t.is(s.cpuSPer1kTokens, 30); // 3 CPU s for 100 generated tokens
  t.is(s.peakRssMiB, 64);
  const clean = summarize(records.slice(0, 3), { sloMs: 6000, durationS: 2, endMs: 20000 });
  t.is(clean.generatedTokensPerS, clean.tokensPerS);
  t.is(clean.wallS, 9.5); // first arrival to last completion
  t.is(clean.cpuSPer1kTokens, null);
});

/** One request a second for `durationS` s, each answered `serviceS(i)` s after it arrived (null: never). */
function steady(durationS: number, serviceS: (i: number) => number | null): RequestRecord[] {
  return Array.from({ length: durationS }, (_, i) => {
    const s = serviceS(i);
    return rec(i, i * 1000, s === null ? null : 100, s === null ? null : s * 1000, 10, s === null ? "UNFINISHED" : null);
  });
}

test("keeping up: a server answering as fast as requests arrive keeps up, one answering at half the rate falls behind", (t) => {
  const fast = summarize(steady(60, () => 2), { sloMs: 6000, durationS: 60, endMs: 70_000 });
  t.is(fast.keepUp.fromS, 30);
  t.is(fast.keepUp.offeredRps, 29 / 30); // requests 31..59 arrive in (30 s, 60 s]
  t.is(fast.keepUp.servedRps, 1);
  t.is(fast.keepUp.backlogStart, 2); // requests 29 and 30 arrived and are in service
  t.true(fast.keepUp.keepsUp);
  t.true(sustained(fast));

  // A server with capacity 0.5 req/s: request i is answered at 2i + 2 s; the queue grows all along. Every
  // answered request met the SLO (its first token came early), so only the backlog tells.
  const slow = summarize(steady(60, (i) => (2 * i + 2 <= 90 ? 2 * i + 2 - i : null)), { sloMs: 6000, durationS: 60, endMs: 90_000 });
  t.is(slow.keepUp.servedRps, 0.5);
  t.true(slow.keepUp.backlogEnd - slow.keepUp.backlogStart >= 14);
  t.false(slow.keepUp.keepsUp);
  t.false(sustained(slow));
});

test("sustained needs the SLO too: keeping up with TTFTs past the objective is not sustained", (t) => {
  const late = steady(60, () => 2).map((r) => ({ ...r, firstTokenMs: r.arrivalMs + 7000, doneMs: r.arrivalMs + 8000 }));
  const s = summarize(late, { sloMs: 6000, durationS: 60, endMs: 70_000 });
  t.true(s.keepUp.keepsUp);
  t.is(s.sloAttainment, 0);
  t.false(sustained(s));
});
