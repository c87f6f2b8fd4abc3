// The same trace served by llama.cpp (node-llama-cpp, a devDependency) the ways a user of it would, since it has
// no per-sequence adapter: "contexts" keeps one context per adapter, up to a limit, disposing the least recently
// used idle one to make room; "switch" re-creates a lane's one context whenever the adapter changes. `lanes`
// requests generate at once (one context each, `threadsPerContext` threads each): on a 2-core board two lanes of
// one thread, as more threads than cores collapses llama.cpp's speed. Requests are taken in arrival order.
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { createRequire } from "node:module";
import { summarize, type RequestRecord } from "./metrics.js";
import type { DriveOptions, DriveResult } from "./mqtt-driver.js";
import { LLAMA_OPTIONS, loraContextOptions } from "./llama-options.js";
import { measureProcessTree } from "./proc-usage.js";
import { promptText, type Trace, type TraceRequest } from "./trace.js";

type NodeLlamaCpp = typeof import("node-llama-cpp");
type LlamaModel = import("node-llama-cpp").LlamaModel;
type LlamaContext = import("node-llama-cpp").LlamaContext;
type Token = import("node-llama-cpp").Token;

export type LlamaMode = "contexts" | "switch";
export const LLAMA_MODES: readonly LlamaMode[] = ["contexts", "switch"];

export interface LlamaTarget {
  modelPath: string;
  adapterPath: (index: number) => string;
  mode: LlamaMode;
  maxContexts: number; // "contexts" mode: contexts kept at most
  lanes: number;
  threadsPerContext: number;
  contextSize: number; // tokens per context (prompt + completion)
  temperature: number;
}

interface Held {
  adapter: number;
  context: LlamaContext;
  busy: boolean;
  lastUsed: number;
}

/** node-llama-cpp is a devDependency: an installed package that lacks it gets a clear message. */
async function loadNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  try {
    const entry = createRequire(import.meta.url).resolve("node-llama-cpp");
    return (await import(pathToFileURL(entry).href)) as NodeLlamaCpp;
  } catch (err) {
    throw new Error(`the llama.cpp baseline needs the node-llama-cpp package (npm i -D node-llama-cpp@3.21.1): ${err instanceof Error ? err.message : String(err)}`);
  }
}

export async function driveLlama(trace: Trace, target: LlamaTarget, opts: DriveOptions): Promise<DriveResult & { contextsCreated: number }> {
  const { getLlama } = await loadNodeLlamaCpp();
  const llama = await getLlama(LLAMA_OPTIONS);
  const model = await llama.loadModel({ modelPath: target.modelPath });
  const held: Held[] = [];
  let contextsCreated = 0;
  try {
    const create = async (adapter: number): Promise<LlamaContext> => {
      const filePath = target.adapterPath(adapter);
      if (!existsSync(filePath)) throw new Error(`adapter file not found: ${filePath}`);
      contextsCreated++;
      return model.createContext(loraContextOptions({
        filePath, contextSize: target.contextSize, batchSize: Math.min(512, target.contextSize), threads: target.threadsPerContext,
      }));
    };
    const records = trace.requests.map<RequestRecord>((r) => ({
      id: r.id, tenant: r.tenant, adapter: r.adapter, arrivalMs: r.atS * 1000, sentMs: NaN, firstTokenMs: null, doneMs: null,
      promptTokens: null, completionTokens: 0, error: null,
    }));
    const queue: number[] = []; // arrived, not started (indices into the trace)
    let arrived = 0;
    let done = 0;
    let errors = 0;
    let t0 = 0;
    let ended = false;
    let wake: (() => void)[] = [];
    const notify = () => {
      const w = wake;
      wake = [];
      w.forEach((f) => f());
    };
    const idle = () => new Promise<void>((resolve) => wake.push(resolve));

    /** Contexts mode: claims (busy) a context for `adapter` that no other lane is using, or null when the lane
     *  must wait. The claim is made before any await, so two lanes never pick the same context. */
    const claimContext = async (adapter: number): Promise<Held | null> => {
      const own = held.find((h) => h.adapter === adapter);
      if (own) {
        if (own.busy) return null;
        own.busy = true;
        return own;
      }
      let victim: Held | null = null;
      if (held.length >= target.maxContexts) {
        const idleOnes = held.filter((h) => !h.busy);
        if (idleOnes.length === 0) return null;
        victim = idleOnes.reduce((a, b) => (b.lastUsed < a.lastUsed ? b : a));
        held.splice(held.indexOf(victim), 1);
      }
      const h = { adapter, context: null as unknown as LlamaContext, busy: true, lastUsed: 0 };
      held.push(h);
      try {
        if (victim) await victim.context.dispose();
        h.context = await create(adapter);
      } catch (err) {
        held.splice(held.indexOf(h), 1);
        throw err;
      }
      return h;
    };

    /** Switch mode: the lane's own context, re-created when the adapter changes. */
    const switchContext = async (adapter: number, mine: Held | null): Promise<Held> => {
      if (mine && mine.adapter === adapter) return mine;
      if (mine) {
        held.splice(held.indexOf(mine), 1);
        await mine.context.dispose();
      }
      const h: Held = { adapter, context: await create(adapter), busy: false, lastUsed: 0 };
      held.push(h);
      return h;
    };

    const serve = async (r: TraceRequest, rec: RequestRecord, h: Held) => {
      const seq = h.context.getSequence();
      try {
        const bos = model.tokens.bos;
        const prompt = [...(bos === null ? [] : [bos]), ...model.tokenize(promptText(r))] as Token[];
        rec.promptTokens = prompt.length;
        rec.sentMs = performance.now() - t0;
        let n = 0;
        for await (const token of seq.evaluate(prompt, { temperature: target.temperature })) {
          if (ended) {
            rec.completionTokens = n; // the run is over: the request stays unfinished
            return;
          }
          rec.firstTokenMs ??= performance.now() - t0;
          if (model.isEogToken(token)) break;
          if (++n >= r.outputTokens) break;
        }
        rec.completionTokens = n;
        rec.doneMs = performance.now() - t0;
        done++;
      } catch {
        if (!ended) {
          rec.error = "INTERNAL";
          errors++;
          done++;
        }
      } finally {
        seq.dispose();
      }
    };

    const lane = async () => {
      let mine: Held | null = null; // switch mode: this lane's context
      while (!ended) {
        let index = -1;
        let h: Held | null = null;
        try {
          if (target.mode === "switch") {
            if (queue.length > 0) {
              index = queue.shift()!;
              h = mine = await switchContext(trace.requests[index].adapter, mine);
            }
          } else {
            // The first queued request whose adapter's context is free (or can be made).
            for (let i = 0; i < queue.length && !h; i++) {
              index = queue[i];
              h = await claimContext(trace.requests[index].adapter);
              if (h) queue.splice(queue.indexOf(index), 1);
            }
          }
        } catch {
          // The context could not be made (a bad adapter file): that request fails, the lane goes on.
          if (target.mode === "contexts") queue.splice(queue.indexOf(index), 1);
          if (target.mode === "switch") mine = null;
          records[index].error = "INTERNAL";
          errors++;
          done++;
          continue;
        }
        if (!h) {
          await idle();
          continue;
        }
        h.busy = true;
        h.lastUsed = performance.now();
        await serve(trace.requests[index], records[index], h);
        h.busy = false;
        notify();
      }
    };

    const stopUsage = measureProcessTree(process.pid);
    t0 = performance.now();
    const timers = trace.requests.map((r, i) =>
      setTimeout(() => {
        queue.push(i);
        arrived++;
        notify();
      }, Math.ceil(r.atS * 1000)),
    );
    const progress = setInterval(() => opts.onProgress?.({ total: records.length, sent: arrived, done, errors, elapsedS: (performance.now() - t0) / 1000 }), 250);
    const lanes = Array.from({ length: target.lanes }, lane);
    const lastArrivalMs = Math.max(0, ...records.map((r) => r.arrivalMs));
    const deadline = performance.now() + lastArrivalMs + opts.drainS * 1000;
    while (done < records.length && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const endMs = performance.now() - t0;
    const usage = stopUsage();
    ended = true;
    timers.forEach(clearTimeout);
    clearInterval(progress);
    opts.onProgress?.({ total: records.length, sent: arrived, done, errors, elapsedS: endMs / 1000 });
    notify();
    // Lanes still generating stop at their next token and record how many they had.
    for (const r of records) if (r.doneMs === null && r.error === null) r.error = "UNFINISHED";
    await Promise.all(lanes);
    const summary = summarize(records, { sloMs: opts.sloMs, durationS: trace.params.durationS, endMs, usage });
    return { records, summary, contextsCreated };
  } finally {
    for (const h of held) await h.context.dispose();
    await model.dispose();
    await llama.dispose();
  }
}
