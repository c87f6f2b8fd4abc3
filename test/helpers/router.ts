// Shared by the router tests: prompts on three clearly separated topics (TinyStories words, so
// stories260K knows them), synthetic adapters named after the topics, and a daemon config.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, type Config } from "../../src/config/index.js";
import { writeSyntheticAdapter } from "../../src/lora/synthetic.js";
import { hashPassword } from "../../src/mqtt/password.js";

export const TOPICS = {
  dog: ["dog", "puppy", "ball", "park", "bark", "bone", "run", "tail"],
  castle: ["princess", "castle", "king", "queen", "crown", "dragon", "knight", "prince"],
  sea: ["fish", "sea", "boat", "water", "wave", "sand", "shell", "swim"],
} as const;
export type Topic = keyof typeof TOPICS;

const TEMPLATES = [
  (w: string[]) => `The ${w[0]} and the ${w[1]} went to see the ${w[2]}. The ${w[3]} liked the ${w[4]}.`,
  (w: string[]) => `One day a ${w[0]} found a ${w[1]} near the ${w[2]}.`,
  (w: string[]) => `Lily saw a ${w[0]}. She told her mom about the ${w[1]}, the ${w[2]} and the ${w[3]}.`,
  (w: string[]) => `Tom wanted to play with the ${w[0]}. He ran to the ${w[1]} with his ${w[2]}.`,
  (w: string[]) => `There was a big ${w[0]} and a little ${w[1]}. They loved the ${w[2]} and the ${w[3]} very much.`,
  (w: string[]) => `"Look at the ${w[0]}!" said the ${w[1]}. The ${w[2]} was happy.`,
];

/** A short story prompt about `topic`: a template and words drawn by `seed` (distinct seeds give
 *  distinct prompts but for rare repeats). */
export function topicPrompt(topic: Topic, seed: number): string {
  let h = (seed + 1) * 0x9e3779b1 + topic.length * 0x85ebca6b;
  const next = () => {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + 0x6d2b79f5;
    return ((h ^ (h >>> 13)) >>> 0) / 2 ** 32;
  };
  const w = TOPICS[topic];
  const words = Array.from({ length: 5 }, () => w[Math.floor(next() * w.length)]);
  return TEMPLATES[Math.floor(next() * TEMPLATES.length)](words);
}

export function topicPrompts(topic: Topic, from: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => topicPrompt(topic, from + i));
}

/** One rank-4 synthetic adapter per topic for the model, in `dir`. */
export async function writeTopicAdapters(model: string, dir: string): Promise<Record<Topic, string>> {
  const out = {} as Record<Topic, string>;
  for (const [i, topic] of (Object.keys(TOPICS) as Topic[]).entries()) {
    out[topic] = join(dir, `${topic}.gguf`);
    await writeSyntheticAdapter({ model, out: out[topic], format: "gguf", rank: 4, seed: 50 + i, strength: 0.5 });
  }
  return out;
}

export const FAST = { N: 1024, r: 8, p: 1 };

/** The real daemon on `model` with the topic adapters: alice may use dog and castle (default
 *  dog), bob every adapter (default "auto"), carol only sea (default "auto"). */
export async function routerConfig(model: string, adapters: Record<string, string>, dataDir?: string): Promise<Config> {
  const c = loadConfig({ env: {} });
  c.daemon.data_dir = dataDir ?? mkdtempSync(join(tmpdir(), "edgelora-router-"));
  c.daemon.log_level = "silent";
  c.mqtt.port = 0;
  c.metrics.interval_s = 0;
  c.model.path = model;
  c.model.threads = 1;
  c.model.n_ctx = 256;
  c.model.lora_slots = 2;
  c.model.lora_max_rank = 8;
  c.scheduler.max_sequences = 4;
  c.router.margin = 0;
  c.adapters.entries = adapters;
  c.tenants = {
    alice: { password_hash: await hashPassword("alice", FAST), adapters: ["dog", "castle"], default_adapter: "dog" },
    bob: { password_hash: await hashPassword("bob", FAST), adapters: ["*"], default_adapter: "auto" },
    carol: { password_hash: await hashPassword("carol", FAST), adapters: ["sea"], default_adapter: "auto" },
  };
  c.admin = { username: "admin", password_hash: await hashPassword("admin", FAST) };
  return c;
}
