// bench:router's trace through the real daemon: one tenant sends the requests one after another
// over the embedded broker, naming the best adapter or "auto", and the daemon's own slot pool
// counts the adapter loads.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { connectAsync } from "mqtt";
import pino from "pino";

import { loadConfig } from "../../src/config/index.js";
import { Controller } from "../../src/daemon/controller.js";
import { openNativeEngine } from "../../src/daemon/serve-command.js";
import { hashPassword } from "../../src/mqtt/password.js";

export interface DaemonTraceOptions {
  model: string;
  adapters: Record<string, string>; // name -> file
  slots: number;
  featureLayers: number;
  margin: number;
  k: number;
  examples: Record<string, string[]>; // router training, by adapter
}

/** Sends each request with `adapter` (a name, or "auto"); returns the adapter each reply names
 *  and the loads the daemon's slot pool made. */
export async function daemonTrace(o: DaemonTraceOptions, requests: { prompt: string; adapter: string }[]): Promise<{ served: string[]; loads: number }> {
  const c = loadConfig({ env: {} });
  c.daemon.data_dir = mkdtempSync(join(tmpdir(), "edgelora-bench-router-daemon-"));
  c.mqtt.port = 0;
  c.metrics.interval_s = 0;
  c.model.path = o.model;
  c.model.threads = 1;
  c.model.n_ctx = 256;
  c.model.lora_slots = o.slots;
  c.model.lora_max_rank = 8;
  c.router = { ...c.router, k: o.k, margin: o.margin, feature_layers: o.featureLayers, max_prompt_tokens: 64 };
  c.adapters.entries = o.adapters;
  const cheap = { N: 1024, r: 8, p: 1 };
  c.tenants = { bench: { password_hash: await hashPassword("bench", cheap), adapters: ["*"], default_adapter: null } };
  const controller = new Controller({
    config: c,
    logger: pino({ level: "silent" }),
    modelPath: o.model,
    openEngine: (path) => openNativeEngine(path, c),
    env: {},
  });
  await controller.start();
  const client = await connectAsync(`mqtt://127.0.0.1:${controller.brokerPort}`, { username: "bench", password: "bench", reconnectPeriod: 0 });
  try {
    const router = controller.context.router!;
    for (const [name, prompts] of Object.entries(o.examples)) if (prompts.length) await router.train(name, prompts);
    const replies = new Map<string, (adapter: string) => void>();
    client.on("message", (_t, payload) => {
      const r = JSON.parse(payload.toString()) as { transaction: string; status: string; adapter: string; error?: { message: string } };
      if (r.status !== "ok") throw new Error(`request ${r.transaction} failed: ${r.error?.message}`);
      replies.get(r.transaction)?.(r.adapter);
    });
    await client.subscribeAsync("edgelora/bench/response", { qos: 1 });
    const served: string[] = [];
    for (const [i, req] of requests.entries()) {
      const transaction = `q${i}`;
      const reply = new Promise<string>((resolve) => replies.set(transaction, resolve));
      const body = { prompt: req.prompt, adapter: req.adapter, max_tokens: 1, temperature: 0, transaction };
      await client.publishAsync("edgelora/bench/request", JSON.stringify(body), { qos: 1 });
      served.push(await reply);
    }
    return { served, loads: controller.context.slots!.stats().misses.hot };
  } finally {
    await client.endAsync(true);
    await controller.stop();
  }
}
