// Fleet-wide dedupe of answered transactions: three boards (in this process) on one Mosquitto. Once a
// transaction is answered, copies of it, which the broker hands round the boards, each get the same
// final reply again, from the fleet's answered records, and no board runs it a second time.
import test from "ava";
import { connectAsync, type MqttClient } from "mqtt";
import { until } from "../helpers/broker.js";
import { MOSQUITTO_MISSING } from "../helpers/mosquitto.js";
import { FinalCounter } from "./child-daemon.js";
import { boardConfig } from "./fleet-boards.js";
import { startRealDaemon, TENANTS, type RealDaemon } from "./harness.js";
import { mosquittoReady, mosquittoWithUsers } from "./mosquitto-broker.js";

if (!mosquittoReady) test("fleet dedupe", (t) => (t.log(MOSQUITTO_MISSING), t.pass()));
const maybe = mosquittoReady ? test.serial : test.serial.skip;

maybe("a copy of an answered transaction gets the same reply on any board, without a second run", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", ...TENANTS]);
  const boards: RealDaemon[] = [];
  let client: MqttClient | null = null;
  try {
    for (const b of ["b0", "b1", "b2"]) boards.push(await startRealDaemon(await boardConfig(m, b)));
    const answeredBy = boards.map(() => 0);
    boards.forEach((b, i) => b.controller.context.events.on("answered", () => answeredBy[i]++));
    client = await connectAsync(m.url, { username: "t1", password: "t1", protocolVersion: 5, reconnectPeriod: 0 });
    const replies = new FinalCounter(client);
    await client.subscribeAsync("edgelora/t1/response", { qos: 1 });
    // Sampled without a seed: a second run would (almost surely) differ, and its timings would.
    const request = JSON.stringify({ prompt: "Once upon a time", transaction: "once", max_tokens: 24, temperature: 1 });
    await client.publishAsync("edgelora/t1/request", request, { qos: 1 });
    await until(() => replies.finals.has("once"), "the first reply", 60_000);
    const first = replies.finals.get("once")![0];
    t.is(first.status, "ok");
    const ranOn = boards.findIndex((b) => b.steps.length > 0);
    t.true(ranOn >= 0);
    await until(() => boards.every((b) => b.controller.context.fleet!.answeredReply("t1", "once") !== null), "every board has the answered record");
    for (const b of boards) b.steps.length = 0;
    answeredBy.fill(0);

    // Round robin: three copies reach every board, two of which never ran the transaction.
    for (let copy = 1; copy <= 3; copy++) {
      await client.publishAsync("edgelora/t1/request", request, { qos: 1 });
      await until(() => replies.finals.get("once")!.length === 1 + copy, `the reply to copy ${copy}`, 60_000);
    }
    t.log(`ran on b${ranOn}; copies answered per board: ${JSON.stringify(answeredBy)}`);
    for (const again of replies.finals.get("once")!.slice(1)) t.deepEqual(again, first, "the same reply, timings included");
    t.deepEqual(boards.map((b) => b.steps.length), [0, 0, 0], "no board ran it again");
    t.true(answeredBy.filter((n, i) => n > 0 && i !== ranOn).length >= 1, "a board that never ran it answered a copy");
  } finally {
    await client?.endAsync(true);
    for (const b of boards) await b.stop();
    await m.stop();
  }
});
