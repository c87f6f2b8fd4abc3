// <base>/bridge/<board>/info, retained: what this board serves, republished when adapters change;
// also <base>/bridge/info (the board that published last) for clients of a single board.
import type { DaemonContext, Extension } from "./context.js";
import { json } from "./payloads.js";

/** The payload of bridge/info: inferred from what bridgeInfo() builds. */
export type BridgeInfoPayload = ReturnType<typeof bridgeInfo>;

export function bridgeInfo(ctx: DaemonContext) {
  const info = ctx.engine?.info;
  return {
    board: ctx.boardId,
    version: ctx.version,
    model: info
      ? { path: ctx.modelPath, name: info.name, arch: info.arch, n_params: info.nParams, n_ctx_train: info.nCtxTrain, weight_types: info.weightTypes }
      : { path: ctx.modelPath, error: ctx.modelError },
    kernel_path: info?.kernelPath ?? null,
    tenants: Object.keys(ctx.config.tenants).sort(),
    adapters: {
      registered: ctx.registry.size,
      resident: ctx.slots?.resident().length ?? 0,
      slots: ctx.slots?.size ?? 0,
      pool_type: ctx.config.model.lora_pool_type, // how the slots store adapters: f16 | q8 | q4
      tiers: {
        hot: { slots: ctx.config.model.lora_slots, max_rank: ctx.config.model.lora_max_rank },
        warm: {
          backend: ctx.slots?.stats().warm?.backend ?? "off",
          budget_mb: ctx.config.adapters.warm.budget_mb,
          directory: ctx.config.adapters.warm.backend === "directory" ? ctx.config.adapters.warm.directory : null,
          compression: ctx.config.adapters.warm.backend === "memory" ? ctx.config.adapters.warm.compression : null,
          policy: ctx.config.adapters.warm.policy,
        },
        cold: { directory: ctx.config.adapters.directory, read_only: true },
        prefetch: ctx.config.adapters.prefetch,
        prewarm: ctx.config.adapters.prewarm,
      },
    },
    mqtt: { protocol: ctx.bus.mqtt5 ? 5 : 4, shared_subscription: ctx.bus.mqtt5 && ctx.config.mqtt.shared_subscription },
  };
}

export class BridgeInfo implements Extension {
  readonly name = "bridge-info";
  private off: (() => void) | null = null;

  constructor(private readonly ctx: DaemonContext) {}

  async start(): Promise<void> {
    this.off = this.ctx.events.on("adaptersChanged", () => void this.publish());
    await this.publish();
  }

  async stop(): Promise<void> {
    this.off?.();
  }

  private async publish(): Promise<void> {
    const info = json("bridge/info", bridgeInfo(this.ctx));
    await this.ctx.bus.setRetained(this.ctx.topics.board(this.ctx.boardId).info, info);
    await this.ctx.bus.setRetained(this.ctx.topics.info, info);
  }
}
