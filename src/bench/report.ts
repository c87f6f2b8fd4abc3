// One run's summary as text lines, for the terminal (the JSON file keeps every figure).
import { sustained, SUSTAINED_SLO, type Summary } from "./metrics.js";

const f = (x: number | null | undefined, digits = 1) => (x === null || x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(digits));

export function formatSummary(label: string, s: Summary): string {
  return [
    `${label}: ${s.completed}/${s.requests} requests answered (${s.errors} errors or unfinished) in ${f(s.wallS)} s, offered ${f(s.offeredRps, 2)} req/s`,
    `  throughput   ${f(s.requestsPerS, 2)} req/s, ${f(s.tokensPerS, 0)} tokens/s of answered requests, ${f(s.generatedTokensPerS, 0)} generated tokens/s`,
    `  TTFT         p50 ${f(s.ttftMs.p50, 0)} ms, p90 ${f(s.ttftMs.p90, 0)} ms, p99 ${f(s.ttftMs.p99, 0)} ms`,
    `  latency      p50 ${f(s.latencyMs.p50, 0)} ms, p90 ${f(s.latencyMs.p90, 0)} ms, p99 ${f(s.latencyMs.p99, 0)} ms`,
    `  SLO          ${f(s.sloAttainment * 100, 1)}% of requests with TTFT <= ${s.sloMs} ms`,
    `  keeping up   ${f(s.keepUp.servedRps, 2)} req/s answered of ${f(s.keepUp.offeredRps, 2)} arriving from ${f(s.keepUp.fromS, 0)} to ${f(s.keepUp.toS, 0)} s, ` +
      `backlog ${s.keepUp.backlogStart} -> ${s.keepUp.backlogEnd}: ${s.keepUp.keepsUp ? "keeps up" : "falls behind"}`,
    `  sustained    ${sustained(s) ? "yes" : "no"} (keeps up and SLO >= ${SUSTAINED_SLO * 100}%)`,
    `  server       ${f(s.cpuSPer1kTokens, 3)} CPU s per 1,000 tokens, peak RSS ${f(s.peakRssMiB, 0)} MiB`,
  ].join("\n");
}
