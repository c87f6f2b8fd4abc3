// Two boards of four killed one right after the other, both with requests in transit to them
// (EDGELORA_TEST_STALL_INTAKE). The second is the board every peer first chooses to adopt the first
// one's session: when it goes offline too, that session is given to a board still serving. Every
// request gets exactly one final reply.
import test from "ava";
import type { MqttClient } from "mqtt";
import type { Config } from "../../src/config/index.js";
import { bucket } from "../../src/fleet/fleet.js";
import { sleep, until } from "../helpers/broker.js";
import { MOSQUITTO_MISSING } from "../helpers/mosquitto.js";
import { countingTenant, FinalCounter, startChild, type ChildDaemon } from "./child-daemon.js";
import { boardConfig } from "./fleet-boards.js";
import { TENANTS, writeConfigFile } from "./harness.js";
import { mosquittoReady, mosquittoWithUsers } from "./mosquitto-broker.js";

if (!mosquittoReady) test("two boards die", (t) => (t.log(MOSQUITTO_MISSING), t.pass()));
const maybe = mosquittoReady ? test.serial : test.serial.skip;

maybe("two boards killed at once with requests in transit: both sessions adopted, every request answered once", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", ...TENANTS]);
  const names = ["b0", "b1", "b2", "b3"];
  const first = "b0";
  const survivors = names.filter((b) => b !== first);
  const second = survivors[bucket(`session:${first}`, survivors.length)]; // the peers' first choice to adopt b0
  const boards = new Map<string, ChildDaemon>();
  const clients: MqttClient[] = [];
  try {
    const info = (c: Config) => void (c.daemon.log_level = "info");
    for (const b of names) {
      const stall = b === first || b === second ? { EDGELORA_TEST_STALL_INTAKE: "1" } : {};
      boards.set(b, await startChild(writeConfigFile(await boardConfig(m, b, info)), 60_000, stall));
    }
    const tenants = TENANTS.slice(0, 6);
    const counters = new Map<string, FinalCounter>();
    const clientOf = new Map<string, MqttClient>();
    const sent: { tenant: string; transaction: string }[] = [];
    for (const tenant of tenants) {
      const { client, counter } = await countingTenant(m.url, tenant);
      clients.push(client);
      clientOf.set(tenant, client);
      counters.set(tenant, counter);
    }
    const send = async (round: string, perTenant: number) => {
      for (const tenant of tenants)
        for (let k = 0; k < perTenant; k++) {
          const transaction = `${tenant}-${round}${k}`;
          sent.push({ tenant, transaction });
          const body = { prompt: "Once upon a time", transaction, max_tokens: 32, temperature: 0 };
          await clientOf.get(tenant)!.publishAsync(`edgelora/${tenant}/request`, JSON.stringify(body), { qos: 1 });
        }
    };
    await send("a", 4);
    for (const b of [first, second]) await until(() => boards.get(b)!.logs.some((l) => l.msg === "test hook: intake stalled"), `${b}'s intake stalled`, 60_000);
    await boards.get(first)!.kill("SIGKILL");
    await boards.get(second)!.kill("SIGKILL");
    await send("b", 2);

    const adoptions = () =>
      [...boards].flatMap(([b, d]) => d.logs.filter((l) => l.msg === "session of the offline board adopted: its undelivered requests run here").map((l) => ({ by: b, of: l.board as string, taken: l.taken as number })));
    try {
      for (const [tenant, counter] of counters) await counter.all(sent.filter((s) => s.tenant === tenant).map((s) => s.transaction), 90_000);
      await until(() => adoptions().length === 2, "both adoptions logged");
    } catch (e) {
      for (const [b, d] of boards) t.log(b, JSON.stringify(d.logs.filter((l) => (l.level as number) >= 30 && !["mqtt connected", "loading model", "model loaded"].includes(l.msg as string)).map((l) => [l.msg, l.taken ?? l.board ?? l.jobs])));
      throw e;
    }
    await sleep(1000); // a second reply, were there one, would have come by now
    const finals = sent.map((s) => ({ ...s, replies: counters.get(s.tenant)!.finals.get(s.transaction)! }));
    t.deepEqual(finals.filter((f) => f.replies.length !== 1).map((f) => `${f.transaction}: ${f.replies.length}`), [], "exactly one final reply each");
    t.deepEqual(finals.filter((f) => f.replies[0].status !== "ok").map((f) => f.transaction), [], "all answered ok");
    const done = adoptions();
    t.log(`killed ${first} then ${second}; adoptions: ${JSON.stringify(done)}`);
    t.deepEqual(done.map((a) => a.of).sort(), [first, second].sort(), "both sessions adopted");
    t.true(done.every((a) => a.by !== first && a.by !== second), "by boards still serving");
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    for (const b of boards.values()) await b.kill("SIGTERM");
    await m.stop();
  }
});
