// What a workload run measures per request, and the summary over a run: throughput, TTFT percentiles and SLO
// attainment. Times are milliseconds from the run's start; TTFT and latency count from the request's
// scheduled arrival (open loop: a server that falls behind is charged for the wait).

export interface RequestRecord {
  id: number;
  tenant: number;
  adapter: number;
  arrivalMs: number; // scheduled
  sentMs: number; // actually published (or handed to the server)
  firstTokenMs: number | null;
  doneMs: number | null;
  promptTokens: number | null; // as the server counted them
  completionTokens: number; // of an unfinished request: those generated before the run ended, where known
  error: string | null; // an error code; "UNFINISHED" when the run ended first
}

export interface Usage {
  cpuS: number; // CPU seconds of the server's process tree during the run
  peakRssBytes: number;
}

export interface Summary {
  requests: number;
  completed: number;
  errors: number;
  wallS: number; // first arrival to the last completion (or the run's end)
  offeredRps: number;
  requestsPerS: number; // completed requests per second of wall time
  tokensPerS: number; // completion tokens of completed requests per second
  generatedTokensPerS: number; // every token generated in the window, unfinished requests' included
  ttftMs: { p50: number; p90: number; p99: number };
  latencyMs: { p50: number; p90: number; p99: number };
  sloMs: number;
  sloAttainment: number; // share of all requests answered without error with TTFT <= sloMs
  cpuSPer1kTokens: number | null; // per generated token (unfinished requests' included)
  peakRssMiB: number | null;
  keepUp: KeepUp;
}

/**
 * Whether the server kept up with the offered rate, judged on the second half of the arrivals (the first
 * fills the pipeline): a server that cannot sustain the rate answers fewer requests than arrive there, so
 * its backlog (arrived, not yet answered) grows however good the TTFT of the requests it did answer.
 * Requests answered with an error, or never, stay in the backlog.
 */
export interface KeepUp {
  fromS: number; // the window, seconds of the trace
  toS: number;
  offeredRps: number; // arrivals in the window per second
  servedRps: number; // requests answered (without error) in the window per second
  backlogStart: number; // requests arrived and not answered at the window's start
  backlogEnd: number; // ... at its end
  keepsUp: boolean; // the backlog grew by at most KEEP_UP_SLACK of the window's arrivals (and at most 2 requests more)
}

/** The share of a window's arrivals a server may leave unanswered at its end and still keep up (arrivals are bursty). */
export const KEEP_UP_SLACK = 0.1;
/** SLO attainment a sustained rate needs (the target). */
export const SUSTAINED_SLO = 0.95;

/** Nearest-rank percentile; NaN for no values. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function ttftOf(r: RequestRecord): number | null {
  return r.firstTokenMs === null ? null : r.firstTokenMs - r.arrivalMs;
}

export function summarize(records: readonly RequestRecord[], opts: { sloMs: number; durationS: number; endMs: number; usage?: Usage }): Summary {
  const ok = records.filter((r) => r.error === null && r.doneMs !== null);
  // A request that failed has no meaningful TTFT; one that completed always has one (the final reply at worst).
  const ttfts = ok.map((r) => ttftOf(r) ?? r.doneMs! - r.arrivalMs);
  const latencies = ok.map((r) => r.doneMs! - r.arrivalMs);
  const start = records.length ? Math.min(...records.map((r) => r.arrivalMs)) : 0;
  const end = ok.length ? Math.max(...ok.map((r) => r.doneMs!)) : opts.endMs;
  const wallS = Math.max(1e-9, (records.length === ok.length ? end : Math.max(end, opts.endMs)) - start) / 1000;
  const tokens = ok.reduce((a, r) => a + r.completionTokens, 0);
  const generated = records.reduce((a, r) => a + r.completionTokens, 0);
  const pcts = (xs: number[]) => ({ p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99) });
  const met = ok.filter((r, i) => ttfts[i] <= opts.sloMs).length;
  return {
    requests: records.length,
    completed: ok.length,
    errors: records.length - ok.length,
    wallS,
    offeredRps: records.length / opts.durationS,
    requestsPerS: ok.length / wallS,
    tokensPerS: tokens / wallS,
    generatedTokensPerS: generated / wallS,
    ttftMs: pcts(ttfts),
    latencyMs: pcts(latencies),
    sloMs: opts.sloMs,
    sloAttainment: records.length ? met / records.length : NaN,
    cpuSPer1kTokens: opts.usage && generated > 0 ? (opts.usage.cpuS / generated) * 1000 : null,
    peakRssMiB: opts.usage ? opts.usage.peakRssBytes / 2 ** 20 : null,
    keepUp: keepUp(records, opts.durationS),
  };
}

/** The backlog over the second half of the arrivals (KeepUp). */
export function keepUp(records: readonly RequestRecord[], durationS: number): KeepUp {
  const fromMs = (durationS * 1000) / 2;
  const toMs = durationS * 1000;
  const arrived = (t: number) => records.filter((r) => r.arrivalMs <= t).length;
  const answered = (t: number) => records.filter((r) => r.error === null && r.doneMs !== null && r.doneMs <= t).length;
  const backlogStart = arrived(fromMs) - answered(fromMs);
  const backlogEnd = arrived(toMs) - answered(toMs);
  const arrivals = arrived(toMs) - arrived(fromMs);
  const windowS = (toMs - fromMs) / 1000;
  return {
    fromS: fromMs / 1000, toS: toMs / 1000, offeredRps: arrivals / windowS, servedRps: (answered(toMs) - answered(fromMs)) / windowS,
    backlogStart, backlogEnd, keepsUp: backlogEnd - backlogStart <= Math.max(2, KEEP_UP_SLACK * arrivals),
  };
}

/** A rate is sustained when the server kept up with it and met the TTFT objective for SUSTAINED_SLO of the requests. */
export function sustained(s: Summary): boolean {
  return s.keepUp.keepsUp && s.sloAttainment >= SUSTAINED_SLO;
}
