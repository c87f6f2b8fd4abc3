// The workload trace of the EdgeLoRA paper's artifact client (itself S-LoRA's): n adapters with popularity
// index floor(U^(1/alpha) * n), Gamma inter-arrival times with coefficient of variation cv at total rate R
// (shape 1/cv^2, scale cv^2/R, so the mean gap is 1/R), input and output lengths uniform in their ranges.
// Seeded, so the same parameters give the same trace; written as JSONL (a header line, then one request a
// line) so a run can be replayed against another server.
import { readFileSync, writeFileSync } from "node:fs";
import { Prng } from "../gguf/prng.js";

export interface TraceParams {
  adapters: number; // n
  alpha: number; // popularity skew: 1 = uniform, smaller = a few adapters take most requests
  rate: number; // R, requests per second over all tenants
  cv: number; // coefficient of variation of the inter-arrival times (1 = Poisson)
  durationS: number; // arrivals in [0, durationS)
  inputTokens: [number, number]; // inclusive range
  outputTokens: [number, number];
  tenants: number; // requests are spread over this many tenants (MQTT connections), round robin
  seed: number;
}

export const PAPER_TRACE: Omit<TraceParams, "rate" | "durationS" | "seed"> = {
  adapters: 100,
  alpha: 1,
  cv: 1.5,
  inputTokens: [8, 128],
  outputTokens: [8, 256],
  tenants: 8,
};

export interface TraceRequest {
  id: number;
  atS: number; // arrival, seconds from the start of the run
  tenant: number; // 0..tenants-1
  adapter: number; // 0..adapters-1
  inputTokens: number;
  outputTokens: number;
}

export interface Trace {
  params: TraceParams;
  requests: TraceRequest[];
}

/** Gamma(shape, 1) by Marsaglia and Tsang; shape < 1 through Gamma(shape + 1) * U^(1/shape). */
export function gammaSample(rng: Prng, shape: number): number {
  if (shape < 1) return gammaSample(rng, shape + 1) * Math.pow(1 - rng.uniform(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rng.uniform(); // (0, 1]
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

function uniformInt(rng: Prng, [lo, hi]: [number, number]): number {
  return lo + Math.floor(rng.uniform() * (hi - lo + 1));
}

export function checkTraceParams(p: TraceParams): void {
  const positive = { adapters: p.adapters, alpha: p.alpha, rate: p.rate, cv: p.cv, durationS: p.durationS, tenants: p.tenants };
  for (const [name, v] of Object.entries(positive)) {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`trace: ${name} must be a positive number, got ${v}`);
  }
  if (!Number.isInteger(p.adapters) || !Number.isInteger(p.tenants)) throw new RangeError("trace: adapters and tenants must be integers");
  for (const [name, [lo, hi]] of [["inputTokens", p.inputTokens], ["outputTokens", p.outputTokens]] as const) {
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 1 && hi >= lo)) throw new RangeError(`trace: ${name} must be a range 1 <= lo <= hi`);
  }
}

export function generateTrace(params: TraceParams): Trace {
  checkTraceParams(params);
  const rng = new Prng(params.seed);
  const shape = 1 / (params.cv * params.cv);
  const scale = (params.cv * params.cv) / params.rate;
  const requests: TraceRequest[] = [];
  for (let t = gammaSample(rng, shape) * scale, id = 0; t < params.durationS; t += gammaSample(rng, shape) * scale, id++) {
    const adapter = Math.min(params.adapters - 1, Math.floor(Math.pow(rng.uniform(), 1 / params.alpha) * params.adapters));
    requests.push({
      id,
      atS: t,
      tenant: id % params.tenants,
      adapter,
      inputTokens: uniformInt(rng, params.inputTokens),
      outputTokens: uniformInt(rng, params.outputTokens),
    });
  }
  return { params, requests };
}

export function writeTrace(path: string, trace: Trace): void {
  const lines = [JSON.stringify({ trace: trace.params }), ...trace.requests.map((r) => JSON.stringify(r))];
  writeFileSync(path, `${lines.join("\n")}\n`);
}

export function readTrace(path: string): Trace {
  const lines = readFileSync(path, "utf8").split("\n").filter((l) => l.trim() !== "");
  if (lines.length === 0) throw new Error(`${path}: empty trace`);
  const head = JSON.parse(lines[0]) as { trace?: TraceParams };
  if (!head.trace) throw new Error(`${path}: the first line must be the trace header {"trace": {...}}`);
  const requests = lines.slice(1).map((l, i) => {
    const r = JSON.parse(l) as TraceRequest;
    for (const k of ["id", "atS", "tenant", "adapter", "inputTokens", "outputTokens"] as const) {
      if (typeof r[k] !== "number") throw new Error(`${path}:${i + 2}: ${k} must be a number`);
    }
    if (r.tenant >= head.trace!.tenants || r.adapter >= head.trace!.adapters) throw new Error(`${path}:${i + 2}: tenant or adapter out of range`);
    return r;
  });
  return { params: head.trace, requests };
}

// Words that are one token each, with their leading space, in stories260K's vocabulary and in the synthetic one of
// the bench model, so a prompt of n - 1 words is n tokens with BOS there (another vocabulary may split some; the
// server reports the exact count in usage.prompt_tokens).
const WORDS = ["the", "a", "and", "was", "to", "she", "day", "said", "in", "play", "time", "be", "we", "named", "there", "upon"];

/** The prompt text of a request: seeded by its id, about `inputTokens` tokens with BOS. */
export function promptText(request: Pick<TraceRequest, "id" | "inputTokens">): string {
  const rng = new Prng(0x9e3779b9 ^ request.id);
  const words = Array.from({ length: Math.max(1, request.inputTokens - 1) }, () => WORDS[Math.floor(rng.uniform() * WORDS.length)]);
  return words.join(" ");
}
