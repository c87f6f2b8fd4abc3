import test from "ava";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AdapterRegistry } from "../../src/adapters/registry.js";

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
