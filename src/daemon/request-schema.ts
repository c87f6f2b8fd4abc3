// Parsing and validating a tenant's request payload: JSON per the MQTT contract, or plain text
// (the whole payload is the prompt). Problems become BAD_REQUEST with the field named.
import { randomUUID } from "node:crypto";
import { Ajv, type ErrorObject } from "ajv";
import { RequestError } from "../scheduler/types.js";

export interface ChatMessage {
  role: string;
  content: string;
}

export interface RequestBody {
  prompt?: string;
  messages?: ChatMessage[];
  adapter?: string | null;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  seed?: number;
  stop?: string | string[];
  stream?: boolean;
  transaction?: string | number;
  reply_to?: string;
  cancel?: boolean;
}

export type ParsedRequest =
  | { kind: "generate"; body: RequestBody; transaction: string; clientTransaction: boolean }
  | { kind: "cancel"; transaction: string };

const schema = {
  type: "object",
  additionalProperties: false,
  properties: {
    prompt: { type: "string", minLength: 1 },
    messages: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        required: ["role", "content"],
        additionalProperties: false,
        properties: { role: { enum: ["system", "user", "assistant"] }, content: { type: "string" } },
      },
    },
    adapter: { type: ["string", "null"], minLength: 1, maxLength: 64 },
    max_tokens: { type: "integer", minimum: 1 },
    temperature: { type: "number", minimum: 0, maximum: 5 },
    top_p: { type: "number", exclusiveMinimum: 0, maximum: 1 },
    top_k: { type: "integer", minimum: 0 },
    min_p: { type: "number", minimum: 0, maximum: 1 },
    seed: { type: "integer", minimum: 0, maximum: 4294967295 },
    stop: {
      anyOf: [
        { type: "string", minLength: 1 },
        { type: "array", maxItems: 8, items: { type: "string", minLength: 1 } },
      ],
    },
    stream: { type: "boolean" },
    transaction: { type: ["string", "number"], minLength: 1, maxLength: 128 },
    reply_to: { type: "string", minLength: 1, maxLength: 256 },
    cancel: { type: "boolean" },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: false }).compile<RequestBody>(schema);

function describe(e: ErrorObject): string {
  const field = e.instancePath.slice(1).replace(/\//g, ".") || (e.params.additionalProperty as string | undefined);
  if (e.keyword === "additionalProperties") return `unknown field ${JSON.stringify(e.params.additionalProperty)}`;
  return `${field ?? "request"}: ${e.message ?? e.keyword}`;
}

export class BadRequest extends RequestError {
  constructor(
    message: string,
    readonly transaction: string,
  ) {
    super("BAD_REQUEST", message);
  }
}

/** Throws BadRequest, whose transaction is the client's when it could be read, else a fresh one. */
export function parseRequest(payload: Buffer, maxBytes: number): ParsedRequest {
  if (payload.length > maxBytes) throw new BadRequest(`payload of ${payload.length} bytes exceeds the ${maxBytes}-byte limit`, randomUUID());
  const text = payload.toString("utf8");
  if (!text.trimStart().startsWith("{")) {
    if (text.trim() === "") throw new BadRequest("empty request", randomUUID());
    return { kind: "generate", body: { prompt: text }, transaction: randomUUID(), clientTransaction: false };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new BadRequest(`invalid JSON: ${(e as Error).message}`, randomUUID());
  }
  const given = (raw as { transaction?: unknown }).transaction;
  const transaction = typeof given === "string" || typeof given === "number" ? String(given) : randomUUID();
  if (!validate(raw)) throw new BadRequest((validate.errors ?? []).map(describe).join("; "), transaction);
  const body = raw;
  if (body.cancel) {
    if (given === undefined) throw new BadRequest("cancel needs the transaction to cancel", transaction);
    return { kind: "cancel", transaction };
  }
  if ((body.prompt === undefined) === (body.messages === undefined)) throw new BadRequest("give exactly one of prompt or messages", transaction);
  return { kind: "generate", body, transaction, clientTransaction: given !== undefined };
}
