// `edgelora pull` against a loopback HTTP server with Range support: a model by URL and by the
// hf: short form (redirect, SHA-256 from the hub's headers), an adapter GGUF and a PEFT folder,
// and the failures: 404, a dropped connection (resumed with Range, not restarted), a wrong
// checksum (given or sent), a full disk (kept .part, resumed by the next pull), a model the
// engine refuses. Never a half file under the final name. `serve` finds a pulled model by name.
import test from "ava";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { packageRoot } from "../src/engine/native.js";
import { writeSyntheticModel } from "../src/gguf/synthetic.js";
import { writeSyntheticAdapter } from "../src/lora/synthetic.js";
import { DownloadError } from "../src/pull/download.js";
import { resolveModelRef } from "../src/pull/model-ref.js";
import { pull } from "../src/pull/pull.js";
import { planPull } from "../src/pull/source.js";
import { FileServer } from "./helpers/file-server.js";

const run = promisify(execFile);
const cli = join(packageRoot(), "dist", "src", "cli.js");
const dir = mkdtempSync(join(tmpdir(), "edgelora-pull-"));
const server = new FileServer();
let model: Buffer;
let sha: string;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

test.before(async () => {
  const m = join(dir, "src-model.gguf");
  await writeSyntheticModel({ arch: "llama", type: "f32", out: m, nEmbd: 128, nFf: 256, nHead: 4, nHeadKv: 2, nLayer: 2, seed: 4 });
  model = readFileSync(m);
  sha = sha256(model);
  await server.start();
});
test.after.always(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function edgelora(dataDir: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [cli, "pull", "--data-dir", dataDir, ...args], { env: { ...process.env, HF_ENDPOINT: server.url("/hub") } });
    return { code: 0, ...r };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

function freshDataDir(name: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return d;
}

test.serial("a model by URL: saved under models/, SHA-256 from the server's ETag verified, checked by the engine", async (t) => {
  server.files.set("/files/tiny.gguf", { bytes: model, headers: { etag: `"${sha}"` } });
  const data = freshDataDir("url");
  const r = await edgelora(data, server.url("/files/tiny.gguf"));
  t.is(r.code, 0, r.stderr);
  const path = join(data, "models", "tiny.gguf");
  t.is(r.stdout.trim(), path);
  t.deepEqual(readFileSync(path), model);
  t.regex(r.stderr, new RegExp(`sha256 ${sha} \\(verified against the server\\)`));
  t.regex(r.stderr, /llama model .*parameters \(f32 x\d+\)/);
  t.deepEqual(readdirSync(join(data, "models")), ["tiny.gguf"]);
  // Already there: not fetched again.
  const before = server.requests.length;
  t.regex((await edgelora(data, server.url("/files/tiny.gguf"))).stderr, /already there/);
  t.is(server.requests.length, before);
});

test.serial("hf:<owner>/<repo>/<file>: the hub's resolve URL, its redirect followed, the SHA-256 of X-Linked-ETag checked", async (t) => {
  server.files.set("/hub/someone/tiny-llama/resolve/main/sub/tiny-q.gguf", { bytes: new Uint8Array(), redirectTo: "/cdn/blob1", headers: { "x-linked-etag": `"${sha}"` } });
  server.files.set("/cdn/blob1", { bytes: model });
  const data = freshDataDir("hf");
  const r = await edgelora(data, "hf:someone/tiny-llama/sub/tiny-q.gguf");
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readFileSync(join(data, "models", "tiny-q.gguf")), model);
  t.regex(r.stderr, /verified against the server/);
  // A wrong X-Linked-ETag is a checksum error and leaves nothing.
  server.files.set("/hub/someone/tiny-llama/resolve/v2/tiny-q.gguf", { bytes: new Uint8Array(), redirectTo: "/cdn/blob1", headers: { "x-linked-etag": `"${"0".repeat(64)}"` } });
  const bad = await edgelora(freshDataDir("hf-bad"), "hf:someone/tiny-llama/tiny-q.gguf", "--revision", "v2");
  t.is(bad.code, 1);
  t.regex(bad.stderr, /SHA-256 mismatch: got [0-9a-f]{64}, expected 0{64}; the download was deleted/);
  t.deepEqual(readdirSync(join(dir, "hf-bad", "models")), []);
});

test.serial("404: a clear error and no file", async (t) => {
  const data = freshDataDir("404");
  const r = await edgelora(data, server.url("/files/missing.gguf"));
  t.is(r.code, 1);
  t.is(r.stderr.trim().split("\n").length, 1, r.stderr);
  t.regex(r.stderr, /missing\.gguf: HTTP 404 Not Found/);
  t.deepEqual(readdirSync(join(data, "models")), []);
});

test.serial("a dropped connection is resumed with Range from where it stopped, not restarted", async (t) => {
  const cut = Math.floor(model.length * 0.4);
  server.files.set("/files/drop.gguf", { bytes: model, dropAfterBytes: cut, headers: { etag: `"${sha}"` } });
  const data = freshDataDir("drop");
  const r = await edgelora(data, server.url("/files/drop.gguf"));
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readFileSync(join(data, "models", "drop.gguf")), model);
  const seen = server.requests.filter((q) => q.path === "/files/drop.gguf");
  t.is(seen.length, 2);
  t.deepEqual([seen[0].range, seen[0].bytesSent], [null, cut]);
  // From the bytes it had written: the cut, less what had not reached its reader when the connection
  // dropped, which is lost with the connection (23-59 KB of it in loaded runs).
  const from = Number(/^bytes=(\d+)-$/.exec(seen[1].range ?? "")?.[1]);
  t.true(from > 0 && from <= cut, `resumed with ${seen[1].range} (cut at ${cut})`);
  t.is(seen[1].status, 206);
  t.is(seen[1].bytesSent, model.length - from, "the rest sent, once");
});

test.serial("a wrong --sha256: an error, the download deleted, nothing under the final name", async (t) => {
  server.files.set("/files/plain.gguf", { bytes: model });
  const data = freshDataDir("sha");
  const r = await edgelora(data, server.url("/files/plain.gguf"), "--sha256", "ab".repeat(32));
  t.is(r.code, 1);
  t.regex(r.stderr, /SHA-256 mismatch/);
  t.deepEqual(readdirSync(join(data, "models")), []);
  const ok = await edgelora(data, server.url("/files/plain.gguf"), "--sha256", sha);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stderr, /verified against the option/);
  t.regex((await edgelora(data, server.url("/files/plain.gguf"), "--sha256", "xyz", "--force")).stderr, /--sha256 must be 64 hex digits/);
});

test.serial("a full disk: a clear error, the .part kept, and the next pull resumes it", async (t) => {
  server.files.set("/files/big.gguf", { bytes: model, headers: { etag: `"${sha}"` } });
  const data = freshDataDir("disk");
  const plan = planPull(server.url("/files/big.gguf"), { kind: "model" });
  const limit = 100_000;
  let written = 0;
  const err = await t.throwsAsync(pull(plan, {
    dataDir: data,
    openPart: async () => ({
      write: async (chunk) => {
        // Like a disk that fills up: the bytes that fit are written, then ENOSPC.
        const fits = chunk.subarray(0, Math.max(0, limit - written));
        appendFileSync(join(data, "models", "big.gguf.part"), fits);
        written += fits.length;
        if (fits.length < chunk.length) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      },
      close: async () => {},
    }),
  }));
  t.true(err instanceof DownloadError && err.code === "DISK");
  t.regex(err!.message, /no space left on the device for .*big\.gguf after \d+ bytes of \d+; free some space and pull again to resume/);
  t.false(existsSync(join(data, "models", "big.gguf")));
  const kept = readFileSync(join(data, "models", "big.gguf.part")).length;
  t.is(kept, limit);
  const before = server.requests.length;
  const r = await edgelora(data, server.url("/files/big.gguf"));
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, new RegExp(`resumed from byte ${kept}`));
  t.is(server.requests[before].range, `bytes=${kept}-`);
  t.deepEqual(readFileSync(join(data, "models", "big.gguf")), model);
  t.deepEqual(readdirSync(join(data, "models")), ["big.gguf"]);
});

test.serial("adapters: a LoRA GGUF and a PEFT folder (both files, renamed into place together)", async (t) => {
  const m = join(dir, "src-model.gguf");
  const gguf = join(dir, "a.gguf");
  await writeSyntheticAdapter({ model: m, out: gguf, format: "gguf", rank: 4, seed: 1 });
  const peft = join(dir, "a-peft");
  await writeSyntheticAdapter({ model: m, out: peft, format: "peft", rank: 4, seed: 1 });
  server.files.set("/files/chef.gguf", { bytes: readFileSync(gguf) });
  server.files.set("/hub/someone/chef-lora/resolve/main/adapter_config.json", { bytes: readFileSync(join(peft, "adapter_config.json")) });
  server.files.set("/hub/someone/chef-lora/resolve/main/adapter_model.safetensors", { bytes: readFileSync(join(peft, "adapter_model.safetensors")), dropAfterBytes: 100 });
  const data = freshDataDir("adapters");
  const a = await edgelora(data, server.url("/files/chef.gguf"), "--adapter");
  t.is(a.code, 0, a.stderr);
  t.regex(a.stderr, /LoRA adapter GGUF for llama, 14 adapted projections/);
  const p = await edgelora(data, "hf:someone/chef-lora", "--adapter");
  t.is(p.code, 0, p.stderr);
  t.regex(p.stderr, /PEFT LoRA adapter, rank 4/);
  t.deepEqual(readdirSync(join(data, "adapters")).sort(), ["chef-lora", "chef.gguf"]);
  t.deepEqual(readdirSync(join(data, "adapters", "chef-lora")).sort(), ["adapter_config.json", "adapter_model.safetensors"]);
  // A model that is not a GGUF model is refused by the engine, named.
  const notModel = await edgelora(data, server.url("/files/chef.gguf"));
  t.is(notModel.code, 1);
  t.regex(notModel.stderr, /chef\.gguf was downloaded, but .*chef\.gguf is a LoRA adapter \(general\.type = adapter\), not a model/);
});

test("sources: hf: forms, names and refusals", (t) => {
  const hf = { hfEndpoint: "https://hub.example/" };
  t.deepEqual(planPull("hf:o/r/f.gguf", { kind: "model", ...hf }).files, [{ url: "https://hub.example/o/r/resolve/main/f.gguf", file: "f.gguf" }]);
  t.deepEqual(planPull("hf:o/r/d/f.gguf", { kind: "model", revision: "abc", name: "x.gguf", ...hf }).files, [{ url: "https://hub.example/o/r/resolve/abc/d/f.gguf", file: "x.gguf" }]);
  t.deepEqual(planPull("hf:o/r/sub", { kind: "adapter", ...hf }).files.map((f) => f.url), [
    "https://hub.example/o/r/resolve/main/sub/adapter_config.json", "https://hub.example/o/r/resolve/main/sub/adapter_model.safetensors",
  ]);
  t.is(planPull("https://x.example/a/b/", { kind: "adapter" }).name, "b");
  t.throws(() => planPull("hf:o/r/readme.md", { kind: "model" }), { message: /a model is one \.gguf file/ });
  t.throws(() => planPull("hf:o", { kind: "model" }), { message: /expected hf:<owner>\/<repo>\/<file>/ });
  t.throws(() => planPull("ftp://x/y.gguf", { kind: "model" }), { message: /only http\(s\) URLs and hf: sources/ });
  t.throws(() => planPull("https://x/y.gguf", { kind: "model", revision: "v1" }), { message: /--revision applies to hf: sources only/ });
  t.throws(() => planPull("https://x/y.gguf", { kind: "model", name: "../y.gguf" }), { message: /file name must end in \.gguf/ });
});

test("serve's model.path: a path, or the name of a pulled model", (t) => {
  const data = join(dir, "url");
  t.is(resolveModelRef("tiny", data), join(data, "models", "tiny.gguf"));
  t.is(resolveModelRef("tiny.gguf", data), join(data, "models", "tiny.gguf"));
  t.is(resolveModelRef("/opt/x.gguf", data), "/opt/x.gguf");
  t.is(resolveModelRef("nothing", data), "nothing");
});
