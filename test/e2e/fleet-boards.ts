// One board of a test fleet: the e2e daemon config on an external Mosquitto with shared subscriptions.
import type { Config } from "../../src/config/index.js";
import type { Mosquitto } from "../helpers/mosquitto.js";
import { e2eAssets, e2eConfig } from "./harness.js";

/** Quick adverts and a generous forward timeout (a loaded test machine is slow, never wrong). */
export async function boardConfig(m: Mosquitto, board: string, edit?: (c: Config) => void): Promise<Config> {
  return e2eConfig(await e2eAssets(), (c) => {
    c.daemon.board_id = board;
    c.mqtt.embedded = false;
    c.mqtt.url = m.url;
    c.mqtt.username = "edgelora";
    c.mqtt.password = "edgelora";
    c.mqtt.client_id = `edgelora-${board}-${process.pid}`;
    c.mqtt.shared_subscription = true;
    c.mqtt.reconnect_ms = 500;
    c.fleet.advertise_interval_ms = 100;
    c.fleet.forward_timeout_ms = 2000;
    edit?.(c);
  });
}
