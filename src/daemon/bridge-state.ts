// <base>/bridge/state, retained: online while the daemon serves; the connection's last will and a
// clean stop set offline. The bus republishes it after a reconnect.
import type { DaemonContext, Extension } from "./context.js";

export const ONLINE = JSON.stringify({ state: "online" });
export const OFFLINE = JSON.stringify({ state: "offline" });

export class BridgeState implements Extension {
  readonly name = "bridge-state";

  constructor(private readonly ctx: DaemonContext) {}

  async start(): Promise<void> {
    const state = this.ctx.modelError ? JSON.stringify({ state: "offline", error: this.ctx.modelError }) : ONLINE;
    await this.ctx.bus.setRetained(this.ctx.topics.state, state);
  }

  async stop(): Promise<void> {
    await this.ctx.bus.setRetained(this.ctx.topics.state, OFFLINE);
  }
}
