// Demo mode (no model configured): a small random-weight llama (SentencePiece vocabulary, GQA,
// SwiGLU: the shape of a real one, scaled down so it is written and loaded in a few seconds) and
// rank-8 demo adapters are written into the data directory once, and demo tenants alice/bob
// (passwords alice/bob) are configured, each with its own default adapter.
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import type { Config, TenantConfig } from "../config/schema.js";
import { writeSyntheticModel, type SyntheticModelOptions } from "../gguf/synthetic.js";
import { writeSyntheticAdapter } from "../lora/synthetic.js";
import { hashPassword } from "../mqtt/password.js";

export interface DemoAssets {
  modelPath: string;
  adapterDir: string;
  adapters: string[]; // names of the demo adapters, as registered from adapterDir
}

export const DEMO_TENANTS = ["alice", "bob"] as const;
export const DEMO_ADAPTERS = ["demo-a", "demo-b", "demo-c", "demo-d"] as const;

const DEMO_MODEL: Omit<SyntheticModelOptions, "out"> = {
  arch: "llama", type: "q8_0", vocab: "spm", nEmbd: 128, nLayer: 4, nHead: 4, nHeadKv: 2, nFf: 384, nCtx: 2048, seed: 1,
};
// Part of the folder name: a changed demo model never meets adapters written for an older one.
const DEMO_VERSION = "v2";

/** Writes `out` through a temporary name: a start interrupted mid-write leaves no half file behind. */
async function writeOnce(out: string, write: (tmp: string) => Promise<unknown>): Promise<void> {
  if (existsSync(out)) return;
  const tmp = `${out}.tmp`;
  await write(tmp);
  renameSync(tmp, out);
}

/** Writes the demo model and adapters unless already there. Weights are random: output is noise. */
export async function ensureDemoAssets(dataDir: string): Promise<DemoAssets> {
  const demoDir = join(dataDir, "demo", DEMO_VERSION);
  const adapterDir = join(demoDir, "adapters");
  mkdirSync(adapterDir, { recursive: true });
  const modelPath = join(demoDir, "demo-model.gguf");
  await writeOnce(modelPath, (tmp) => writeSyntheticModel({ ...DEMO_MODEL, out: tmp }));
  for (const [i, name] of DEMO_ADAPTERS.entries()) {
    // strength 1: each adapter clearly changes what the model generates.
    await writeOnce(join(adapterDir, `${name}.gguf`), (tmp) =>
      writeSyntheticAdapter({ model: modelPath, out: tmp, format: "gguf", rank: 8, alpha: 16, seed: 100 + i, strength: 1 }),
    );
  }
  return { modelPath, adapterDir, adapters: [...DEMO_ADAPTERS] };
}

/** alice and bob, passwords equal to their names, allowed every adapter, each with its own default. */
export async function demoTenants(adapters: string[]): Promise<Record<string, TenantConfig>> {
  const out: Record<string, TenantConfig> = {};
  for (const [i, name] of DEMO_TENANTS.entries()) {
    out[name] = { password_hash: await hashPassword(name), adapters: ["*"], default_adapter: adapters[i % Math.max(1, adapters.length)] ?? null };
  }
  return out;
}

/** The start-up text of demo mode: that the weights are random, how to configure real ones, how to send a prompt. */
export function demoInstructions(cfg: Config, demo: DemoAssets | null, demoTenantsOn: boolean, port = cfg.mqtt.port): string {
  const { host, base_topic: base, embedded, url } = cfg.mqtt;
  // Where a client on this machine reaches the broker: the embedded one, or the external one's URL.
  const external = !embedded && url ? new URL(url) : null;
  const h = external ? external.hostname : host === "0.0.0.0" ? "127.0.0.1" : host;
  if (external) port = Number(external.port || 1883);
  const lines: string[] = [];
  if (demo) {
    lines.push(
      "DEMO MODE: no model.path is configured, so a small RANDOM-WEIGHT demo model and demo adapters",
      `(${demo.adapters.join(", ")}) were written to ${demo.modelPath} and ${demo.adapterDir}. The answers are noise.`,
      "Use a real model: set model.path to a llama-family GGUF file (e.g. a TinyLlama or SmolLM Q4_K_M .gguf)",
      "in a config file (`edgelora serve --config my.yaml`, see config/default.yaml) or with EDGELORA_MODEL_PATH=/path/model.gguf,",
      "and register its LoRA adapters (llama.cpp LoRA GGUF or PEFT folders) under adapters.entries (name: path) or adapters.directory.",
    );
  }
  if (demoTenantsOn) {
    const defaults = DEMO_TENANTS.map((t) => `${t} (password ${t}, adapter ${cfg.tenants[t]?.default_adapter ?? "none"})`);
    lines.push(
      `Demo tenants: ${defaults.join(" and ")}.`,
      "Send a prompt (mqtt.js CLI):",
      `  npx mqtt sub -h ${h} -p ${port} -u alice -P alice -t '${base}/alice/response' -v`,
      `  npx mqtt pub -h ${h} -p ${port} -u alice -P alice -t '${base}/alice/request' -m '{"prompt":"Once upon a time","max_tokens":32,"temperature":0}'`,
      "or with mosquitto-clients:",
      `  mosquitto_sub -h ${h} -p ${port} -u bob -P bob -t '${base}/bob/response' -v`,
      `  mosquitto_pub -h ${h} -p ${port} -u bob -P bob -t '${base}/bob/request' -m 'Once upon a time'`,
    );
  }
  return lines.join("\n");
}
