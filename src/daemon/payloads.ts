// The JSON payload of every topic the daemon publishes (DESIGN.md's MQTT contract), as a map from
// topic kind to payload type, as zigbee2mqtt types its topic map: a reply's shape is checked where
// it is built, and `json(kind, payload)` is the only way a payload becomes the text published.
import type { ErrorCode, JobResult } from "../scheduler/types.js";
import type { AdminError } from "./admin-args.js";
import type { RouterView } from "./auto-adapter.js";
import type { BridgeInfoPayload } from "./bridge-info.js";
import type { MetricsSnapshot } from "./metrics.js";

/** A final reply carries `type: "final"` when the request streamed. */
type Final = { type?: "final" };

/** <base>/<tenant>/response (or the request's reply topic): the answer. */
export type OkReply = Final & {
  transaction: string;
  status: "ok";
  text: string;
  adapter: string | null;
  /** With "adapter": "auto": how the router chose. */
  router?: RouterView;
  finish_reason: JobResult["finishReason"];
  usage: { prompt_tokens: number; completion_tokens: number };
  timings: JobResult["timings"];
};

export type ErrorReply = Final & {
  transaction: string;
  status: "error";
  error: { code: ErrorCode; message: string };
};

export type TenantReply = OkReply | ErrorReply;

export function errorReply(transaction: string, code: ErrorCode, message: string, stream = false): ErrorReply {
  return { transaction, ...(stream ? { type: "final" as const } : {}), status: "error", error: { code, message } };
}

/** The same reply topic, before the final reply of a streamed request. */
export interface StreamChunk {
  transaction: string;
  type: "chunk";
  seq: number;
  delta: string;
}

/** <base>/bridge/state (the fleet aggregate) and <base>/bridge/<board>/state, retained. */
export interface BridgeState {
  state: "online" | "offline";
  board?: string; // per board
  error?: string; // the model failed to load
}

/** <base>/bridge/response/<op>: `transaction` is echoed when the request had one. */
export type AdminReply =
  | { transaction?: unknown; status: "ok"; data: unknown }
  | { transaction?: unknown; status: "error"; error: { code: AdminError["code"] | "INTERNAL"; message: string } };

export interface TopicPayloads {
  response: TenantReply | StreamChunk;
  "bridge/state": BridgeState;
  "bridge/info": BridgeInfoPayload;
  "bridge/metrics": MetricsSnapshot;
  "bridge/response": AdminReply;
}

/** The text published on a topic of this kind. */
export function json<K extends keyof TopicPayloads>(_kind: K, payload: TopicPayloads[K]): string {
  return JSON.stringify(payload);
}
