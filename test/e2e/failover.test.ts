// Three boards as separate processes on one Mosquitto; the busiest is killed (SIGKILL) in the middle
// of its requests. Every request still gets exactly one final reply: the plain ones from another
// board, the streamed ones ok or INTERRUPTED. The dead board's own retained state turns offline (its
// will) while the fleet aggregate stays online.
import test from "ava";
import { connectAsync, type MqttClient } from "mqtt";
import type { Config } from "../../src/config/index.js";
import { collect, sleep, until } from "../helpers/broker.js";
import { MOSQUITTO_MISSING } from "../helpers/mosquitto.js";
import { FinalCounter, startChild, type ChildDaemon } from "./child-daemon.js";
import { boardConfig } from "./fleet-boards.js";
import { TENANTS, writeConfigFile } from "./harness.js";
import { mosquittoReady, mosquittoWithUsers } from "./mosquitto-broker.js";

if (!mosquittoReady) test("failover", (t) => (t.log(MOSQUITTO_MISSING), t.pass()));
const maybe = mosquittoReady ? test.serial : test.serial.skip;

maybe("a board killed mid-request: its requests are answered by the others, once each, never silence", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", "admin", ...TENANTS]);
  const names = ["b0", "b1", "b2"];
  const boards = new Map<string, ChildDaemon>();
  const clients: MqttClient[] = [];
  const connect = async (user: string) => {
    const c = await connectAsync(m.url, { username: user, password: user, protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  };
  try {
    const longer = (c: Config) => {
      c.daemon.log_level = "info";
      c.model.n_ctx = 2048;
      c.scheduler.max_tokens_limit = 2000;
    };
    for (const b of names) boards.set(b, await startChild(writeConfigFile(await boardConfig(m, b, longer))));
    // The daemons' own login reads the job ledgers: which board runs what.
    const watcher = await connect("edgelora");
    const ledger = new Map<string, Set<string>>(names.map((b) => [b, new Set()]));
    watcher.on("message", (topic, payload) => {
      const [, , board, , ...job] = topic.split("/");
      if (!ledger.has(board)) return;
      if (payload.length > 0) ledger.get(board)!.add(job.join("/"));
      else ledger.get(board)!.delete(job.join("/"));
    });
    await watcher.subscribeAsync("edgelora/fleet/+/jobs/#", { qos: 1 });
    const admin = await connect("admin");
    const states = await collect(admin, "edgelora/bridge/+/state");
    const aggregate = await collect(admin, "edgelora/bridge/state");

    const tenants = TENANTS.slice(0, 6);
    const counters = new Map<string, FinalCounter>();
    const sent: { tenant: string; transaction: string; stream: boolean }[] = [];
    for (const tenant of tenants) {
      const c = await connect(tenant);
      counters.set(tenant, new FinalCounter(c));
      await c.subscribeAsync(`edgelora/${tenant}/response`, { qos: 1 });
      for (let k = 0; k < 4; k++) {
        const stream = k === 3;
        const transaction = `${tenant}-${k}`;
        sent.push({ tenant, transaction, stream });
        const body = { prompt: "Once upon a time", transaction, stream, max_tokens: 600 + 100 * k, temperature: 0 };
        await c.publishAsync(`edgelora/${tenant}/request`, JSON.stringify(body), { qos: 1 });
      }
    }
    // Kill the board running the most requests once it runs a few, and once every request has been
    // accepted by some board (in a ledger) or answered: this test checks the ledger's failover; requests
    // still in transit to a dying board are failover-transit.test's.
    const accepted = (s: (typeof sent)[number]) =>
      counters.get(s.tenant)!.finals.has(s.transaction) || names.some((b) => ledger.get(b)!.has(`${s.tenant}/${s.transaction}`));
    let victim = "";
    await until(() => {
      victim = names.reduce((a, b) => (ledger.get(b)!.size > ledger.get(a)!.size ? b : a));
      return ledger.get(victim)!.size >= 3 && sent.every(accepted);
    }, "a board running requests, every request accepted somewhere", 60_000);
    const runningThere = [...ledger.get(victim)!];
    const aggregateBeforeKill = aggregate.got.length;
    await boards.get(victim)!.kill("SIGKILL");
    t.log(`killed ${victim} running ${runningThere.length}: ${runningThere.join(", ")}`);

    try {
      for (const [tenant, counter] of counters) await counter.all(sent.filter((s) => s.tenant === tenant).map((s) => s.transaction), 60_000);
    } catch (e) {
      for (const [b, d] of boards) t.log(b, JSON.stringify(d.logs.filter((l) => !["mqtt connected", "loading model", "model loaded"].includes(l.msg as string)).map((l) => [l.msg, l.to ?? l.board ?? l.jobs])));
      throw e;
    }
    await sleep(1000);
    const finals = sent.map((s) => ({ ...s, replies: counters.get(s.tenant)!.finals.get(s.transaction)! }));
    t.deepEqual(finals.filter((f) => f.replies.length !== 1).map((f) => f.transaction), [], "exactly one final reply each");
    const outcome = (f: (typeof finals)[number]) => (f.replies[0].status === "ok" ? "ok" : (f.replies[0].error as { code: string }).code);
    t.deepEqual(finals.filter((f) => !f.stream && outcome(f) !== "ok").map((f) => `${f.transaction}: ${outcome(f)}`), [], "plain requests all answered ok");
    t.true(finals.filter((f) => f.stream).every((f) => ["ok", "INTERRUPTED"].includes(outcome(f))));
    const taken = finals.filter((f) => runningThere.includes(`${f.tenant}/${f.transaction}`));
    t.log(`the dead board's requests: ${taken.map((f) => `${f.transaction}=${outcome(f)}`).join(", ")}`);
    t.true(taken.length >= 3);

    // Its own state went offline by its will; the aggregate is online (two boards serve): its will set
    // the aggregate offline, and a board still serving sets it online again (a round trip through
    // another process: waited for, not a fixed time).
    await until(() => states.got.some((s) => s.topic === `edgelora/bridge/${victim}/state` && s.json?.state === "offline"), "the will");
    await until(() => aggregate.got.slice(aggregateBeforeKill).some((s) => s.json?.state === "offline"), "the aggregate's will");
    await until(() => aggregate.got.at(-1)!.json?.state === "online", "the aggregate online again", 30_000);
    t.deepEqual(aggregate.got.at(-1)!.json, { state: "online" });
    t.true(names.filter((b) => b !== victim).every((b) => states.got.filter((s) => s.topic === `edgelora/bridge/${b}/state`).at(-1)!.json.state === "online"));
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    for (const b of boards.values()) await b.kill("SIGTERM");
    await m.stop();
  }
});
