// Exactly-once final replies across a SIGKILL at chosen points (README "Faults"): the daemon runs
// under strace, which kills it on entry to the Nth write to its request journal or outgoing store.
// 50 requests wait in the broker (persistent session) before it starts, so they arrive before its
// request handler subscribes and the journal's first 100 writes are their intake records (50 as the
// Bus holds them, then 50 as the handler takes them, each closing its held record in the same write);
// the first request is short, so the first reply is alone in its step. Each kill point is a state the
// random SIGKILL of restart.test.ts reaches only by luck:
//   journal write 102: the first reply's close (journal: reply written, close not)
//   store write 2:    its PUBREL (the broker holds the reply, PUBREC received, not delivered yet)
//   store write 3:    its removal (the broker completed it: PUBCOMP received)
// Then the daemon starts again: every request is answered exactly once.
import test from "ava";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import { MOSQUITTO_MISSING, useMosquitto } from "../helpers/mosquitto.js";
import { countingTenant, startChild, startChildToBeKilled, FinalCounter, type ChildDaemon } from "./child-daemon.js";
import { e2eAssets, e2eConfig, TENANTS, writeConfigFile } from "./harness.js";
import { sleep } from "../helpers/broker.js";
import { mosquittoReady, mosquittoWithUsers } from "./mosquitto-broker.js";

// strace's fault injection needs ptrace (absent or refused in some containers).
const STRACE = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=write"];
const straceWorks = spawnSync(STRACE[0], [...STRACE.slice(1), "true"], { stdio: "ignore" }).status === 0;
const ready = mosquittoReady && straceWorks;
if (!ready) test("SIGKILL at chosen writes", (t) => (t.log(mosquittoReady ? "strace missing or ptrace refused (apt-get install -y strace): skipped" : MOSQUITTO_MISSING), t.pass()));
const maybe = ready ? test.serial : test.serial.skip;

const points = [
  { file: "requests.journal", write: 102, state: "the first reply journaled, its close not" },
  { file: "outgoing.store", write: 2, state: "the first reply held by the broker, not released" },
  { file: "outgoing.store", write: 3, state: "the first reply completed by the broker, not removed from the store" },
];

for (const point of points) {
  maybe(`SIGKILL at ${point.file} write ${point.write} (${point.state}), then a restart: each request answered once`, async (t) => {
    const m = await mosquittoWithUsers(["edgelora", ...TENANTS]);
    const config = await e2eConfig(await e2eAssets(), (c) => {
      c.daemon.log_level = "info";
      useMosquitto(c, m, `edgelora-killpoint-${process.pid}`);
      c.mqtt.reconnect_ms = 200;
      c.scheduler.max_queue = 64;
    });
    const file = writeConfigFile(config);
    const tenants = TENANTS.slice(0, 5);
    const clients: MqttClient[] = [];
    let daemon: ChildDaemon | null = null;
    try {
      // A first run makes the daemon's persistent session; the requests then wait in it.
      daemon = await startChild(file);
      await daemon.stop();
      const counters: FinalCounter[] = [];
      const transactions: string[] = [];
      for (const [i, tenant] of tenants.entries()) {
        const { client: c, counter } = await countingTenant(m.url, tenant);
        clients.push(c);
        counters.push(counter);
        for (let k = 0; k < 10; k++) {
          const transaction = `${tenant}-${k}`;
          transactions.push(transaction);
          const maxTokens = i === 0 && k === 0 ? 8 : 120; // one reply finishes alone, well before the others
          await c.publishAsync(`edgelora/${tenant}/request`, JSON.stringify({ prompt: "Once upon a time", transaction, max_tokens: maxTokens, temperature: 0 }), { qos: 1 });
        }
      }
      const target = join(config.daemon.data_dir, point.file);
      const inject = ["-P", target, "-e", `inject=write:signal=KILL:when=${point.write}`];
      daemon = await startChildToBeKilled(file, [...STRACE, ...inject]);
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([daemon.exit, new Promise((resolve) => (timer = setTimeout(resolve, 60_000, "still running")))]);
      clearTimeout(timer);
      t.not(code, "still running", "killed at the chosen write");
      const answered = counters.reduce((n, c) => n + c.finals.size, 0);
      const journal = readFileSync(join(config.daemon.data_dir, "requests.journal"), "utf8").trim().split("\n");
      const last = JSON.parse(journal[journal.length - 1]) as { op: string; key: string };
      t.log(`killed with ${answered} of 50 answered; journal: ${journal.length} lines, the last ${last.op} ${last.key}`);
      if (point.file === "requests.journal") t.deepEqual([journal.length, last.op, last.key], [151, "reply", "t0/t0-0"], "killed between the reply's record and its close");

      daemon = await startChild(file);
      await Promise.all(counters.map((c, i) => c.all(transactions.filter((tr) => tr.startsWith(`${tenants[i]}-`)), 120_000)));
      await sleep(1000); // time for a second answer to show up, were there one
      const all = counters.flatMap((c) => [...c.finals.entries()]);
      t.is(all.length, 50, "every request answered");
      t.deepEqual(all.filter(([, list]) => list.length > 1).map(([tr, list]) => `${tr} x${list.length}`), [], "no request answered twice");
      t.deepEqual(all.filter(([, list]) => list[0].status !== "ok").map(([tr, list]) => `${tr}: ${JSON.stringify(list[0].error)}`), []);
    } finally {
      await Promise.all(clients.map((c) => c.endAsync(true)));
      await daemon?.kill("SIGTERM");
      await m.stop();
    }
  });
}
