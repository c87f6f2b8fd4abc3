// What `edgelora pull SOURCE` fetches and where it goes. A model is one GGUF file; an adapter is a
// llama.cpp LoRA GGUF file or a PEFT folder (adapter_config.json + adapter_model.safetensors).
// SOURCE is an http(s) URL, or `hf:<owner>/<repo>/<path>` for a file (or, for a PEFT adapter, a
// folder; `hf:<owner>/<repo>` is the repository's root) on the Hugging Face hub, fetched from
// $HF_ENDPOINT (default https://huggingface.co) at `resolve/<revision>/<path>`, as the hub's own
// clients do.
import { join } from "node:path";

export type PullKind = "model" | "adapter";

export interface PullFile {
  url: string;
  file: string; // name under the destination folder
}

export interface PullPlan {
  kind: PullKind;
  name: string; // file name (GGUF) or folder name (PEFT)
  peft: boolean;
  files: PullFile[];
}

export const PEFT_FILES = ["adapter_config.json", "adapter_model.safetensors"] as const;

export interface SourceOptions {
  kind: PullKind;
  name?: string; // overrides the name taken from the source
  revision?: string; // hf: only (default "main")
  hfEndpoint?: string;
}

const SAFE_NAME = /^[A-Za-z0-9._-]+$/;

function lastSegment(path: string): string {
  return path.split("/").filter(Boolean).pop() ?? "";
}

/** Base URL and path inside it of a source. */
function resolveBase(source: string, o: SourceOptions): { base: string; path: string } {
  if (source.startsWith("hf:")) {
    const parts = source.slice(3).split("/").filter(Boolean);
    if (parts.length < 2) throw new Error(`'${source}': expected hf:<owner>/<repo>/<file> (or, for a PEFT adapter, hf:<owner>/<repo>[/<folder>])`);
    const [owner, repo, ...rest] = parts;
    const endpoint = (o.hfEndpoint ?? "https://huggingface.co").replace(/\/+$/, "");
    const rev = encodeURIComponent(o.revision ?? "main");
    return { base: `${endpoint}/${owner}/${repo}/resolve/${rev}/`, path: rest.join("/") || "" };
  }
  let u: URL;
  try {
    u = new URL(source);
  } catch {
    throw new Error(`'${source}' is neither an http(s) URL nor hf:<owner>/<repo>/<file>`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`'${source}': only http(s) URLs and hf: sources can be pulled`);
  if (o.revision !== undefined) throw new Error("--revision applies to hf: sources only");
  return { base: "", path: u.toString() };
}

export function planPull(source: string, o: SourceOptions): PullPlan {
  const { base, path } = resolveBase(source, o);
  const pathOnly = base ? path : new URL(path).pathname;
  const isGguf = pathOnly.toLowerCase().endsWith(".gguf");
  if (o.kind === "model" && !isGguf) throw new Error(`'${source}': a model is one .gguf file (for a PEFT adapter folder use --adapter)`);
  if (isGguf) {
    const name = o.name ?? decodeURIComponent(lastSegment(pathOnly));
    if (!SAFE_NAME.test(name) || !name.endsWith(".gguf")) throw new Error(`'${name}': the file name must end in .gguf and use only letters, digits, '.', '_' and '-'`);
    return { kind: o.kind, name, peft: false, files: [{ url: base ? base + path.split("/").map(encodeURIComponent).join("/") : path, file: name }] };
  }
  // A PEFT folder: its two files.
  const folder = base ? base + (path ? path.split("/").map(encodeURIComponent).join("/") + "/" : "") : path.endsWith("/") ? path : `${path}/`;
  const fromSource = base ? lastSegment(path) || lastSegment(source.slice(3)) : decodeURIComponent(lastSegment(pathOnly));
  const name = o.name ?? fromSource;
  if (!SAFE_NAME.test(name)) throw new Error(`'${name}': give the adapter a name (--name) of letters, digits, '.', '_' and '-'`);
  return { kind: "adapter", name, peft: true, files: PEFT_FILES.map((f) => ({ url: folder + f, file: f })) };
}

/** Where pulled files live under the data dir. */
export function pullDir(dataDir: string, kind: PullKind): string {
  return join(dataDir, kind === "model" ? "models" : "adapters");
}
