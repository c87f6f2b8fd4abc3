// A model named in the config or on the command line: a path, or the name of a model pulled into
// <data_dir>/models (`edgelora pull`), with or without its .gguf.
import { existsSync } from "node:fs";
import { join } from "node:path";

import { pullDir } from "./source.js";

export function resolveModelRef(ref: string, dataDir: string): string {
  if (existsSync(ref) || ref.includes("/")) return ref;
  for (const candidate of [ref, `${ref}.gguf`]) {
    const p = join(pullDir(dataDir, "model"), candidate);
    if (existsSync(p)) return p;
  }
  return ref;
}
