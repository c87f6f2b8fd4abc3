// A board killed while requests are in transit to it: the broker has sent them (or queued them for
// its session) and the board has not acknowledged them. The board (EDGELORA_TEST_STALL_INTAKE) takes
// its first request and then reads nothing more, so what the broker hands it afterwards stays
// unacknowledged; it is killed (SIGKILL) with those in its session, and more requests are published
// while it is dead. A peer adopts its session: every request gets exactly one final reply.
import test from "ava";
import type { MqttClient } from "mqtt";
import type { Config } from "../../src/config/index.js";
import { sleep, until } from "../helpers/broker.js";
import { MOSQUITTO_MISSING } from "../helpers/mosquitto.js";
import { countingTenant, FinalCounter, startChild, type ChildDaemon } from "./child-daemon.js";
import { boardConfig } from "./fleet-boards.js";
import { TENANTS, writeConfigFile } from "./harness.js";
import { mosquittoReady, mosquittoWithUsers } from "./mosquitto-broker.js";

if (!mosquittoReady) test("failover in transit", (t) => (t.log(MOSQUITTO_MISSING), t.pass()));
const maybe = mosquittoReady ? test.serial : test.serial.skip;

maybe("a board killed with requests in transit to it: a peer adopts its session, every request answered once", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", ...TENANTS]);
  const names = ["b0", "b1", "b2"];
  const victim = "b2";
  const boards = new Map<string, ChildDaemon>();
  const clients: MqttClient[] = [];
  try {
    const info = (c: Config) => void (c.daemon.log_level = "info");
    for (const b of names) boards.set(b, await startChild(writeConfigFile(await boardConfig(m, b, info)), 60_000, b === victim ? { EDGELORA_TEST_STALL_INTAKE: "1" } : {}));
    const tenants = TENANTS.slice(0, 6);
    const counters = new Map<string, FinalCounter>();
    const sent: { tenant: string; transaction: string; stream: boolean }[] = [];
    const clientOf = new Map<string, MqttClient>();
    for (const tenant of tenants) {
      const { client, counter } = await countingTenant(m.url, tenant);
      clients.push(client);
      clientOf.set(tenant, client);
      counters.set(tenant, counter);
    }
    const send = async (round: string, perTenant: number) => {
      for (const tenant of tenants)
        for (let k = 0; k < perTenant; k++) {
          const stream = k === 2;
          const transaction = `${tenant}-${round}${k}`;
          sent.push({ tenant, transaction, stream });
          const body = { prompt: "Once upon a time", transaction, stream, max_tokens: 40 + 20 * k, temperature: 0 };
          // Acknowledged by the broker: it has handed the request to a board's session.
          await clientOf.get(tenant)!.publishAsync(`edgelora/${tenant}/request`, JSON.stringify(body), { qos: 1 });
        }
    };
    // The broker hands every third request to the victim: it takes the first and leaves the rest unread.
    await send("a", 4);
    const dying = boards.get(victim)!;
    await until(() => dying.logs.some((l) => l.msg === "test hook: intake stalled"), "the victim's intake stalled", 60_000);
    await dying.kill("SIGKILL");
    // Published while it is dead: some may be queued for its session before a peer adopts it.
    await send("b", 2);

    const adopted = () => [...boards.values()].flatMap((d) => d.logs.filter((l) => l.msg === "session of the offline board adopted: its undelivered requests run here"));
    try {
      for (const [tenant, counter] of counters) await counter.all(sent.filter((s) => s.tenant === tenant).map((s) => s.transaction), 90_000);
      await until(() => adopted().length === 1, "the adoption's log");
    } catch (e) {
      for (const [b, d] of boards) t.log(b, JSON.stringify(d.logs.filter((l) => (l.level as number) >= 30 && !["mqtt connected", "loading model", "model loaded"].includes(l.msg as string)).map((l) => [l.msg, l.taken ?? l.board ?? l.jobs])));
      throw e;
    }
    await sleep(1000); // a second reply, were there one, would have come by now
    const finals = sent.map((s) => ({ ...s, replies: counters.get(s.tenant)!.finals.get(s.transaction)! }));
    t.deepEqual(finals.filter((f) => f.replies.length !== 1).map((f) => `${f.transaction}: ${f.replies.length}`), [], "exactly one final reply each");
    const outcome = (f: (typeof finals)[number]) => (f.replies[0].status === "ok" ? "ok" : (f.replies[0].error as { code: string }).code);
    t.deepEqual(finals.filter((f) => !f.stream && outcome(f) !== "ok").map((f) => `${f.transaction}: ${outcome(f)}`), [], "plain requests all answered ok");
    t.true(finals.filter((f) => f.stream).every((f) => ["ok", "INTERRUPTED"].includes(outcome(f))));
    const [adoption] = adopted();
    t.log(`adopted the victim's session: ${adoption.taken} requests taken, ${adoption.skipped} skipped (recorded by the victim or answered)`);
    t.true(adoption.present === true && (adoption.taken as number) >= 1, "requests in transit to the victim were taken from its session");
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    for (const b of boards.values()) await b.kill("SIGTERM");
    await m.stop();
  }
});
