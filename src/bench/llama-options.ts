// The options every llama.cpp (node-llama-cpp) baseline and oracle run is opened with, in one place:
// the prebuilt CPU binary that ships with the package (never a build or a download, ORACLE.md), errors
// only on the log; and a context serving one LoRA adapter, the way a node-llama-cpp user serves one.
// Types only from node-llama-cpp: it is a devDependency, loaded at run time by the callers.
import type { LlamaContextOptions, LlamaLogLevel, LlamaOptions } from "node-llama-cpp";

export const LLAMA_OPTIONS = {
  gpu: false,
  build: "never",
  usePrebuiltBinaries: true,
  skipDownload: true,
  logLevel: "error" as LlamaLogLevel,
} satisfies LlamaOptions;

export interface LoraContextSpec {
  filePath: string; // the adapter, applied at scale 1
  contextSize: number;
  threads?: number; // per context, exactly (ideal = min); default: node-llama-cpp's
  batchSize?: number;
}

/** One sequence, one adapter. */
export function loraContextOptions(s: LoraContextSpec): LlamaContextOptions {
  return {
    contextSize: s.contextSize,
    ...(s.batchSize !== undefined ? { batchSize: s.batchSize } : {}),
    sequences: 1,
    ...(s.threads !== undefined ? { threads: { ideal: s.threads, min: s.threads } } : {}),
    lora: { adapters: [{ filePath: s.filePath, scale: 1 }] },
  };
}
