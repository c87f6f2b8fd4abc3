// Shared by the router tests: prompts on three clearly separated topics (TinyStories words, so
// stories260K knows them), synthetic adapters named after the topics, and a daemon config.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../../src/config/index.js";
import { writeSyntheticAdapter } from "../../src/lora/synthetic.js";
import { hashPassword } from "../../src/mqtt/password.js";
import { localConfig } from "./local-config.js";
import { TOPIC_WORDS, topicPrompt as anyTopicPrompt } from "../../scripts/lib/topic-prompts.js";

/** Three of the bench's topics. */
export const TOPICS = { dog: TOPIC_WORDS.dog, castle: TOPIC_WORDS.castle, sea: TOPIC_WORDS.sea } as const;
export type Topic = keyof typeof TOPICS;

export const topicPrompt = (topic: Topic, seed: number): string => anyTopicPrompt(topic, seed);
export const topicPrompts = (topic: Topic, from: number, n: number): string[] => Array.from({ length: n }, (_, i) => topicPrompt(topic, from + i));

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
  const c = localConfig({ model, dataDir: dataDir ?? mkdtempSync(join(tmpdir(), "edgelora-router-")), threads: 1, nCtx: 256, loraSlots: 2, loraMaxRank: 8 });
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
