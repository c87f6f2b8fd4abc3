// <base>/bridge/<board>/metrics every metrics.interval_s: scheduler load, adapter tiers (hits and misses
// per tier, bytes used against budgets, promotions and their latency p50/p99 per source tier, prefetch
// hits), memory, and answered requests by outcome since start; also on <base>/bridge/metrics (each board
// in turn, with its `board`) for clients written before there were several boards.
import type { Timer } from "../runtime/clock.js";
import type { DaemonContext, Extension } from "./context.js";
import { json } from "./payloads.js";

/** The payload of bridge/metrics: inferred from what snapshot() builds. */
export type MetricsSnapshot = ReturnType<Metrics["snapshot"]>;

export class Metrics implements Extension {
  readonly name = "metrics";
  private timer: Timer | null = null;
  private off: (() => void) | null = null;
  private readonly answered: Record<string, number> = { ok: 0 };

  constructor(private readonly ctx: DaemonContext) {}

  async start(): Promise<void> {
    this.off = this.ctx.events.on("answered", ({ code }) => {
      const k = code ?? "ok";
      this.answered[k] = (this.answered[k] ?? 0) + 1;
    });
    const s = this.ctx.config.metrics.interval_s;
    if (s > 0) {
      this.timer = this.ctx.clock.setInterval(() => void this.publish(), s * 1000);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.timer) this.ctx.clock.clearTimeout(this.timer);
    this.off?.();
  }

  snapshot() {
    const st = this.ctx.scheduler?.stats();
    const tiers = this.ctx.slots?.stats() ?? null;
    const lookups = tiers ? tiers.hits.hot + tiers.hits.warm + tiers.hits.cold : 0;
    const mem = process.memoryUsage();
    return {
      board: this.ctx.boardId,
      queue_depth: st?.queueDepth ?? 0,
      active_sequences: st?.active ?? 0,
      tokens_per_second: Math.round((st?.tokensPerSecond ?? 0) * 10) / 10,
      steps: st?.steps ?? 0,
      completed: st?.completed ?? 0,
      adapters: {
        registered: this.ctx.registry.size,
        resident: tiers?.hot.resident ?? 0,
        slot_hit_ratio: lookups > 0 ? tiers!.hits.hot / lookups : null,
        // hot + warm hits over all acquisitions: what did not have to come from the files
        tier_hit_ratio: lookups > 0 ? (tiers!.hits.hot + tiers!.hits.warm) / lookups : null,
        loads: tiers ? tiers.hits.warm + tiers.hits.cold : 0,
        evictions: tiers?.evictions ?? 0,
        tiers,
      },
      requests: { ...this.answered },
      memory: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed },
    };
  }

  publish(): Promise<void> {
    const { bus, topics, boardId } = this.ctx;
    const payload = json("bridge/metrics", this.snapshot());
    return Promise.all([topics.board(boardId).metrics, topics.metrics].map((topic) => bus.publish(topic, payload, { qos: 0 })))
      .then(() => undefined)
      .catch((err: unknown) => this.ctx.logger.warn({ err }, "metrics not published"));
  }
}
