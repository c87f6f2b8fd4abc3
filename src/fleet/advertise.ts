// bridge/<board>/adapters, retained: the adapters this board can run without loading them, and its
// load, republished when they change (at most every fleet.advertise_interval_ms), and its MQTT
// client id. Peers forward a request to the board that holds its adapter.
import type { DaemonContext } from "../daemon/context.js";

/** The adapters a board advertises: those in its slot pool ("hot") and in its warm tier. */
export function advertisedAdapters(ctx: DaemonContext): { hot: string[]; warm: string[] } {
  return { hot: (ctx.slots?.resident() ?? []).map((r) => r.name).sort(), warm: (ctx.slots?.warmNames() ?? []).sort() };
}

/** Queued plus running requests: what "less loaded" compares. */
export function loadOf(ctx: DaemonContext): number {
  const st = ctx.scheduler?.stats();
  return st ? st.queueDepth + st.active : 0;
}

export class AdapterAdvert {
  private timer: NodeJS.Timeout | null = null;
  private last = "";
  private session: string | null;

  constructor(private readonly ctx: DaemonContext) {
    this.session = ctx.bus.opts.clientId;
  }

  /** Stopping, the board ends its session itself: no peer is to adopt it. */
  async withdrawSession(): Promise<void> {
    this.session = null;
    await this.publish();
  }

  async start(): Promise<void> {
    await this.publish();
    this.timer = setInterval(() => void this.publish(), this.ctx.config.fleet.advertise_interval_ms).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Publishes when anything changed since the last time. */
  async publish(): Promise<void> {
    const capacity = this.ctx.config.scheduler.max_sequences;
    // session: the client id of this board's persistent MQTT session, which a peer adopts should this
    // board die (adopt.ts).
    const payload = JSON.stringify({ board: this.ctx.boardId, ...advertisedAdapters(this.ctx), load: loadOf(this.ctx), capacity, session: this.session });
    if (payload === this.last) return;
    this.last = payload;
    await this.ctx.bus.setRetained(this.ctx.topics.board(this.ctx.boardId).adapters, payload).catch(() => undefined);
  }
}
