// `edgelora bench workload` as a user runs it: a trace written and replayed, llama.cpp serving it on stories260K,
// and bad options refused with a message.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import test from "ava";
import { readTrace } from "../../src/bench/trace.js";
import { packageRoot } from "../../src/engine/native.js";
import { writeSyntheticAdapter } from "../../src/lora/synthetic.js";
import { storiesPath } from "../helpers/engine.js";

const run = promisify(execFile);
const cli = join(packageRoot(), "dist", "src", "cli.js");
const model = storiesPath();

test("bad options end with a usage error, not a stack trace", async (t) => {
  for (const [args, message] of [
    [["--input", "10-5"], /LO-HI/],
    [["--rate", "0"], /rate/],
    [["--server", "llama"], /--model and --adapter-dir/],
  ] as const) {
    const err = await t.throwsAsync(run(process.execPath, [cli, "bench", "workload", "--no-progress", "--duration", "0.1", ...args]));
    t.regex((err as unknown as { stderr: string }).stderr, message);
    t.notRegex((err as unknown as { stderr: string }).stderr, /\n\s+at /);
  }
});

if (!model) {
  test("bench workload on llama.cpp (skipped: ../shared/models/stories260K.gguf not found)", (t) => t.pass());
} else {
  test("a generated trace is written, replayed on llama.cpp, summarized and kept as JSON", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "edgelora-bench-cli-"));
    for (let i = 0; i < 2; i++) await writeSyntheticAdapter({ model: model!, out: join(dir, `a${i}.gguf`), format: "gguf", rank: 4, seed: 40 + i });
    const trace = join(dir, "trace.jsonl");
    const json = join(dir, "run.json");
    const { stdout } = await run(process.execPath, [
      cli, "bench", "workload", "--server", "llama", "--model", model!, "--adapter-dir", dir, "--adapters", "2", "--tenants", "2",
      "--rate", "20", "--duration", "0.3", "--input", "8-12", "--output", "2-4", "--context-size", "64", "--write-trace", trace,
      "--json", json, "--no-progress",
    ]);
    const written = readTrace(trace);
    t.deepEqual(written.params.outputTokens, [2, 4]);
    const out = JSON.parse(readFileSync(json, "utf8")) as { summary: { requests: number; completed: number }; records: unknown[] };
    t.is(out.summary.requests, written.requests.length);
    t.is(out.summary.completed, written.requests.length);
    t.is(out.records.length, written.requests.length);
    t.regex(stdout, new RegExp(`${written.requests.length}/${written.requests.length} requests answered`));
    t.regex(stdout, /SLO +100\.0%/);
  });
}
