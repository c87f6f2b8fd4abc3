// State of one job: a Ticket from submit to finish, and a Sequence once it holds an engine seq id (and its
// adapter slot) and feeds tokens to the engine.
import type { StepToken } from "../engine/types.js";
import { TextStream } from "./text.js";
import type { Job, JobResult, JobSink } from "./types.js";

export interface Ticket {
  readonly job: Job;
  readonly sink: JobSink;
  readonly submittedAt: number;
  readonly deadline: number;
  cancelled: boolean;
  /** Slot epoch at which acquiring the adapter last found every slot pinned; null if it never did. */
  slotWaitEpoch: number | null;
}

export interface AdapterLease {
  slot: number; // -1 = base model
  scale: number;
}

export class Sequence {
  private fed = 0; // prompt tokens already sent to the engine
  private pending: number | null = null; // last sampled token, fed with the next step
  readonly tokens: number[] = []; // completion tokens (EOG excluded)
  readonly text: TextStream;
  private deltas = 0;
  firstTokenAt = -1;

  constructor(
    readonly ticket: Ticket,
    readonly seq: number,
    readonly lease: AdapterLease,
    readonly admittedAt: number,
  ) {
    this.text = new TextStream(ticket.job.stop);
  }

  get job(): Job {
    return this.ticket.job;
  }

  /** Sampled a token that is still to be fed: the sequence takes part in every step with one decode token. */
  get decoding(): boolean {
    return this.pending !== null;
  }

  get promptLeft(): number {
    return this.job.promptTokens.length - this.fed;
  }

  decodeToken(): StepToken {
    const token = this.pending!;
    this.pending = null;
    return this.token(token, this.job.promptTokens.length + this.tokens.length - 1, true);
  }

  /** The next `n` prompt tokens; only the prompt's last token asks the engine for a sample. */
  prefillTokens(n: number): StepToken[] {
    const prompt = this.job.promptTokens;
    const out: StepToken[] = [];
    for (let i = 0; i < n; i++, this.fed++) out.push(this.token(prompt[this.fed], this.fed, this.fed === prompt.length - 1));
    return out;
  }

  /** Records a generated token that will be fed back in the next step. */
  accept(token: number): void {
    this.tokens.push(token);
    this.pending = token;
  }

  /** Streams a text piece with the next delta number. */
  emit(piece: string): void {
    if (piece.length > 0) this.ticket.sink.onDelta?.(piece, this.deltas++);
  }

  result(finishReason: JobResult["finishReason"], now: number): JobResult {
    const { submittedAt } = this.ticket;
    return {
      text: this.text.value,
      tokens: [...this.tokens],
      promptTokens: this.job.promptTokens.length,
      completionTokens: this.tokens.length,
      finishReason,
      timings: {
        queue_ms: this.admittedAt - submittedAt,
        ttft_ms: this.firstTokenAt < 0 ? now - submittedAt : this.firstTokenAt - submittedAt,
        total_ms: now - submittedAt,
      },
    };
  }

  private token(token: number, pos: number, sample: boolean): StepToken {
    return { seq: this.seq, token, pos, adapterSlot: this.lease.slot, adapterScale: this.lease.scale, sample };
  }
}

/** The result of a job that ended before it got a sequence (cancelled or timed out in the queue). */
export function unstartedResult(ticket: Ticket, finishReason: JobResult["finishReason"], now: number): JobResult {
  const waited = now - ticket.submittedAt;
  return {
    text: "",
    tokens: [],
    promptTokens: ticket.job.promptTokens.length,
    completionTokens: 0,
    finishReason,
    timings: { queue_ms: waited, ttft_ms: waited, total_ms: waited },
  };
}
