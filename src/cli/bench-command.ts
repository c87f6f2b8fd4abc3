// `edgelora bench workload`: replays the paper's workload (a seeded trace, or a JSONL trace file) against a
// running daemon over MQTT, or against llama.cpp in this process for comparison, shows progress, prints the
// summary and writes every request's figures as JSON.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { driveLlama, LLAMA_MODES, type LlamaMode } from "../bench/llama-driver.js";
import { driveMqtt, type DriveOptions, type DriveResult } from "../bench/mqtt-driver.js";
import { progressBar } from "../bench/progress.js";
import { formatSummary } from "../bench/report.js";
import { generateTrace, PAPER_TRACE, readTrace, writeTrace, type Trace } from "../bench/trace.js";
import { floatArg, intArg } from "./args.js";

interface WorkloadOptions {
  trace?: string;
  writeTrace?: string;
  adapters: number;
  alpha: number;
  rate: number;
  cv: number;
  duration: number;
  tenants: number;
  input: [number, number];
  output: [number, number];
  seed: number;
  server: "mqtt" | "llama";
  url: string;
  baseTopic: string;
  tenantPrefix: string;
  password?: string;
  adapterPrefix: string;
  daemonPid?: number;
  stream: boolean;
  temperature: number;
  sloMs: number;
  drain: number;
  model?: string;
  adapterDir?: string;
  llamaMode: LlamaMode;
  maxContexts: number;
  lanes: number;
  threads: number;
  contextSize: number;
  json?: string;
  progress: boolean;
}

function rangeArg(v: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(v.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < Number(m[1])) throw new InvalidArgumentError("must be LO-HI with 1 <= LO <= HI");
  return [Number(m[1]), Number(m[2])];
}

export function traceFromOptions(o: WorkloadOptions): Trace {
  if (o.trace) return readTrace(o.trace);
  return generateTrace({
    adapters: o.adapters, alpha: o.alpha, rate: o.rate, cv: o.cv, durationS: o.duration, tenants: o.tenants,
    inputTokens: o.input, outputTokens: o.output, seed: o.seed,
  });
}

async function runWorkload(o: WorkloadOptions): Promise<void> {
  const trace = traceFromOptions(o);
  if (o.writeTrace) writeTrace(o.writeTrace, trace);
  const bar = o.progress ? progressBar(o.server === "mqtt" ? "daemon" : `llama.cpp ${o.llamaMode}`) : null;
  const drive: DriveOptions = { sloMs: o.sloMs, drainS: o.drain, serverPid: o.daemonPid, onProgress: bar ? (p) => bar.update(p) : undefined };
  let result: DriveResult & { contextsCreated?: number };
  try {
    if (o.server === "mqtt") {
      result = await driveMqtt(
        trace,
        {
          url: o.url, baseTopic: o.baseTopic, stream: o.stream, temperature: o.temperature,
          tenants: Array.from({ length: trace.params.tenants }, (_, i) => ({ name: `${o.tenantPrefix}${i}`, password: o.password ?? `${o.tenantPrefix}${i}` })),
          adapterName: (i) => `${o.adapterPrefix}${i}`,
        },
        drive,
      );
    } else {
      if (!o.model || !o.adapterDir) throw new Error("--server llama needs --model and --adapter-dir");
      const dir = o.adapterDir;
      result = await driveLlama(
        trace,
        {
          modelPath: o.model, adapterPath: (i) => join(dir, `${o.adapterPrefix}${i}.gguf`), mode: o.llamaMode, maxContexts: o.maxContexts,
          lanes: o.lanes, threadsPerContext: o.threads, contextSize: o.contextSize, temperature: o.temperature,
        },
        drive,
      );
    }
  } finally {
    bar?.stop();
  }
  const label = o.server === "mqtt" ? `daemon at ${o.url}` : `llama.cpp (${o.llamaMode}, ${o.lanes} lanes x ${o.threads} thread)`;
  process.stdout.write(`${formatSummary(label, result.summary)}\n`);
  if (o.json) {
    writeFileSync(o.json, `${JSON.stringify({ server: o.server, label, trace: trace.params, summary: result.summary, contextsCreated: result.contextsCreated, records: result.records }, null, 1)}\n`);
  }
}

export function registerBenchCommand(program: Command): void {
  const bench = program.command("bench").description("benchmarks a user can run on their board");
  const p = PAPER_TRACE;
  bench
    .command("workload")
    .description("replay the EdgeLoRA paper's workload against a running daemon (MQTT, open loop) or llama.cpp")
    .option("--trace <file>", "replay this JSONL trace instead of generating one")
    .option("--write-trace <file>", "write the trace (JSONL) to replay it later")
    .option("--adapters <n>", "adapters in the trace (n)", intArg(1), p.adapters)
    .option("--alpha <a>", "popularity: adapter index floor(U^(1/alpha) * n)", floatArg(1e-3, 1e3), p.alpha)
    .option("--rate <r>", "requests per second, all tenants together", floatArg(1e-3, 1e4), 1)
    .option("--cv <cv>", "coefficient of variation of the Gamma inter-arrival times", floatArg(1e-2, 100), p.cv)
    .option("--duration <s>", "seconds of arrivals", floatArg(1e-3, 1e6), 60)
    .option("--tenants <n>", "tenants (one MQTT connection each), requests spread round robin", intArg(1), p.tenants)
    .option("--input <lo-hi>", "prompt tokens, uniform", rangeArg, p.inputTokens)
    .option("--output <lo-hi>", "completion tokens (max_tokens), uniform", rangeArg, p.outputTokens)
    .option("--seed <n>", "trace seed", intArg(0), 1)
    .addOption(new Option("--server <kind>", "mqtt: a running daemon; llama: llama.cpp in this process").choices(["mqtt", "llama"]).default("mqtt"))
    .option("--url <url>", "broker URL", "mqtt://127.0.0.1:1883")
    .option("--base-topic <t>", "the daemon's mqtt.base_topic", "edgelora")
    .option("--tenant-prefix <s>", "tenant i logs in as <prefix><i>", "w")
    .option("--password <p>", "every tenant's password (default: the tenant's name)")
    .option("--adapter-prefix <s>", "adapter i is named <prefix><i> (llama: the file <adapter-dir>/<prefix><i>.gguf)", "a")
    .option("--daemon-pid <pid>", "measure CPU time and peak RSS of this process and its children", intArg(1))
    .option("--no-stream", "final replies only (TTFT from the daemon's timings)")
    .option("--temperature <t>", "sampling temperature of every request", floatArg(0, 100), 0)
    .option("--slo-ms <ms>", "TTFT objective; errors count as misses", floatArg(0, 1e9), 6000)
    .option("--drain <s>", "after the last arrival, wait at most this long for answers", floatArg(0, 1e6), 120)
    .option("--model <path>", "llama: the GGUF base model")
    .option("--adapter-dir <dir>", "llama: folder of the adapter files")
    .addOption(new Option("--llama-mode <mode>", "llama: one context per adapter (LRU) or one context re-created per switch").choices([...LLAMA_MODES]).default("contexts"))
    .option("--max-contexts <n>", "llama contexts mode: contexts kept at most", intArg(1), 8)
    .option("--lanes <n>", "llama: requests generating at once", intArg(1), 2)
    .option("--threads <n>", "llama: threads per context", intArg(1), 1)
    .option("--context-size <n>", "llama: tokens per context", intArg(16), 512)
    .option("--json <file>", "write the summary and every request's figures")
    .option("--no-progress", "no progress bar")
    .action((o: WorkloadOptions) => runWorkload(o));
}
