// The adapter tiers through the daemon on the real engine (stories260K), when things go wrong or
// overlap: a read-only cold directory, corrupt and changed adapter files (ADAPTER_INVALID, the
// daemon keeps serving), an adapter removed while its request runs, and prefetch overlapping the
// load of a queued request's adapter with another sequence's decode steps.
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectAsync, type MqttClient } from "mqtt";
import type { Config } from "../../src/config/index.js";
import { openNativeEngine } from "../../src/daemon/serve-command.js";
import type { StepEngine } from "../../src/engine/types.js";
import { writeSyntheticAdapter } from "../../src/lora/synthetic.js";
import { hashPassword } from "../../src/mqtt/password.js";
import { storiesPath } from "../helpers/engine.js";
import { localConfig } from "../helpers/local-config.js";
import { Controller } from "../../src/daemon/controller.js";
import { quietLogger } from "../helpers/broker.js";
import { FAST, Inbox, type Reply } from "../e2e/harness.js";

const model = storiesPath();
const N = 6;

async function writeAdapters(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < N; i++) await writeSyntheticAdapter({ model: model!, out: join(dir, `y${i}.gguf`), format: "gguf", rank: 4, alpha: 8, seed: 900 + i, strength: 2 });
}

async function config(adapterDir: string, edit?: (c: Config) => void): Promise<Config> {
  const c = localConfig({ model: model!, dataDir: mkdtempSync(join(tmpdir(), "edgelora-faults-data-")), threads: 1, nCtx: 256, loraSlots: 4, loraMaxRank: 8 });
  c.daemon.shutdown_grace_ms = 200;
  c.adapters.directory = adapterDir;
  c.tenants = { u: { password_hash: await hashPassword("u", FAST), adapters: ["*"], default_adapter: null } };
  c.admin = { username: "admin", password_hash: await hashPassword("admin", FAST) };
  edit?.(c);
  return c;
}

interface Running {
  controller: Controller;
  ask(adapter: string, transaction: string, maxTokens?: number): Promise<Reply>;
  send(adapter: string, transaction: string, maxTokens?: number): Promise<void>;
  inbox: Inbox;
  admin(op: string, body: unknown): Promise<{ status: string; data?: unknown; error?: { code: string } }>;
  stop(): Promise<void>;
}

async function start(c: Config, wrap?: (e: StepEngine) => StepEngine): Promise<Running> {
  const controller = new Controller({
    config: c, logger: quietLogger, modelPath: c.model.path!, env: {},
    openEngine: async (path) => {
      const e = await openNativeEngine(path, c);
      return wrap ? wrap(e) : e;
    },
  });
  await controller.start();
  const url = `mqtt://127.0.0.1:${controller.brokerPort}`;
  const client = await connectAsync(url, { username: "u", password: "u", reconnectPeriod: 0 });
  const admin = await connectAsync(url, { username: "admin", password: "admin", reconnectPeriod: 0 });
  const inbox = new Inbox(client);
  await client.subscribeAsync("edgelora/u/response", { qos: 1 });
  await admin.subscribeAsync("edgelora/bridge/response/#", { qos: 1 });
  const send = async (adapter: string, transaction: string, maxTokens = 8) =>
    void (await client.publishAsync("edgelora/u/request", JSON.stringify({ prompt: "Once upon a time", adapter, transaction, max_tokens: maxTokens, temperature: 0 }), { qos: 1 }));
  return {
    controller,
    inbox,
    send,
    ask: async (adapter, transaction, maxTokens) => {
      await send(adapter, transaction, maxTokens);
      return inbox.reply(transaction);
    },
    admin: (op, body) =>
      new Promise((resolve) => {
        const on = (topic: string, payload: Buffer) => {
          if (topic !== `edgelora/bridge/response/${op}`) return;
          (admin as MqttClient).off("message", on);
          resolve(JSON.parse(payload.toString()));
        };
        admin.on("message", on);
        void admin.publishAsync(`edgelora/bridge/request/${op}`, JSON.stringify(body), { qos: 1 });
      }),
    async stop() {
      await client.endAsync(true);
      await admin.endAsync(true);
      await controller.stop();
    },
  };
}

test.serial("a read-only cold directory: the daemon serves, and never writes there", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const src = mkdtempSync(join(tmpdir(), "edgelora-ro-src-"));
  await writeAdapters(src);
  const ro = mkdtempSync(join(tmpdir(), "edgelora-ro-"));
  try {
    execFileSync("mount", ["--bind", src, ro]);
    execFileSync("mount", ["-o", "remount,ro,bind", ro]);
  } catch (err) {
    rmSync(ro, { recursive: true, force: true });
    return t.pass(`SKIP: cannot bind-mount a read-only directory here (${(err as Error).message.split("\n")[0]})`);
  }
  try {
    t.throws(() => writeFileSync(join(ro, "probe"), "x"), { code: "EROFS" });
    const d = await start(await config(ro, (c) => (c.model.lora_slots = 2)));
    try {
      for (let round = 0; round < 2; round++)
        for (let i = 0; i < N; i++) t.is((await d.ask(`y${i}`, `ro-${round}-${i}`)).status, "ok");
      const st = d.controller.context.slots!.stats();
      t.true(st.hits.warm > 0, "the second round came from warm");
    } finally {
      await d.stop();
    }
  } finally {
    execFileSync("umount", [ro]);
    rmSync(ro, { recursive: true, force: true });
  }
});

test.serial("corrupt and changed adapter files get ADAPTER_INVALID naming them; the daemon keeps serving", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const dir = mkdtempSync(join(tmpdir(), "edgelora-bad-"));
  await writeAdapters(dir);
  writeFileSync(join(dir, "broken.gguf"), "GGUF but not really"); // corrupt from the start
  const c = await config(dir);
  let d = await start(c);
  try {
    const first = await d.ask("y1", "y1-first");
    t.is(first.status, "ok");
    const broken = await d.ask("broken", "broken");
    t.is(broken.error?.code, "ADAPTER_INVALID");
    t.regex(broken.error!.message, /broken\.gguf/);
    // y2 is rewritten while the daemon runs (before its first use): refused at its load.
    writeFileSync(join(dir, "y2.gguf"), readFileSync(join(dir, "y3.gguf")).subarray(0, 5000));
    const changed = await d.ask("y2", "y2-changed");
    t.is(changed.error?.code, "ADAPTER_INVALID");
    t.regex(changed.error!.message, /"y2".*changed since it was registered/);
    t.is((await d.ask("y1", "y1-again")).text, first.text, "others keep serving");
  } finally {
    await d.stop();
  }
  // y4 corrupted in place, its size and time kept: only the content hash recorded at its first
  // load can tell, after a restart.
  d = await start(c);
  try {
    t.is((await d.ask("y4", "y4-first")).status, "ok");
  } finally {
    await d.stop();
  }
  const y4 = join(dir, "y4.gguf");
  const st = statSync(y4);
  const bytes = readFileSync(y4);
  bytes[bytes.length - 10] ^= 0xff;
  writeFileSync(y4, bytes);
  utimesSync(y4, st.atime, st.mtime);
  d = await start(c);
  try {
    const r = await d.ask("y4", "y4-corrupt");
    t.is(r.error?.code, "ADAPTER_INVALID");
    t.regex(r.error!.message, /contents changed/);
    t.is((await d.ask("y1", "y1-after")).status, "ok");
    const listed = (await d.admin("adapters/list", { limit: 1000 })).data as { adapters: { name: string; problem: string | null }[] };
    t.truthy(listed.adapters.find((a) => a.name === "y2")!.problem, "the changed file is listed with its problem");
  } finally {
    await d.stop();
  }
});

test.serial("an adapter removed while its request runs: the request finishes, later ones get ADAPTER_NOT_FOUND", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const dir = mkdtempSync(join(tmpdir(), "edgelora-rm-"));
  await writeAdapters(dir);
  const d = await start(await config(dir));
  try {
    const alone = await d.ask("y0", "alone", 150);
    let removal: Promise<{ status: string }> | null = null;
    let removedBeforeDone = false;
    const off = d.controller.context.scheduler!.onStep(() => {
      removal ??= d.admin("adapters/remove", { name: "y0" }).then((r) => {
        removedBeforeDone = !d.inbox.has("running");
        return r;
      });
    });
    const running = await d.ask("y0", "running", 150);
    off();
    t.is((await removal!).status, "ok");
    t.true(removedBeforeDone, "the remove was answered while the request ran");
    t.is(running.status, "ok");
    t.is(running.text, alone.text, "finished on the adapter it started with");
    t.is((await d.ask("y0", "after")).error?.code, "ADAPTER_NOT_FOUND");
    t.is((await d.ask("y1", "other")).status, "ok");
  } finally {
    await d.stop();
  }
});

/** The step log around a queued request's adapter load, with one sequence (y0) decoding meanwhile. */
async function queuedLoad(dir: string, prefetch: boolean) {
  const events: { at: number; what: string }[] = [];
  // Loads from the file take 80 ms more, as from a slow SD card.
  const slow = (e: StepEngine): StepEngine => {
    const load = e.loadAdapter.bind(e);
    e.loadAdapter = async (slot, path) => {
      events.push({ at: performance.now(), what: `load-start ${path}` });
      await new Promise((r) => setTimeout(r, 80));
      const info = await load(slot, path);
      events.push({ at: performance.now(), what: `load-end ${path}` });
      return info;
    };
    return e;
  };
  const d = await start(await config(dir, (c) => ((c.scheduler.max_sequences = 1), (c.adapters.prefetch = prefetch))), slow);
  try {
    d.controller.context.scheduler!.onStep((s) => events.push({ at: performance.now(), what: `step ${s.adapters.join(",")} decode=${s.decodeTokens}` }));
    const warmup = await d.ask("y0", "warmup", 2);
    if (warmup.status !== "ok") throw new Error(`warm-up failed: ${JSON.stringify(warmup.error)}`);
    events.length = 0;
    await d.send("y0", "long", 200);
    while (!events.some((e) => e.what.startsWith("step y0") && !e.what.endsWith("decode=0"))) await new Promise((r) => setTimeout(r, 1));
    await d.send("y5", "queued", 4); // no free sequence: it waits in the queue while y0 decodes
    const [long, queued] = await Promise.all([d.inbox.reply("long"), d.inbox.reply("queued")]);
    const start5 = events.findIndex((e) => e.what.startsWith("load-start") && e.what.includes("y5"));
    const end5 = events.findIndex((e) => e.what.startsWith("load-end") && e.what.includes("y5"));
    const during = events.slice(start5, end5).filter((e) => e.what.startsWith("step y0") && !e.what.endsWith("decode=0")).length;
    const firstY5Step = events.findIndex((e) => e.what.startsWith("step") && e.what.includes("y5"));
    return { long, queued, start5, end5, during, firstY5Step, log: events.map((e) => e.what).join("\n"), stats: d.controller.context.slots!.stats() };
  } finally {
    await d.stop();
  }
}

test.serial("prefetch: a queued request's adapter loads while another sequence decodes", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const dir = mkdtempSync(join(tmpdir(), "edgelora-pf-"));
  await writeAdapters(dir);
  const on = await queuedLoad(dir, true);
  t.is(on.long.status, "ok");
  t.is(on.queued.status, "ok");
  t.true(on.start5 >= 0 && on.end5 > on.start5, on.log);
  t.true(on.during >= 2, `y0 decode steps ran during y5's load (${on.during})`);
  t.true(on.firstY5Step > on.end5, "y5 started after its load completed");
  t.true(on.stats.prefetch.hits >= 1);
  // Without prefetch the load waits for a free sequence: no decode step overlaps it.
  const off = await queuedLoad(dir, false);
  t.is(off.queued.status, "ok");
  t.is(off.during, 0, off.log);
  t.is(off.stats.prefetch.started, 0);
});
