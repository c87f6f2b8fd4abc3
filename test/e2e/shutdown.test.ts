// SIGTERM to `edgelora serve` in a child process: the running request is answered (in full within
// the grace period, or cut short and marked cancelled when the grace runs out), the retained state
// turns offline, and the process exits 0.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import test from "ava";
import { connectAsync, type MqttClient } from "mqtt";
import { until } from "../helpers/broker.js";
import { e2eAssets, e2eConfig, Inbox, writeConfigFile } from "./harness.js";

const CLI = fileURLToPath(new URL("../../src/cli.js", import.meta.url));

interface Child {
  proc: ChildProcess;
  port: number;
  exit: Promise<number | null>;
}

/** Starts the CLI and waits for "edgelora serving"; the broker port comes from the JSON log. */
async function serve(configFile: string): Promise<Child> {
  const proc = spawn(process.execPath, [CLI, "serve", "--config", configFile], { stdio: ["ignore", "pipe", "pipe"] });
  const exit = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  let out = "";
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let port = 0;
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      out += d.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = JSON.parse(buf.slice(0, nl)) as { msg: string; port?: number };
        buf = buf.slice(nl + 1);
        if (line.msg === "embedded MQTT broker listening") port = line.port!;
        if (line.msg === "edgelora serving") resolve(port);
      }
    });
    void exit.then((code) => reject(new Error(`edgelora serve exited with ${code}: ${out}`)));
    setTimeout(() => reject(new Error(`edgelora serve did not start within 60 s: ${out}`)), 60_000).unref();
  });
  return { proc, port, exit };
}

async function sigtermDuringRequest(graceMs: number) {
  const config = await e2eConfig(await e2eAssets(), (c) => {
    c.daemon.shutdown_grace_ms = graceMs;
    c.daemon.log_level = "info";
    c.model.n_ctx = 1024;
    c.scheduler.max_tokens_limit = 1000;
  });
  const child = await serve(writeConfigFile(config));
  const clients: MqttClient[] = [];
  try {
    const url = `mqtt://127.0.0.1:${child.port}`;
    const admin = await connectAsync(url, { username: "admin", password: "admin", reconnectPeriod: 0 });
    const tenant = await connectAsync(url, { username: "t2", password: "t2", reconnectPeriod: 0 });
    clients.push(admin, tenant);
    const states: unknown[] = [];
    admin.on("message", (_topic, payload) => states.push(JSON.parse(payload.toString())));
    await admin.subscribeAsync("edgelora/bridge/state", { qos: 1 });
    const inbox = new Inbox(tenant);
    await tenant.subscribeAsync("edgelora/t2/response", { qos: 1 });
    const request = { prompt: "Once upon a time", transaction: "long", stream: true, max_tokens: 1000, temperature: 0 };
    await tenant.publishAsync("edgelora/t2/request", JSON.stringify(request), { qos: 1 });
    await inbox.firstChunk("long");
    child.proc.kill("SIGTERM");
    const reply = await inbox.reply("long", graceMs + 60_000);
    const code = await Promise.race([child.exit, new Promise<string>((r) => setTimeout(() => r("still running"), graceMs + 20_000).unref())]);
    // The offline state and the exit reach this process by different routes: the exit may come first.
    await until(() => states.length >= 2, "a second state message (offline)");
    return { reply, code, states };
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    if (child.proc.exitCode === null) child.proc.kill("SIGKILL");
  }
}

test("SIGTERM: the running request finishes within the grace period, offline is published, exit 0", async (t) => {
  // A grace a loaded machine cannot outlast (1000 tokens took 3 s here alone, far more with 16 test
  // files at once): the request ends when it is done, so the grace is never waited out.
  const { reply, code, states } = await sigtermDuringRequest(120_000);
  t.is(reply.status, "ok");
  t.not(reply.finish_reason, "cancelled");
  t.is(reply.text, reply.chunks.join(""));
  t.deepEqual(states, [{ state: "online" }, { state: "offline" }]);
  t.is(code, 0);
});

test("SIGTERM with no grace: the running request is cut short and answered as cancelled, exit 0", async (t) => {
  const { reply, code, states } = await sigtermDuringRequest(0);
  t.is(reply.status, "ok");
  t.is(reply.finish_reason, "cancelled");
  t.true(reply.usage!.completion_tokens < 1000);
  t.deepEqual(states, [{ state: "online" }, { state: "offline" }]);
  t.is(code, 0);
});
