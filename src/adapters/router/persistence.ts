// The router's state in the data dir (<data_dir>/router.json): every example prompt with its
// features, the example files already read, and the trained classifier. Written to a temporary
// file then renamed, so a power cut never leaves half a file.
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { ClassifierState } from "./classifier.js";

/** admin: router/train; file: an examples.jsonl beside the adapter; profile: labelled by likelihood. */
export type ExampleSource = "admin" | "file" | "profile";

export interface StoredExample {
  prompt: string;
  source: ExampleSource;
  x: number[]; // features under `spec`
}

export interface RouterState {
  version: 1;
  spec: string; // FeatureExtractor.spec the features were computed with
  examples: Record<string, StoredExample[]>; // adapter -> examples
  files: Record<string, string>; // adapter -> identity (path, size, mtime) of the examples file read
  classifier: ClassifierState | null;
}

export function emptyState(spec: string): RouterState {
  return { version: 1, spec, examples: {}, files: {}, classifier: null };
}

/** The stored state, or null when there is none; throws on a file that is not router state. */
export async function loadState(file: string): Promise<RouterState | null> {
  if (!existsSync(file)) return null;
  const s = JSON.parse(await readFile(file, "utf8")) as Partial<RouterState>;
  if (s.version !== 1 || typeof s.spec !== "string" || typeof s.examples !== "object" || s.examples === null)
    throw new Error(`${file} is not edgelora router state (version 1)`);
  return { version: 1, spec: s.spec, examples: s.examples, files: s.files ?? {}, classifier: s.classifier ?? null };
}

export async function saveState(file: string, state: RouterState): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(`${file}.tmp`, JSON.stringify(state, (_k, v: unknown) => (typeof v === "number" ? Number(v.toPrecision(7)) : v)));
  await rename(`${file}.tmp`, file);
}
