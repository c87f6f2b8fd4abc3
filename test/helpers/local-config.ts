// The config of a daemon run in this process (tests, benchmarks) on a model file: the defaults, a
// silent log, the embedded broker on a free port, no periodic metrics; callers set the rest.
import { loadConfig, type Config } from "../../src/config/index.js";

export interface LocalConfigOptions {
  model: string;
  dataDir: string;
  threads: number;
  nCtx: number;
  loraSlots: number;
  loraMaxRank?: number; // default: the config's
}

export function localConfig(o: LocalConfigOptions): Config {
  const c = loadConfig({ env: {} });
  c.daemon.data_dir = o.dataDir;
  c.daemon.log_level = "silent";
  c.mqtt.port = 0;
  c.metrics.interval_s = 0;
  c.model.path = o.model;
  c.model.threads = o.threads;
  c.model.n_ctx = o.nCtx;
  c.model.lora_slots = o.loraSlots;
  if (o.loraMaxRank !== undefined) c.model.lora_max_rank = o.loraMaxRank;
  return c;
}
