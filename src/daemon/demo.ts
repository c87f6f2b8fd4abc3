// Demo mode (no model configured): a small random-weight model and demo adapters are written into
// the data directory once, and demo tenants alice/bob (passwords alice/bob) are configured.
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Config, TenantConfig } from "../config/schema.js";
import { writeSyntheticModel } from "../gguf/synthetic.js";
import { hashPassword } from "../mqtt/password.js";

export interface DemoAssets {
  modelPath: string;
  adapterDir: string;
  adapters: string[]; // names of the demo adapters present
}

export const DEMO_TENANTS = ["alice", "bob"] as const;

/** Writes the demo model (and adapters) unless already there. Weights are random: output is noise. */
export async function ensureDemoAssets(dataDir: string): Promise<DemoAssets> {
  const demoDir = join(dataDir, "demo");
  const adapterDir = join(demoDir, "adapters");
  mkdirSync(adapterDir, { recursive: true });
  const modelPath = join(demoDir, "demo-model.gguf");
  if (!existsSync(modelPath)) await writeSyntheticModel({ arch: "llama", type: "q8_0", out: modelPath, nCtx: 1024, seed: 1 });
  // Demo adapters: written here once a synthetic LoRA adapter writer exists in src/gguf (not yet).
  const adapters = readdirSync(adapterDir).filter((f) => f.endsWith(".gguf")).map((f) => f.slice(0, -5)).sort();
  return { modelPath, adapterDir, adapters };
}

/** alice and bob, passwords equal to their names, allowed every adapter. */
export async function demoTenants(adapters: string[]): Promise<Record<string, TenantConfig>> {
  const out: Record<string, TenantConfig> = {};
  for (const [i, name] of DEMO_TENANTS.entries()) {
    out[name] = { password_hash: await hashPassword(name), adapters: ["*"], default_adapter: adapters[i % Math.max(1, adapters.length)] ?? null };
  }
  return out;
}

/** The start-up text of demo mode: how to send a prompt, and that the weights are random. */
export function demoInstructions(cfg: Config, demoModel: boolean, demoTenantsOn: boolean): string {
  const { host, port, base_topic: base } = cfg.mqtt;
  const h = host === "0.0.0.0" ? "127.0.0.1" : host;
  const lines: string[] = [];
  if (demoModel) {
    lines.push(
      "DEMO MODE: the model and adapters are RANDOM demo weights; the answers are noise.",
      "Use a real model: set model.path to a llama-family GGUF file (e.g. a TinyLlama or SmolLM Q4_K_M .gguf)",
      "in a config file (`edgelora serve --config my.yaml`) or with EDGELORA_MODEL_PATH=/path/model.gguf,",
      "and register LoRA adapters under adapters.entries / adapters.directory.",
    );
  }
  if (demoTenantsOn) {
    lines.push(
      "Demo tenants: alice (password alice) and bob (password bob).",
      "Send a prompt:",
      `  npx mqtt sub -h ${h} -p ${port} -u alice -P alice -t '${base}/alice/response' -v`,
      `  npx mqtt pub -h ${h} -p ${port} -u alice -P alice -t '${base}/alice/request' -m '{"prompt":"Once upon a time","max_tokens":32}'`,
      "or with mosquitto-clients:",
      `  mosquitto_sub -h ${h} -p ${port} -u alice -P alice -t '${base}/alice/response' -v`,
      `  mosquitto_pub -h ${h} -p ${port} -u alice -P alice -t '${base}/alice/request' -m 'Once upon a time'`,
    );
  }
  return lines.join("\n");
}
