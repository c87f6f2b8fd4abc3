// Drives the status LED from the health state (patterns in src/leds/status.ts).
import { patternFor, type Led } from "../leds/index.js";
import type { DaemonContext, Extension } from "./context.js";

export class StatusLed implements Extension {
  readonly name = "status-led";
  private off: (() => void) | null = null;
  private last = "";

  constructor(
    private readonly ctx: DaemonContext,
    private readonly led: Led,
  ) {}

  async start(): Promise<void> {
    this.off = this.ctx.events.on("health", () => void this.update());
    await this.update();
  }

  async stop(): Promise<void> {
    this.off?.();
    await this.led.close();
  }

  private async update(): Promise<void> {
    const p = patternFor(this.ctx.health.get());
    const key = JSON.stringify(p);
    if (key === this.last) return;
    this.last = key;
    await this.led.show(p).catch((err: unknown) => this.ctx.logger.warn({ err }, "status LED not updated"));
  }
}
