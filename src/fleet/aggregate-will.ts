// A second, silent connection whose last will sets the fleet aggregate <base>/bridge/state offline:
// an MQTT connection has one will, and the daemon's own is its board's state. When a board dies
// both wills fire; a board still serving sees the first and sets the aggregate online again (see
// BridgeState), so the aggregate reads offline only once the last board is gone.
import { readFileSync } from "node:fs";
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import { OFFLINE } from "../daemon/bridge-state.js";
import type { DaemonContext, Extension } from "../daemon/context.js";

export class AggregateWill implements Extension {
  readonly name = "aggregate-will";
  private client: MqttClient | null = null;

  constructor(private readonly ctx: DaemonContext) {}

  async start(): Promise<void> {
    const o = this.ctx.bus.opts;
    const tls: IClientOptions = {};
    if (o.tls) {
      if (o.tls.ca) tls.ca = readFileSync(o.tls.ca);
      if (o.tls.cert) tls.cert = readFileSync(o.tls.cert);
      if (o.tls.key) tls.key = readFileSync(o.tls.key);
      tls.rejectUnauthorized = o.tls.rejectUnauthorized;
    }
    const client = connect(o.url, {
      ...tls,
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
