import test from "ava";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AdapterRegistry } from "../../src/adapters/registry.js";
import { RequestError } from "../../src/scheduler/types.js";

test("directory scan, config entries, admin register/remove persisted", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-reg-"));
  writeFileSync(join(dir, "pirate.gguf"), "x");
  writeFileSync(join(dir, "notes.txt"), "x");
  mkdirSync(join(dir, "peft-poet"));
  writeFileSync(join(dir, "peft-poet", "adapter_config.json"), "{}");
  const extra = join(dir, "extra.gguf");
  writeFileSync(extra, "x");
  const opts = { entries: { chef: "/models/chef.gguf" }, directory: dir, stateFile: join(dir, "state", "adapters.json") };
  const reg = new AdapterRegistry(opts);
  await reg.load();
  t.deepEqual(reg.list().map((e) => `${e.name}:${e.source}`), ["chef:config", "extra:directory", "peft-poet:directory", "pirate:directory"]);
  await reg.register("mine", extra);
  await t.throwsAsync(reg.register("nope", join(dir, "notes.txt")), { message: /not an adapter/ });
  await t.throwsAsync(reg.register("bad/name", extra), { message: /invalid adapter name/ });
  await t.throwsAsync(reg.register("auto", extra), { message: /"auto" is reserved/ });
  t.true(await reg.remove("pirate"));
  t.false(await reg.remove("pirate"));

  const again = new AdapterRegistry(opts);
  await again.load();
  t.is(again.resolve("mine"), extra);
  t.false(again.has("pirate"));
  t.is(again.resolve("chef"), "/models/chef.gguf");
});

test("the index keeps path, size, hash, rank, modules, bytes; a changed or corrupt file is refused with ADAPTER_INVALID", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-reg-"));
  for (const n of ["a", "b", "c"]) writeFileSync(join(dir, `${n}.gguf`), `contents of ${n}`);
  const opts = { entries: {}, directory: dir, stateFile: join(dir, "state", "adapters.json"), indexFile: join(dir, "state", "index.json") };
  const reg = new AdapterRegistry(opts);
  await reg.load();
  for (const n of ["a", "b", "c"]) await reg.verify(n);
  reg.describe("a", { slot: 0, rank: 4, alpha: 8, factor: 2, bytes: 1234, modules: ["q", "v"] });
  await reg.flush();
  const index = JSON.parse(readFileSync(opts.indexFile, "utf8"));
  t.like(index.adapters.a, { path: join(dir, "a.gguf"), size: 13, rank: 4, modules: ["q", "v"], bytes: 1234 });
  t.is(index.adapters.a.sha256, createHash("sha256").update("contents of a").digest("hex"));

  // b: rewritten (size and time change); c: corrupted in place with its size and time kept.
  writeFileSync(join(dir, "b.gguf"), "new contents of b");
  const cStat = statSync(join(dir, "c.gguf"));
  writeFileSync(join(dir, "c.gguf"), "CONTENTS OF c");
  utimesSync(join(dir, "c.gguf"), cStat.atime, cStat.mtime);
  const again = new AdapterRegistry(opts);
  await again.load();
  t.is(again.entry("a")!.rank, 4, "what the engine found is kept across restarts");
  t.regex(again.problem("b") ?? "", /changed since it was registered/);
  t.is(again.problem("c"), null, "same size and time: only the hash can tell");
  await again.verify("a");
  const b = await t.throwsAsync(again.verify("b"), { instanceOf: RequestError });
  t.is((b as RequestError).code, "ADAPTER_INVALID");
  t.regex(b!.message, /"b".*b\.gguf/);
  const c = await t.throwsAsync(again.verify("c"), { instanceOf: RequestError });
  t.is((c as RequestError).code, "ADAPTER_INVALID");
  t.regex(c!.message, /contents changed/);
  await again.flush();
  const third = new AdapterRegistry(opts);
  await third.load();
  t.truthy(third.problem("b"), "a changed file stays refused after a restart");
  // Registering it again accepts the new file.
  await third.register("b", join(dir, "b.gguf"));
  t.is(third.problem("b"), null);
  await third.verify("b");
});

test("a missing file is listed with its problem", async (t) => {
  const reg = new AdapterRegistry({ entries: { gone: "/nonexistent/gone.gguf" }, directory: null, stateFile: null });
  await reg.load();
  t.true(reg.has("gone"));
  t.regex(reg.problem("gone") ?? "", /unreadable/);
});
