// The shipped Node-RED flows (hw/examples/node-red-*.json) as a new user would run them: imported
// into a real Node-RED 4 unchanged except for the broker's port, the inject node pressed, and the
// daemon's answer seen on the broker where the flow's own MQTT-in node listens.
import { readFileSync } from "node:fs";
import test from "ava";
import { connectAsync, type IClientOptions } from "mqtt";

import { packageRoot } from "../../src/engine/native.js";
import { hashPassword } from "../../src/mqtt/password.js";
import { e2eAssets, e2eConfig, FAST, startRealDaemon, TENANTS, adapterOf } from "../e2e/harness.js";
import { mosquittoReady, mosquittoWithUsers } from "../e2e/mosquitto-broker.js";
import { MOSQUITTO_MISSING, useMosquitto } from "../helpers/mosquitto.js";
import { NodeRed, nodeRedInstalled, NODE_RED_MISSING } from "./node-red.js";

interface FlowNode {
  id: string;
  type: string;
  port?: string;
  [key: string]: unknown;
}

function shippedFlow(kind: "embedded" | "mosquitto", port: number): FlowNode[] {
  const flow = JSON.parse(readFileSync(`${packageRoot()}/hw/examples/node-red-${kind}.json`, "utf8")) as FlowNode[];
  for (const n of flow) if (n.type === "mqtt-broker") n.port = String(port);
  return flow;
}

interface Answer {
  topic: string;
  body: { transaction?: string; status?: string; text?: string };
  correlationData?: Buffer;
}

/** Deploys the flow, waits for its broker connection, presses inject; the answer as alice sees it. */
async function runFlow(kind: "embedded" | "mosquitto", url: string, port: number, clientOpts: IClientOptions): Promise<Answer> {
  const watcher = await connectAsync(url, { username: "alice", password: "alice", reconnectPeriod: 0, clientId: "test-watcher", ...clientOpts });
  const red = await NodeRed.start();
  try {
    const answer = new Promise<Answer>((resolve) =>
      watcher.on("message", (topic, payload, packet) => resolve({ topic, body: JSON.parse(payload.toString()), correlationData: packet.properties?.correlationData })),
    );
    await watcher.subscribeAsync("edgelora/alice/response/#", { qos: 1 });
    await red.deploy(shippedFlow(kind, port));
    await red.waitFor(/Connected to broker/);
    await red.inject(`edgelora_${kind}_inject`);
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within 60 s; Node-RED log:\n${red.output}`)), 60_000).unref());
    return await Promise.race([answer, timeout]);
  } finally {
    await watcher.endAsync(true);
    await red.stop();
  }
}

const withNodeRed = nodeRedInstalled ? test.serial : test.serial.skip;
if (!nodeRedInstalled) test("Node-RED flows", (t) => (t.log(NODE_RED_MISSING), t.pass()));

withNodeRed("node-red-embedded.json: answered through reply_to over the embedded broker (MQTT 3.1.1)", async (t) => {
  const config = await e2eConfig(await e2eAssets(), (c) => {
    c.tenants.alice = { password_hash: "", adapters: [adapterOf(TENANTS[0])], default_adapter: adapterOf(TENANTS[0]) };
  });
  config.tenants.alice.password_hash = await hashPassword("alice", FAST);
  const daemon = await startRealDaemon(config);
  try {
    const port = daemon.controller.brokerPort!;
    const a = await runFlow("embedded", `mqtt://127.0.0.1:${port}`, port, {});
    t.is(a.topic, "edgelora/alice/response/nodered");
    t.is(a.body.status, "ok", JSON.stringify(a.body));
    t.regex(a.body.transaction ?? "", /^nr-\d+$/);
  } finally {
    await daemon.stop();
  }
});

const withMosquitto = nodeRedInstalled && mosquittoReady ? test.serial : test.serial.skip;
if (nodeRedInstalled && !mosquittoReady) test("Node-RED flow on Mosquitto", (t) => (t.log(MOSQUITTO_MISSING), t.pass()));

withMosquitto("node-red-mosquitto.json: answered on the MQTT 5 response topic with the correlation data, through Mosquitto", async (t) => {
  const m = await mosquittoWithUsers(["edgelora", "alice"]);
  const config = await e2eConfig(await e2eAssets(), (c) => {
    useMosquitto(c, m, `edgelora-node-red-${process.pid}`);
    c.tenants.alice = { password_hash: "", adapters: [adapterOf(TENANTS[0])], default_adapter: adapterOf(TENANTS[0]) };
  });
  const daemon = await startRealDaemon(config);
  try {
    const a = await runFlow("mosquitto", m.url, m.port, { protocolVersion: 5 });
    t.is(a.topic, "edgelora/alice/response/nodered");
    t.is(a.body.status, "ok", JSON.stringify(a.body));
    t.regex(a.body.transaction ?? "", /^nr-\d+$/);
    t.is(a.correlationData?.toString(), a.body.transaction, "the correlation data comes back with the answer");
  } finally {
    await daemon.stop();
    await m.stop();
  }
});
