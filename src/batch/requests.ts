// The input of `edgelora batch`: JSON Lines, one request per line,
//   {"id", "prompt", "lora"?, "scale"?, "max_tokens"?, "temperature"?, "top_k"?, "top_p"?, "min_p"?, "seed"?}
// Blank lines are skipped; anything else that is not a valid request is an error naming its line.
import type { SamplingParams } from "../engine/types.js";
import type { AdapterRef } from "./adapter-file.js";

export interface BatchRequest {
  line: number; // 1-based line in the input
  id: string | number;
  prompt: string;
  adapter: AdapterRef | null;
  maxTokens: number;
  sampling: SamplingParams;
}

export interface RequestDefaults {
  maxTokens: number;
  sampling: SamplingParams;
}

const KEYS = new Set(["id", "prompt", "lora", "scale", "max_tokens", "temperature", "top_k", "top_p", "min_p", "seed"]);

export class RequestLineError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = "RequestLineError";
  }
}

function numberField(o: Record<string, unknown>, key: string, fallback: number, ok: (n: number) => boolean, rule: string): number {
  const v = o[key];
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !ok(v)) throw new Error(`"${key}" must be ${rule}`);
  return v;
}

function parseLine(text: string, d: RequestDefaults): Omit<BatchRequest, "line"> {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw new Error(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new Error("expected a JSON object");
  const r = o as Record<string, unknown>;
  const unknown = Object.keys(r).filter((k) => !KEYS.has(k));
  if (unknown.length > 0) throw new Error(`unknown field ${unknown.map((k) => `"${k}"`).join(", ")} (allowed: ${[...KEYS].join(", ")})`);
  const id = r.id;
  if (!(typeof id === "string" || (typeof id === "number" && Number.isFinite(id)))) throw new Error(`"id" must be a string or a number`);
  if (typeof r.prompt !== "string") throw new Error(`"prompt" must be a string`);
  if (r.lora !== undefined && (typeof r.lora !== "string" || r.lora === "")) throw new Error(`"lora" must be a non-empty path`);
  if (r.scale !== undefined && r.lora === undefined) throw new Error(`"scale" needs "lora"`);
  const scale = numberField(r, "scale", 1, Number.isFinite, "a finite number");
  const s = d.sampling;
  return {
    id,
    prompt: r.prompt,
    adapter: typeof r.lora === "string" ? { path: r.lora, scale } : null,
    maxTokens: numberField(r, "max_tokens", d.maxTokens, (n) => Number.isInteger(n) && n >= 1, "an integer >= 1"),
    sampling: {
      temperature: numberField(r, "temperature", s.temperature, (n) => n >= 0 && n <= 100, "a number in [0, 100]"),
      topK: numberField(r, "top_k", s.topK, (n) => Number.isInteger(n) && n >= 0, "an integer >= 0"),
      topP: numberField(r, "top_p", s.topP, (n) => n > 0 && n <= 1, "a number in (0, 1]"),
      minP: numberField(r, "min_p", s.minP, (n) => n >= 0 && n <= 1, "a number in [0, 1]"),
      seed: numberField(r, "seed", s.seed, (n) => Number.isInteger(n) && n >= 0, "an integer >= 0"),
    },
  };
}

/** Parses the whole input; throws RequestLineError for the first bad line or a repeated id. */
export function parseRequests(jsonl: string, d: RequestDefaults): BatchRequest[] {
  const out: BatchRequest[] = [];
  const seen = new Map<string, number>();
  jsonl.split("\n").forEach((raw, i) => {
    const line = i + 1;
    const text = raw.trim();
    if (text === "") return;
    let req: Omit<BatchRequest, "line">;
    try {
      req = parseLine(text, d);
    } catch (e) {
      throw new RequestLineError(line, (e as Error).message);
    }
    const key = `${typeof req.id}:${req.id}`;
    const first = seen.get(key);
    if (first !== undefined) throw new RequestLineError(line, `id ${JSON.stringify(req.id)} already used on line ${first}`);
    seen.set(key, line);
    out.push({ line, ...req });
  });
  if (out.length === 0) throw new Error("no requests in the input");
  return out;
}
