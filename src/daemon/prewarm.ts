// Pre-warming: once the daemon has been idle for a moment, the most requested adapters that are neither
// in a slot nor warm are loaded from their files and moved to the warm tier (adapters.prewarm), until a request comes.
import type { Timer } from "../runtime/clock.js";
import type { DaemonContext, Extension } from "./context.js";

const IDLE_DELAY_MS = 1000;

export class Prewarm implements Extension {
  readonly name = "prewarm";
  private timer: Timer | null = null;
  private running: Promise<void> | null = null;
  private offs: (() => void)[] = [];

  constructor(private readonly ctx: DaemonContext) {}

  async start(): Promise<void> {
    const scheduler = this.ctx.scheduler;
    if (!this.ctx.config.adapters.prewarm || !scheduler || !this.ctx.slots) return;
    this.offs = [scheduler.on("idle", () => this.schedule()), scheduler.on("busy", () => this.cancel())];
  }

  async stop(): Promise<void> {
    this.cancel();
    for (const off of this.offs.splice(0)) off();
    await this.running;
  }

  private schedule(): void {
    this.cancel();
    this.timer = this.ctx.clock.setTimeout(() => {
      this.timer = null;
      const { slots, scheduler, logger } = this.ctx;
      if (!slots || !scheduler || this.running) return;
      this.running = slots
        .prewarm(() => scheduler.busy)
        .then((n) => n > 0 && logger.debug({ adapters: n }, "pre-warmed"))
        .catch((err: unknown) => logger.warn({ err }, "pre-warm failed"))
        .finally(() => (this.running = null)) as Promise<void>;
    }, IDLE_DELAY_MS);
    this.timer.unref();
  }

  private cancel(): void {
    if (this.timer) this.ctx.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}
