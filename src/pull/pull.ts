// `edgelora pull`: a model or adapter into <data_dir>/models or <data_dir>/adapters, then checked:
// a model is loaded by the engine (what `info` does), an adapter GGUF must be a LoRA adapter, a
// PEFT folder must parse. A PEFT folder's two files are fetched into a hidden .<name>.partial
// folder that is renamed when both are complete, so a half folder is never under the final name.
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";

import { readPeftAdapter } from "../cli/peft-to-gguf.js";
import { NativeModel } from "../engine/model.js";
import type { ModelInfo } from "../engine/types.js";
import { metaValue, readGGUF } from "../gguf/reader.js";
import { download, type DownloadOptions, type DownloadResult } from "./download.js";
import type { DownloadReporter } from "./progress.js";
import { pullDir, type PullPlan } from "./source.js";

export interface PullOptions extends Pick<DownloadOptions, "openPart" | "fetchImpl" | "retries" | "retryDelayMs"> {
  dataDir: string;
  sha256?: string;
  force?: boolean; // fetch again even if the final file exists
  reporter?: (label: string) => DownloadReporter;
}

export interface PullResult {
  path: string;
  alreadyThere: boolean;
  downloads: DownloadResult[];
}

export async function pull(plan: PullPlan, o: PullOptions): Promise<PullResult> {
  if (o.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(o.sha256)) throw new Error("--sha256 must be 64 hex digits");
  if (o.sha256 !== undefined && plan.peft) throw new Error("--sha256 names one file; a PEFT folder has two");
  const dir = pullDir(o.dataDir, plan.kind);
  const final = join(dir, plan.name);
  if (existsSync(final) && !o.force) return { path: final, alreadyThere: true, downloads: [] };
  await mkdir(dir, { recursive: true });
  const target = plan.peft ? join(dir, `.${plan.name}.partial`) : dir;
  await mkdir(target, { recursive: true });
  const downloads: DownloadResult[] = [];
  for (const f of plan.files) {
    const reporter = o.reporter?.(f.file);
    try {
      downloads.push(await download(f.url, join(target, f.file), {
        sha256: o.sha256, onProgress: reporter ? (p) => reporter.onProgress(p) : undefined,
        openPart: o.openPart, fetchImpl: o.fetchImpl, retries: o.retries, retryDelayMs: o.retryDelayMs,
      }));
    } finally {
      reporter?.finish();
    }
  }
  if (plan.peft) {
    await rm(final, { recursive: true, force: true });
    await rename(target, final);
  }
  return { path: final, alreadyThere: false, downloads };
}

/** Checks a pulled file with the engine or the format's reader; returns what it is, or throws
 *  naming the problem. */
export async function checkPulled(plan: PullPlan, path: string): Promise<{ info?: ModelInfo; summary: string }> {
  if (plan.kind === "model") {
    const m = await NativeModel.load(path);
    try {
      const i = m.info;
      const types = Object.entries(i.weightTypes).map(([t, n]) => `${t} x${n}`).join(", ");
      return { info: i, summary: `${i.arch} model '${i.name}', ${i.nParams} parameters (${types}), vocab ${i.nVocab}` };
    } finally {
      m.dispose();
    }
  }
  if (plan.peft) {
    const a = readPeftAdapter(path);
    return { summary: `PEFT LoRA adapter, rank ${a.rank}, alpha ${a.alpha}, ${a.pairs.length} adapted projections` };
  }
  const g = readGGUF(path);
  if (metaValue(g, "general.type") !== "adapter" || metaValue(g, "adapter.type") !== "lora")
    throw new Error(`${path} is not a llama.cpp LoRA adapter (general.type '${String(metaValue(g, "general.type"))}')`);
  return { summary: `LoRA adapter GGUF for ${String(metaValue(g, "general.architecture"))}, ${g.tensors.length / 2} adapted projections` };
}
