// Builds the adapter store from the config: the warm backend, its budget and policy.
import type { Logger } from "pino";
import type { Config } from "../../config/schema.js";
import type { StepEngine } from "../../engine/types.js";
import { DirectoryWarmBackend } from "./directory-warm.js";
import { MemoryWarmBackend } from "./memory-warm.js";
import { warmPolicy } from "./policy.js";
import { TieredAdapterStore, type AdapterCatalog } from "./store.js";
import { WarmTier } from "./warm.js";

export { TieredAdapterStore, type AdapterCatalog, type TierStats, type ResidentAdapter } from "./store.js";

export async function buildAdapterStore(config: Config, engine: StepEngine, catalog: AdapterCatalog, logger?: Logger): Promise<TieredAdapterStore> {
  const w = config.adapters.warm;
  const policy = warmPolicy(w.policy);
  let warm: WarmTier | null = null;
  if (w.backend !== "off" && w.budget_mb > 0 && engine.exportAdapter && engine.importAdapter) {
    if (w.backend === "directory" && !w.directory) throw new Error("adapters.warm.directory is required when adapters.warm.backend is directory");
    const backend =
      w.backend === "directory"
        ? new DirectoryWarmBackend(w.directory!)
        : new MemoryWarmBackend(w.compression, config.model.lora_pool_type === "f16" ? 2 : 1);
    await backend.clear();
    warm = new WarmTier(backend, Math.floor(w.budget_mb * 1024 * 1024), policy);
  }
  return new TieredAdapterStore({ engine, catalog, slots: config.model.lora_slots, warm, policy, prefetch: config.adapters.prefetch, logger });
}
