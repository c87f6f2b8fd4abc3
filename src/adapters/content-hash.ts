// What identifies an adapter's bytes: a cheap fingerprint (size and modification time, from stat)
// checked at every start for every registered adapter, and a sha256 of the contents checked before
// each load from the file. A PEFT adapter is its adapter_config.json and adapter_model.safetensors.
import { createHash } from "node:crypto";
import { createReadStream, statSync, type Stats } from "node:fs";
import { join } from "node:path";

export interface FileStamp {
  size: number;
  mtime_ms: number;
}

/** The files whose bytes make up the adapter at `path` (a GGUF file or a PEFT directory). */
function parts(path: string): string[] {
  return statSync(path).isDirectory() ? [join(path, "adapter_config.json"), join(path, "adapter_model.safetensors")] : [path];
}

/** Total size and latest modification time of the adapter's files; throws when one is missing.
 *  `st`: the path's stat when the caller has it (one stat for a GGUF file instead of two). */
export function stampOf(path: string, st?: Stats): FileStamp {
  if (st?.isFile()) return { size: st.size, mtime_ms: Math.floor(st.mtimeMs) };
  let size = 0;
  let mtime = 0;
  for (const p of parts(path)) {
    const st = statSync(p);
    size += st.size;
    mtime = Math.max(mtime, Math.floor(st.mtimeMs));
  }
  return { size, mtime_ms: mtime };
}

/** Times within a millisecond are the same: tools that restore a time (cp -p, tar) round differently. */
export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && Math.abs(a.mtime_ms - b.mtime_ms) <= 1;
}

/** sha256 (hex) of the adapter's files, read as streams (no whole-file buffer). */
export async function contentHash(path: string): Promise<string> {
  const h = createHash("sha256");
  for (const p of parts(path)) {
    for await (const chunk of createReadStream(p, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  }
  return h.digest("hex");
}
