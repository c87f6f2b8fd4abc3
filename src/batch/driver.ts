// Offline batch inference with continuous batching: every step carries one decode token of each
// running sequence plus prompt chunks of newly started ones, within a token budget; a sequence
// that ends frees its seq id (and its adapter pin) for the next job, in input order. Each token
// names its own adapter slot and scale, so one step mixes sequences of different adapters.
import type { SamplingParams, StepEngine, StepToken } from "../engine/types.js";
import type { AdapterSlots } from "../scheduler/types.js";
import { adapterKey, type AdapterRef } from "./adapter-file.js";

export interface BatchJob {
  promptTokens: number[]; // BOS included as the model wants; never empty
  adapter: AdapterRef | null;
  maxTokens: number;
  sampling: SamplingParams;
}

export interface BatchOutput {
  tokens: number[]; // generated ids; an end-of-generation token ends the job and is not included
  logprobs: number[]; // ln p(tokens[i]) under the model (with the job's adapter), before sampling
  text: string;
  finishReason: "stop" | "length";
}

export interface BatchLimits {
  maxSequences: number; // running at once (seq ids 0..maxSequences-1)
  maxBatchTokens: number; // tokens per step (>= maxSequences)
  prefillChunk: number; // prompt tokens of one sequence per step
}

export interface BatchStats {
  steps: number;
  promptTokens: number;
  generatedTokens: number;
  seconds: number;
  maxSequencesInStep: number;
  maxAdaptersInStep: number; // distinct (adapter, scale) pairs in one step; the base model not counted
}

/** A job that failed (its adapter did not load): index into the jobs given to runBatch. */
export class BatchJobError extends Error {
  constructor(
    readonly job: number,
    message: string,
  ) {
    super(message);
    this.name = "BatchJobError";
  }
}

interface Run {
  job: number;
  seq: number;
  slot: number;
  fed: number; // prompt tokens sent to the engine
  pending: number | null; // last sampled token, fed with the next step
  out: BatchOutput;
}

export async function runBatch(
  engine: StepEngine,
  jobs: BatchJob[],
  adapters: AdapterSlots,
  limits: BatchLimits,
): Promise<{ outputs: BatchOutput[]; stats: BatchStats }> {
  const { nCtx } = engine.limits;
  if (limits.maxSequences < 1 || limits.prefillChunk < 1 || limits.maxBatchTokens < limits.maxSequences)
    throw new RangeError("batch limits: need maxSequences >= 1, prefillChunk >= 1, maxBatchTokens >= maxSequences");
  jobs.forEach((j, i) => {
    if (j.promptTokens.length === 0 || j.promptTokens.length > nCtx)
      throw new BatchJobError(i, `prompt has ${j.promptTokens.length} tokens, the context holds 1 to ${nCtx}`);
  });
  const outputs: BatchOutput[] = new Array(jobs.length);
  const stats: BatchStats = { steps: 0, promptTokens: 0, generatedTokens: 0, seconds: 0, maxSequencesInStep: 0, maxAdaptersInStep: 0 };
  const freeSeqs = Array.from({ length: limits.maxSequences }, (_, i) => limits.maxSequences - 1 - i);
  const running = new Map<number, Run>();
  let next = 0;
  const t0 = performance.now();

  const finish = (run: Run, reason: BatchOutput["finishReason"]) => {
    run.out.finishReason = reason;
    run.out.text = engine.detokenize(run.out.tokens);
    outputs[run.job] = run.out;
    running.delete(run.seq);
    engine.clearSeq(run.seq);
    const adapter = jobs[run.job].adapter;
    if (adapter) adapters.release(adapter.path);
    freeSeqs.push(run.seq);
  };

  try {
    while (next < jobs.length || running.size > 0) {
      // Admit in input order while seq ids last.
      while (freeSeqs.length > 0 && next < jobs.length) {
        const job = jobs[next];
        let slot = -1;
        if (job.adapter) {
          let lease;
          try {
            lease = await adapters.acquire(job.adapter.path);
          } catch (e) {
            throw new BatchJobError(next, (e as Error).message);
          }
          if (lease === null) {
            if (running.size === 0) throw new BatchJobError(next, "no LoRA slot can hold this adapter");
            break; // wait for a running sequence to release its slot
          }
          slot = lease.slot;
        }
        const seq = freeSeqs.pop()!;
        engine.setSampler(seq, job.sampling);
        running.set(seq, { job: next, seq, slot, fed: 0, pending: null, out: { tokens: [], logprobs: [], text: "", finishReason: "length" } });
        next++;
      }

      const batch: StepToken[] = [];
      const token = (run: Run, t: number, pos: number, sample: boolean): StepToken => ({
        seq: run.seq, token: t, pos, adapterSlot: run.slot, adapterScale: jobs[run.job].adapter?.scale ?? 0, sample,
      });
      for (const run of running.values()) {
        if (run.pending === null) continue;
        batch.push(token(run, run.pending, jobs[run.job].promptTokens.length + run.out.tokens.length - 1, true));
        run.pending = null;
      }
      for (const run of running.values()) {
        const prompt = jobs[run.job].promptTokens;
        const n = Math.min(prompt.length - run.fed, limits.prefillChunk, limits.maxBatchTokens - batch.length);
        for (let i = 0; i < n; i++, run.fed++) batch.push(token(run, prompt[run.fed], run.fed, run.fed === prompt.length - 1));
        stats.promptTokens += Math.max(0, n);
      }

      const members = [...new Set(batch.map((t) => t.seq))].map((s) => running.get(s)!);
      const keys = new Set(members.flatMap((r) => (jobs[r.job].adapter ? [adapterKey(jobs[r.job].adapter!)] : [])));
      stats.steps++;
      stats.maxSequencesInStep = Math.max(stats.maxSequencesInStep, members.length);
      stats.maxAdaptersInStep = Math.max(stats.maxAdaptersInStep, keys.size);

      const result = await engine.step(batch);
      for (const s of result.sampled) {
        const run = running.get(s.seq)!;
        if (engine.isEog(s.token)) {
          finish(run, "stop");
          continue;
        }
        run.out.tokens.push(s.token);
        run.out.logprobs.push(s.logprob);
        stats.generatedTokens++;
        const length = jobs[run.job].promptTokens.length + run.out.tokens.length;
        // The last sampled token would be fed at position length - 1: past the context it has nowhere to go.
        if (run.out.tokens.length >= jobs[run.job].maxTokens || length > nCtx) finish(run, "length");
        else run.pending = s.token;
      }
    }
  } finally {
    for (const run of [...running.values()]) {
      engine.clearSeq(run.seq);
      const adapter = jobs[run.job].adapter;
      if (adapter) adapters.release(adapter.path);
    }
  }
  stats.seconds = (performance.now() - t0) / 1000;
  return { outputs, stats };
}
