// Open-loop MQTT driver: replays a trace against a running daemon through any broker, one connection per
// tenant, each request published at its arrival time whether or not earlier ones were answered (a server
// that falls behind builds a queue, as with real devices). Streaming replies give the time to first token.
import { randomBytes } from "node:crypto";
import { connectAsync, type IClientOptions, type MqttClient } from "mqtt";
import { summarize, type RequestRecord, type Summary } from "./metrics.js";
import { measureProcessTree } from "./proc-usage.js";
import { promptText, type Trace, type TraceRequest } from "./trace.js";

export interface MqttTarget {
  url: string;
  baseTopic: string;
  tenants: { name: string; password?: string }[]; // trace tenant i -> tenants[i]
  adapterName: (index: number) => string | null; // null: the base model
  stream: boolean;
  temperature: number;
  clientOptions?: IClientOptions; // TLS and the like
}

export interface Progress {
  total: number;
  sent: number;
  done: number;
  errors: number;
  elapsedS: number;
}

export interface DriveOptions {
  sloMs: number;
  drainS: number; // after the last arrival, wait at most this long for answers
  serverPid?: number; // CPU and memory of this process tree are measured
  onProgress?: (p: Progress) => void;
}

export interface DriveResult {
  records: RequestRecord[];
  summary: Summary;
}

interface Reply {
  transaction?: string;
  type?: string;
  status?: string;
  error?: { code?: string };
  usage?: { prompt_tokens?: number; completion_tokens?: number };
  timings?: { ttft_ms?: number; total_ms?: number };
}

const PROGRESS_MS = 250;
const CANCEL_ANSWER_TIMEOUT_MS = 30_000; // a daemon that no longer answers

export async function driveMqtt(trace: Trace, target: MqttTarget, opts: DriveOptions): Promise<DriveResult> {
  if (target.tenants.length < trace.params.tenants) throw new Error(`the trace has ${trace.params.tenants} tenants, the target ${target.tenants.length}`);
  const run = randomBytes(4).toString("hex"); // transactions unique per run: the daemon de-duplicates them
  const clients = await Promise.all(
    target.tenants.slice(0, trace.params.tenants).map((t) =>
      connectAsync(target.url, { ...target.clientOptions, username: t.name, password: t.password, reconnectPeriod: 0, clean: true }),
    ),
  );
  try {
    const records = trace.requests.map<RequestRecord>((r) => ({
      id: r.id, tenant: r.tenant, adapter: r.adapter, arrivalMs: r.atS * 1000, sentMs: NaN, firstTokenMs: null, doneMs: null,
      promptTokens: null, completionTokens: 0, error: null,
    }));
    const byTransaction = new Map(records.map((r) => [`${run}-${r.id}`, r]));
    let t0 = 0;
    let done = 0;
    let errors = 0;
    let sent = 0;
    let allDone: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (allDone = resolve));
    // Unfinished requests whose cancel is not answered yet (a final message for the transaction).
    const awaitingCancel = new Set<string>();
    let cancelsAnswered: () => void = () => undefined;
    const onReply = (payload: Buffer) => {
      const now = performance.now() - t0;
      let m: Reply;
      try {
        m = JSON.parse(payload.toString()) as Reply;
      } catch {
        return;
      }
      const rec = m.transaction === undefined ? undefined : byTransaction.get(m.transaction);
      // The answer to our cancel of an unfinished request tells how many tokens it had generated.
      if (rec?.error === "UNFINISHED" && m.type !== "chunk") {
        if (m.status === "ok") rec.completionTokens = m.usage?.completion_tokens ?? 0;
        if (awaitingCancel.delete(m.transaction!) && awaitingCancel.size === 0) cancelsAnswered();
      }
      if (!rec || rec.doneMs !== null || rec.error !== null) return;
      if (m.type === "chunk") {
        rec.firstTokenMs ??= now;
        return;
      }
      if (m.status === "ok") {
        rec.doneMs = now;
        rec.promptTokens = m.usage?.prompt_tokens ?? null;
        rec.completionTokens = m.usage?.completion_tokens ?? 0;
        // Without streaming the daemon's own ttft_ms (from its receipt of the request) stands in.
        if (rec.firstTokenMs === null && m.timings?.ttft_ms !== undefined && m.timings.total_ms !== undefined) {
          rec.firstTokenMs = now - (m.timings.total_ms - m.timings.ttft_ms);
        }
      } else {
        rec.error = m.error?.code ?? "ERROR";
        errors++;
      }
      if (++done === records.length) allDone();
    };
    await Promise.all(
      clients.map(async (c, i) => {
        c.on("message", (_topic, payload) => onReply(payload));
        await c.subscribeAsync(`${target.baseTopic}/${target.tenants[i].name}/response`, { qos: 1 });
      }),
    );

    const publish = (r: TraceRequest, rec: RequestRecord) => {
      rec.sentMs = performance.now() - t0;
      sent++;
      const body = {
        prompt: promptText(r), adapter: target.adapterName(r.adapter), max_tokens: r.outputTokens, temperature: target.temperature,
        stream: target.stream, transaction: `${run}-${r.id}`,
      };
      clients[r.tenant].publishAsync(`${target.baseTopic}/${target.tenants[r.tenant].name}/request`, JSON.stringify(body), { qos: 1 }).catch(() => {
        if (rec.doneMs === null && rec.error === null) {
          rec.error = "PUBLISH_FAILED";
          errors++;
          if (++done === records.length) allDone();
        }
      });
    };

    const stopUsage = opts.serverPid === undefined ? () => undefined : measureProcessTree(opts.serverPid);
    t0 = performance.now();
    // Node timers have whole milliseconds and may fire up to about 1 ms before performance.now() says.
    const timers = trace.requests.map((r, i) => setTimeout(() => publish(r, records[i]), Math.ceil(r.atS * 1000)));
    const progress = setInterval(() => opts.onProgress?.({ total: records.length, sent, done, errors, elapsedS: (performance.now() - t0) / 1000 }), PROGRESS_MS);
    const lastArrivalMs = Math.max(0, ...records.map((r) => r.arrivalMs));
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([finished, new Promise<void>((resolve) => (deadline = setTimeout(resolve, lastArrivalMs + opts.drainS * 1000)))]);
    clearTimeout(deadline);
    clearInterval(progress);
    timers.forEach(clearTimeout);
    const endMs = performance.now() - t0;
    const usage = stopUsage();
    opts.onProgress?.({ total: records.length, sent, done, errors, elapsedS: endMs / 1000 });

    // Whatever is still running is cancelled, so the next run starts on an idle daemon.
    const unfinished = records.filter((r) => r.doneMs === null && r.error === null);
    for (const r of unfinished) r.error = "UNFINISHED";
    const cancelled = unfinished.filter((r) => !Number.isNaN(r.sentMs));
    for (const r of cancelled) awaitingCancel.add(`${run}-${r.id}`);
    const answered = new Promise<void>((resolve) => (cancelsAnswered = resolve));
    await Promise.all(
      cancelled.map((r) =>
        clients[r.tenant].publishAsync(`${target.baseTopic}/${target.tenants[r.tenant].name}/request`, JSON.stringify({ transaction: `${run}-${r.id}`, cancel: true }), { qos: 1 }).catch(() => undefined),
      ),
    );
    // Each cancel is answered (the request's final message with its token count, or an error when it
    // was no longer running): waited for, not a fixed time, which a loaded daemon can outlast.
    if (awaitingCancel.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([answered, new Promise<void>((resolve) => (timer = setTimeout(resolve, CANCEL_ANSWER_TIMEOUT_MS)))]);
      clearTimeout(timer);
    }
    return { records: records.map((r) => ({ ...r })), summary: summarize(records, { sloMs: opts.sloMs, durationS: trace.params.durationS, endMs, usage }) };
  } finally {
    await Promise.all(clients.map((c: MqttClient) => c.endAsync(true).catch(() => undefined)));
  }
}
