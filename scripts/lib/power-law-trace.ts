// The EdgeLoRA paper's request trace (its artifact client, itself S-LoRA's): n adapters with
// power-law popularity (adapter index floor(U^(1/alpha) * n): alpha < 1 favours the low indexes),
// Gamma inter-arrival times with coefficient of variation cv at total rate R, input lengths uniform
// in [8, 128] tokens and output lengths uniform in [8, 256]. Seeded: the same options give the same trace.
import { gammaSample } from "../../src/bench/trace.js";
import { Prng } from "../../src/gguf/prng.js";

export interface TraceOptions {
  adapters: number;
  alpha: number;
  rate: number; // requests per second
  cv: number;
  requests: number;
  seed: number;
  inputTokens?: [number, number];
  outputTokens?: [number, number];
}

export interface TraceRequest {
  at: number; // seconds from the start
  adapter: number; // 0 .. adapters-1
  inputTokens: number;
  outputTokens: number;
}

export function powerLawTrace(o: TraceOptions): TraceRequest[] {
  const prng = new Prng(o.seed);
  const rng = () => prng.uniform();
  const [inLo, inHi] = o.inputTokens ?? [8, 128];
  const [outLo, outHi] = o.outputTokens ?? [8, 256];
  const shape = 1 / (o.cv * o.cv);
  const scale = (o.cv * o.cv) / o.rate;
  const out: TraceRequest[] = [];
  let t = 0;
  for (let i = 0; i < o.requests; i++) {
    t += gammaSample(prng, shape) * scale;
    out.push({
      at: t,
      adapter: Math.min(o.adapters - 1, Math.floor(Math.pow(rng(), 1 / o.alpha) * o.adapters)),
      inputTokens: inLo + Math.floor(rng() * (inHi - inLo + 1)),
      outputTokens: outLo + Math.floor(rng() * (outHi - outLo + 1)),
    });
  }
  return out;
}
