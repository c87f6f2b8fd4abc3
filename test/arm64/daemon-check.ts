// Drives a running `edgelora serve` on the demo config from outside, as a user would: run by
// scripts/test-arm64.sh (host Node) against the daemon started as arm64 under qemu, from the
// checkout and from a Pi-style install of the packed tarball.
// Usage: node dist/test/arm64/daemon-check.js <command> [args...]   (the command starts the daemon
// on the demo config; its JSON log on stdout names the broker port)
// Checks: tenant alice is answered over the embedded broker; alice may not read bob's replies and
// bob may not publish to alice's request topic (the broker refuses both); SIGTERM exits 0.
import { spawn } from "node:child_process";
import { connectAsync } from "mqtt";

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  process.stderr.write("usage: daemon-check <command> [args...]\n");
  process.exit(2);
}
const START_TIMEOUT_MS = 300_000; // emulated start: writing the demo model, scrypt, loading

let failed = 0;
let passed = 0;
function check(ok: boolean, what: string): void {
  if (ok) passed++;
  else failed++;
  process.stdout.write(`${ok ? "ok" : "FAILED"} - ${what}\n`);
}

const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
let log = "";
proc.stderr.on("data", (d: Buffer) => (log += d.toString()));

const port = await new Promise<number>((resolve, reject) => {
  let port = 0;
  let buf = "";
  proc.stdout.on("data", (d: Buffer) => {
    buf += d.toString();
    log += d.toString();
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let msg: { msg?: string; port?: number };
      try {
        msg = JSON.parse(line);
      } catch {
        continue; // not a log line
      }
      if (msg.msg === "embedded MQTT broker listening") port = msg.port!;
      if (msg.msg === "edgelora serving") resolve(port);
    }
  });
  void exited.then((code) => reject(new Error(`the daemon exited with ${code} before serving:\n${log}`)));
  setTimeout(() => reject(new Error(`the daemon did not serve within ${START_TIMEOUT_MS / 1000} s:\n${log}`)), START_TIMEOUT_MS).unref();
}).catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  proc.kill("SIGKILL");
  process.exit(1);
});

const url = `mqtt://127.0.0.1:${port}`;
try {
  const alice = await connectAsync(url, { username: "alice", password: "alice", reconnectPeriod: 0 });
  const reply = new Promise<{ status?: string; text?: unknown; usage?: { completion_tokens?: number } }>((resolve) =>
    alice.on("message", (_t, payload) => resolve(JSON.parse(payload.toString()))),
  );
  await alice.subscribeAsync("edgelora/alice/response", { qos: 1 });
  await alice.publishAsync("edgelora/alice/request", JSON.stringify({ prompt: "Once upon a time", max_tokens: 8, temperature: 0, transaction: "arm64" }), { qos: 1 });
  const r = await Promise.race([reply, new Promise<null>((res) => setTimeout(() => res(null), 120_000))]);
  check(r?.status === "ok" && typeof r.text === "string" && (r.usage?.completion_tokens ?? 0) > 0, `alice's request is answered: ${JSON.stringify(r)}`);

  let granted: number[] = [];
  try {
    granted = (await alice.subscribeAsync("edgelora/bob/response", { qos: 1 })).map((g) => g.qos);
  } catch (err) {
    granted = (err as { packet?: { granted?: number[] } }).packet?.granted ?? [];
  }
  check(granted.length === 1 && granted[0] === 128, `alice's subscription to bob's replies is refused (granted ${JSON.stringify(granted)})`);

  const bob = await connectAsync(url, { username: "bob", password: "bob", reconnectPeriod: 0 });
  const closed = new Promise<boolean>((resolve) => {
    bob.once("close", () => resolve(true));
    setTimeout(() => resolve(false), 30_000);
  });
  bob.publish("edgelora/alice/request", "sneaky", { qos: 0 });
  check(await closed, "bob's publish to alice's request topic is refused (the broker drops bob)");
  await alice.endAsync();
  bob.end(true);
} catch (err) {
  check(false, `MQTT session: ${(err as Error).message}`);
}

proc.kill("SIGTERM");
const code = await Promise.race([exited, new Promise<string>((res) => setTimeout(() => res("timeout"), 60_000))]);
check(code === 0, `SIGTERM: the daemon exits 0 (got ${code})`);
if (code === "timeout") proc.kill("SIGKILL");
if (failed > 0) process.stderr.write(`daemon log:\n${log}\n`);
process.stdout.write(`daemon-check: ${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 ? 1 : 0);
