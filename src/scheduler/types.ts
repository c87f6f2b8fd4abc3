// The scheduler's contract with the daemon: jobs in, results (or coded errors) out through a sink.
import type { SamplingParams } from "../engine/types.js";

export type ErrorCode =
  | "BAD_REQUEST"
  | "PROMPT_TOO_LONG"
  | "ADAPTER_NOT_FOUND"
  | "ADAPTER_FORBIDDEN"
  | "ADAPTER_INVALID" // a registered adapter file changed or became unreadable
  | "OVERLOADED"
  | "SHUTTING_DOWN"
  | "INTERRUPTED" // the board running the request died and no other board could finish it
  | "INTERNAL";

export class RequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "RequestError";
  }
}

export interface Job {
  id: string; // unique key, e.g. `${tenant}/${transaction}`
  tenant: string;
  promptTokens: number[]; // already tokenized (BOS included as the model wants)
  adapter: string | null; // registered adapter name, null = base model
  maxTokens: number;
  sampling: SamplingParams;
  stop: string[]; // stop strings (not included in the text)
  timeoutMs: number;
}

export interface JobResult {
  text: string;
  tokens: number[];
  promptTokens: number;
  completionTokens: number;
  finishReason: "stop" | "length" | "cancelled" | "timeout";
  timings: { queue_ms: number; ttft_ms: number; total_ms: number };
}

export interface JobSink {
  onDelta?(text: string, seq: number): void; // streamed text pieces, complete UTF-8 only, seq = 0,1,2...
  onDone(result: JobResult): void;
  onError(code: ErrorCode, message: string): void;
}

export interface JobHandle {
  cancel(): void;
}

/** Where an adapter is: in an engine slot, in the warm tier (a slot image), or only in its file. */
export type AdapterTier = "hot" | "warm" | "cold";

export interface AdapterSlots {
  /** Pin `name` in a LoRA pool slot, loading it if not resident. Resolves {slot, scale}, or null when every slot is
   *  pinned by running sequences (the job waits in the queue, the rest keep running). Rejects with
   *  RequestError("ADAPTER_NOT_FOUND") for an unknown name. */
  acquire(name: string): Promise<{ slot: number; scale: number } | null>;
  release(name: string): void;
  /** Start moving `name` up (into a slot, off the engine thread) because a request for it was queued; never throws. */
  prefetch?(name: string): void;
  /** Where `name` is now, null when it is not registered; synchronous and cheap (routers and admission call it often). */
  tier?(name: string): AdapterTier | null;
}

export interface SchedulerLimits {
  maxBatchTokens: number;
  maxSequences: number;
  prefillChunk: number;
  maxQueue: number;
  perTenantInFlight: number;
  perTenantQueue: number;
  /** Cache-aware admission (admission.ts): how many times a request may be passed over for ones whose adapters are resident. */
  maxPassOver?: number;
}

export interface StepLogEntry {
  step: number;
  tokens: number;
  decodeTokens: number;
  prefillTokens: number;
  sequences: number;
  adapters: (string | null)[]; // distinct adapters in this step
  ms: number; // the engine's compute time
  waitMs: number; // from handing the batch to the engine to seeing its result in JS (compute + hand-over latency)
  gapMs: number; // the engine idle before this step while the loop worked on the previous one (0 after a sleep)
}

export interface SchedulerStats {
  queueDepth: number;
  active: number;
  tokensPerSecond: number;
  steps: number;
  completed: number;
  maxDistinctAdaptersInStep: number;
  /** Sums over every step so far: where a step's wall time went (milliseconds) and what it carried. */
  totals: { engineMs: number; waitMs: number; gapMs: number; sequences: number; decodeTokens: number; prefillTokens: number };
}
