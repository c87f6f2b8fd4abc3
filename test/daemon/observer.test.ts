// The read-only observer login (Home Assistant, dashboards) on the embedded broker: it reads the
// discovery messages and every board's bridge topics, and can neither publish nor read a tenant's.
import test from "ava";
import { hashPassword } from "../../src/mqtt/password.js";
import { collect, sleep } from "../helpers/broker.js";
import { startDaemon } from "../helpers/daemon.js";

test("observer: Home Assistant discovery and bridge/# readable, tenants' topics and publishing not", async (t) => {
  const d = await startDaemon({
    edit: (c) => {
      c.daemon.board_id = "kitchen-pi";
      c.homeassistant.enabled = true;
      c.metrics.interval_s = 0.05;
    },
    observer: { username: "ha", password: "ha-pw" },
  });
  try {
    const ha = await d.connect("ha", "ha-pw");
    const discovery = await collect(ha, "homeassistant/#");
    const first = await discovery.next(5);
    t.true(first.retain);
    const connectivity = discovery.got.find((m) => m.topic === "homeassistant/binary_sensor/edgelora_kitchen-pi/connectivity/config")!;
    t.is(connectivity.json.state_topic, "edgelora/bridge/kitchen-pi/state");
    const queue = discovery.got.find((m) => m.topic.endsWith("/queue_depth/config"))!;
    t.is(queue.json.state_topic, "edgelora/bridge/kitchen-pi/metrics");
    t.is(queue.json.availability.topic, "edgelora/bridge/kitchen-pi/state");

    // What those sensors read: the board's retained state and its metrics.
    const state = await collect(ha, connectivity.json.state_topic);
    t.deepEqual((await state.next(1)).json, { state: "online", board: "kitchen-pi" });
    const metrics = await collect(ha, "edgelora/bridge/kitchen-pi/metrics");
    t.is(typeof (await metrics.next(1)).json.queue_depth, "number");
    const aggregate = await collect(ha, "edgelora/bridge/state");
    t.deepEqual((await aggregate.next(1)).json, { state: "online" });

    await t.throwsAsync(ha.subscribeAsync("edgelora/alice/response", { qos: 1 }), { message: /Subscribe error/ }, "a tenant's replies are not readable");
    const closed = new Promise<void>((resolve) => ha.once("close", () => resolve()));
    ha.publish("edgelora/bridge/request/adapters/remove", JSON.stringify({ name: "pirate" }));
    await closed;
    await sleep(50);
    t.true(d.controller.context.registry.has("pirate"), "an observer's publish is refused");

    const alice = await d.connect("alice", "alice");
    await t.throwsAsync(alice.subscribeAsync("homeassistant/#", { qos: 1 }), { message: /Subscribe error/ }, "tenants do not read discovery");
  } finally {
    await d.close();
  }
});
