// Model load progress: the engine reports the bytes of weights read into place (non-decreasing,
// ending at the total), the log reporter writes a line at most every 10% and 2 s with MB/s and
// ends with the load time, the CLI prints a summary line on a non-TTY stderr, and a bad progress
// argument is refused.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { loadModelReporting, logReporter } from "../src/engine/load-progress.js";
import { NativeModel } from "../src/engine/model.js";
import { loadAddon, packageRoot } from "../src/engine/native.js";
import { writeSyntheticModel } from "../src/gguf/synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "edgelora-load-progress-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const model = join(dir, "m.gguf");
test.before(() => writeSyntheticModel({ arch: "llama", type: "f32", out: model, nEmbd: 256, nFf: 512, nHead: 4, nHeadKv: 2, nLayer: 6, seed: 2 }));

test.serial("the engine reports bytes done, non-decreasing, up to the total of the weights", async (t) => {
  const calls: [number, number][] = [];
  const done: [number, number][] = [];
  const m = await loadModelReporting(model, {
    progress: (d, total) => calls.push([d, total]),
    done: (ok) => done.push([ok ? 1 : 0, calls.length]),
  });
  try {
    t.true(calls.length >= 2, `${calls.length} calls`);
    const total = calls[0][1];
    t.true(calls.every(([, tt]) => tt === total));
    t.true(calls.every(([d], i) => d <= total && (i === 0 || d >= calls[i - 1][0])));
    t.deepEqual(calls[calls.length - 1], [total, total]);
    // Every matrix is copied: all the weights but token_embd (read in place) and the norms (kept as floats).
    const notCopied = 256 * 857 * 4 + (2 * 6 + 1) * 256 * 4;
    t.true(total >= m.info.weightBytes - notCopied && total <= m.info.weightBytes, `total ${total}, weights ${m.info.weightBytes}`);
    t.deepEqual(done, [[1, calls.length]]);
  } finally {
    m.dispose();
  }
  // Without a callback the load is as before.
  (await NativeModel.load(model)).dispose();
});

test.serial("the promise settles after the last progress call, however slow the callback", async (t) => {
  // A slow JS thread leaves calls queued when the load itself ends: they must still come first.
  const calls: [number, number][] = [];
  const m = await loadAddon().loadModel(model, (d, total) => {
    const until = Date.now() + 3;
    while (Date.now() < until);
    calls.push([d, total]);
  });
  const settledWith = calls.length;
  await new Promise((r) => setTimeout(r, 50));
  try {
    t.true(settledWith >= 2, `${settledWith} calls before the promise settled`);
    t.is(calls.length, settledWith, "no call after the promise settled");
    const [d, total] = calls[calls.length - 1];
    t.is(d, total, "the final call (all bytes placed) came before the promise settled");
  } finally {
    m.dispose();
  }
});

test.serial("a failed load reports done(false) and rejects; a progress argument that is not a function is refused", async (t) => {
  const events: string[] = [];
  await t.throwsAsync(loadModelReporting(join(dir, "m.gguf.missing"), { progress: () => events.push("p"), done: (ok) => events.push(`done ${ok}`) }), { message: /ENOENT/ });
  await t.throwsAsync(loadModelReporting(join(packageRoot(), "package.json"), { progress: () => events.push("p"), done: (ok) => events.push(`done ${ok}`) }));
  t.deepEqual(events, ["done false"]);
  t.throws(() => (loadAddon().loadModel as (p: string, f: unknown) => unknown)(model, 5), { message: /progress must be a function/ });
});

test("log reporter: a line per 10% but not within 2 s of the last, MB/s, then the load time", (t) => {
  let now = 1000;
  const lines: [Record<string, unknown>, string][] = [];
  const r = logReporter("m.gguf", (f, m) => lines.push([f, m]), () => now);
  const MB = 1024 * 1024;
  for (let i = 1; i <= 100; i++) {
    now += 100; // 10 s in all
    r.progress(i * MB, 100 * MB);
  }
  r.done(true);
  const progress = lines.filter(([, m]) => m === "model load progress");
  t.true(progress.length >= 3 && progress.length <= 5, JSON.stringify(progress));
  for (const [f] of progress) t.true((f.mb_per_s as number) === 10, JSON.stringify(f)); // 1 MB per 100 ms
  t.deepEqual(lines[lines.length - 1], [{ model: "m.gguf", weights_mb: 100, load_ms: 10000, mb_per_s: 10 }, "model weights read"]);
  const failed: unknown[] = [];
  const r2 = logReporter("m.gguf", (f) => failed.push(f), () => now);
  r2.done(false);
  t.deepEqual(failed, []);
});

test.serial("CLI: info ends its stderr with the load summary when stderr is not a terminal", async (t) => {
  const { stderr } = await promisify(execFile)(process.execPath, [join(packageRoot(), "dist", "src", "cli.js"), "info", "--model", model]);
  t.regex(stderr, /^loaded m\.gguf: [\d.]+ MB of weights in [\d.]+ s \([\d-]+ MB\/s\)\n$/);
});
