// A whole daemon (Controller) on a random loopback port with a FakeEngine, and real mqtt.js clients.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IClientOptions, MqttClient } from "mqtt";
import { loadConfig, type Config } from "../../src/config/index.js";
import { Controller } from "../../src/daemon/controller.js";
import { hashPassword } from "../../src/mqtt/password.js";
import { RecordingLed } from "../../src/leds/recording.js";
import { FakeEngine } from "./fake-engine.js";
import { quietLogger, trackedClients } from "./broker.js";

const FAST = { N: 1024, r: 8, p: 1 };

export interface TestDaemon {
  controller: Controller;
  engine: FakeEngine;
  config: Config;
  led: RecordingLed;
  url: string;
  connect(user: string, password: string, extra?: IClientOptions): Promise<MqttClient>;
  close(): Promise<void>;
}

export async function startDaemon(
  opts: { engine?: FakeEngine; edit?: (c: Config) => void; openEngine?: () => Promise<FakeEngine>; observer?: { username: string; password: string } } = {},
): Promise<TestDaemon> {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-daemon-"));
  const config = loadConfig({ env: {} });
  for (const name of ["pirate", "poet", "chef"]) writeFileSync(join(dir, `${name}.gguf`), "fake");
  config.daemon.data_dir = dir;
  config.daemon.shutdown_grace_ms = 200;
  config.mqtt.port = 0;
  config.metrics.interval_s = 0;
  config.adapters.entries = { pirate: join(dir, "pirate.gguf"), poet: join(dir, "poet.gguf"), chef: join(dir, "chef.gguf") };
  config.tenants = {
    alice: { password_hash: await hashPassword("alice", FAST), adapters: ["pirate", "poet"], default_adapter: "pirate" },
    bob: { password_hash: await hashPassword("bob", FAST), adapters: ["*"], default_adapter: null },
  };
  config.admin = { username: "admin", password_hash: await hashPassword("secret", FAST) };
  if (opts.observer) config.observer = { username: opts.observer.username, password_hash: await hashPassword(opts.observer.password, FAST) };
  opts.edit?.(config);
  const engine = opts.engine ?? new FakeEngine();
  const led = new RecordingLed();
  const controller = new Controller({
    config,
    logger: quietLogger,
    modelPath: join(dir, "model.gguf"),
    openEngine: opts.openEngine ?? (async () => engine),
    led,
    env: {},
  });
  await controller.start();
  const url = `mqtt://127.0.0.1:${controller.brokerPort}`;
  const clients = trackedClients(url);
  return {
    controller,
    engine,
    config,
    led,
    url,
    connect: clients.connect,
    async close() {
      await clients.endAll();
      await controller.stop();
    },
  };
}
