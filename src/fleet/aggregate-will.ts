// A second, silent connection whose last will sets the fleet aggregate <base>/bridge/state offline:
// an MQTT connection has one will, and the daemon's own is its board's state. When a board dies
// both wills fire; a board still serving sees the first and sets the aggregate online again (see
// BridgeState), so the aggregate reads offline only once the last board is gone.
import { connect, type MqttClient } from "mqtt";
import { OFFLINE } from "../daemon/bridge-state.js";
import type { DaemonContext, Extension } from "../daemon/context.js";
import { tlsOptions } from "../mqtt/client.js";

export class AggregateWill implements Extension {
  readonly name = "aggregate-will";
  private client: MqttClient | null = null;

  constructor(private readonly ctx: DaemonContext) {}

  async start(): Promise<void> {
    const o = this.ctx.bus.opts;
    const client = connect(o.url, {
      ...tlsOptions(o.tls),
      protocolVersion: o.protocolVersion,
      clientId: `${o.clientId}-will`,
      username: o.username ?? undefined,
      password: o.password ?? undefined,
      keepalive: o.keepaliveS,
      reconnectPeriod: o.reconnectMs,
      clean: true,
      will: { topic: this.ctx.topics.state, payload: Buffer.from(OFFLINE), qos: 1, retain: true },
    });
    client.on("error", (err) => this.ctx.logger.debug({ err: err.message }, "aggregate-will connection error"));
    this.client = client;
  }

  /** A clean disconnect: the will is not sent (BridgeState has set the aggregate as it should be). */
  async stop(): Promise<void> {
    await this.client?.endAsync();
    this.client = null;
  }
}
