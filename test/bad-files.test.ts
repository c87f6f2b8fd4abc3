// Broken model files give a clear error, never a crash: through the CLI (exit code 1, one
// line naming the problem) and through the JS API (a rejected promise with the message).
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { NativeModel } from "../src/engine/model.js";
import { packageRoot } from "../src/engine/native.js";
import { writeSyntheticModel } from "../src/gguf/synthetic.js";

const run = promisify(execFile);
const cli = join(packageRoot(), "dist", "src", "cli.js");
const dir = mkdtempSync(join(tmpdir(), "edgelora-bad-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Offset just past a tensor's name in the tensor-info table: u32 n_dims, u64 dims[], u32 type. */
function tensorInfoAt(buf: Buffer, name: string): number {
  const needle = Buffer.concat([Buffer.alloc(8), Buffer.from(name)]);
  needle.writeBigUInt64LE(BigInt(name.length), 0);
  const at = buf.indexOf(needle);
  if (at < 0) throw new Error(`test setup: tensor ${name} not found`);
  return at + needle.length;
}

// Each case: how to break a valid file, and a pattern the error message must match.
const CASES: { name: string; corrupt: (b: Buffer) => Buffer; message: RegExp; code?: string }[] = [
  { name: "truncated", corrupt: (b) => b.subarray(0, Math.floor(b.length * 0.6)), message: /out of bounds|exceeds? the file|end of file|truncated/i },
  {
    name: "wrong magic",
    corrupt: (b) => Buffer.concat([Buffer.from("GGUX"), b.subarray(4)]),
    message: /magic|not a GGUF/i,
  },
  {
    name: "unknown tensor type",
    corrupt: (b) => {
      const c = Buffer.from(b);
      const p = tensorInfoAt(c, "blk.0.attn_q.weight");
      const nDims = c.readUInt32LE(p);
      c.writeUInt32LE(99, p + 4 + 8 * nDims);
      return c;
    },
    message: /type/i,
    code: "UNSUPPORTED",
  },
  {
    name: "types llama.cpp has and this engine does not (iq4_xs, iq2_xs): each named with its tensors",
    corrupt: (b) => {
      const c = Buffer.from(b);
      for (const [name, type] of [["blk.0.attn_q.weight", 23], ["blk.0.ffn_down.weight", 17], ["blk.1.ffn_down.weight", 17]] as const) {
        const p = tensorInfoAt(c, name);
        c.writeUInt32LE(type, p + 4 + 8 * c.readUInt32LE(p));
      }
      return c;
    },
    message: /tensor 'blk\.0\.attn_q\.weight' has type iq4_xs \(id 23\); tensor 'blk\.0\.ffn_down\.weight' and 1 more have type iq2_xs \(id 17\), which this engine cannot read \(supported: f32, f16, .*q4_0/,
    code: "UNSUPPORTED",
  },
  {
    name: "an architecture this engine does not run (mamba)",
    corrupt: (b) => {
      const key = Buffer.from("general.architecture");
      const at = b.indexOf(Buffer.concat([key, Buffer.from([8, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0])]));
      if (at < 0) throw new Error("test setup: general.architecture not found");
      const c = Buffer.from(b);
      c.write("mamba", at + key.length + 12);
      return c;
    },
    message: /architecture 'mamba' is not supported \(supported: llama, qwen2, qwen3, phi3, gemma3\)/,
    code: "UNSUPPORTED",
  },
  {
    name: "shape mismatch",
    corrupt: (b) => {
      const c = Buffer.from(b);
      const p = tensorInfoAt(c, "blk.0.attn_q.weight");
      const n1 = c.readBigUInt64LE(p + 4 + 8);
      c.writeBigUInt64LE(n1 / 2n, p + 4 + 8); // half the rows: smaller, so still inside the file
      return c;
    },
    message: /blk\.0\.attn_q\.weight.*shape|shape.*blk\.0\.attn_q\.weight/i,
  },
];

let good: Buffer;
test.before(async () => {
  const path = join(dir, "good.gguf");
  await writeSyntheticModel({ arch: "llama", type: "f32", out: path, seed: 3 });
  good = readFileSync(path);
});

test.serial("the uncorrupted file loads (the cases below start from a valid model)", async (t) => {
  const path = join(dir, "good.gguf");
  const m = await NativeModel.load(path);
  t.is(m.info.arch, "llama");
  m.dispose();
});

// File names say nothing of the case, so a message cannot match by quoting its path.
for (const [i, c] of CASES.entries()) {
  test.serial(`${c.name}: the JS API rejects with a message naming the problem`, async (t) => {
    const path = join(dir, `bad-${i}.gguf`);
    writeFileSync(path, c.corrupt(good));
    const err = await t.throwsAsync(NativeModel.load(path));
    t.regex(err!.message, c.message);
    t.is((err as Error & { code?: string }).code, c.code ?? "BAD_FILE");
  });

  test.serial(`${c.name}: the CLI exits 1 with one line on stderr`, async (t) => {
    const path = join(dir, `bad-${i}-cli.gguf`);
    writeFileSync(path, c.corrupt(good));
    const err = await t.throwsAsync<Error & { code: number; stderr: string }>(run(process.execPath, [cli, "info", "--model", path]));
    t.is(err!.code, 1);
    const lines = err!.stderr.trim().split("\n");
    t.is(lines.length, 1, err!.stderr);
    t.regex(lines[0], /^edgelora: error: /);
    t.regex(lines[0], c.message);
  });
}
