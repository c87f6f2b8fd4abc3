// Loading the C++ addon and the types of its JS surface (native/addon/*.cpp). Which file is
// loaded (a source build, the prebuilt for this platform, EDGELORA_ADDON) is addon-path.ts's.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { addonCandidates, loadFirstAddon, type AddonCandidate, type Loaded } from "./addon-path.js";

import type { LoraPoolType, ModelInfo } from "./types.js";

/** ModelInfo as the addon returns it: the per-type counts still in their "q4_0:169,f32:49" form. */
export type AddonModelInfo = Omit<ModelInfo, "weightTypes" | "packedTypes"> & { weightTypes: string; packedTypes: string };

export interface AddonContextParams {
  threads?: number;
  nCtx?: number;
  nSeqMax?: number;
  nBatchMax?: number;
  kvType?: "f32" | "f16";
  kvBlocks?: number;
  kvBlockSize?: number;
  loraSlots?: number;
  loraMaxRank?: number;
  loraPoolType?: LoraPoolType;
}

export interface AddonSamplerParams {
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  seed?: number;
}

type Ints = Int32Array | number[];

export interface AddonBatch {
  tokens: Ints;
  pos: Ints;
  seq: Ints;
  loraSlot?: Ints;
  loraScale?: Float32Array | number[];
  /** Which tokens want logits; absent = only the last one. */
  logits?: Uint8Array | Int8Array | boolean[] | number[];
}

export interface AddonDecodeResult {
  tokens: Int32Array; // sampled id per logits-wanted token; -1 where the sampler was null
  logprobs: Float32Array; // log-probability of each sampled id (NaN where null)
  logits: Float32Array; // raw logits, n_vocab floats per null-sampler entry, in order
  ms: number;
}

export interface AddonSampler {
  readonly __brand: "Sampler";
}

export interface AddonLoraInfo {
  slot: number;
  loaded: boolean;
  rank: number;
  alpha: number;
  factor: number; // multiplies B(Ax) before the per-token scale
  bytes: number;
  modules: string; // "q,v,down"
  nSequences: number;
  path: string;
}

export interface AddonContext {
  loraLoad(slot: number, path: string): Promise<AddonLoraInfo>;
  loraUnload(slot: number): void;
  loraSlotInfo(slot: number): AddonLoraInfo;
  /** The slot's image: its exact bytes in the pool's layout after a small header (edgelora.h). */
  loraExport(slot: number): Buffer;
  /** Copies an image from loraExport into a slot; refuses one made for another model/pool type/layout. */
  loraImport(slot: number, image: Buffer): Promise<AddonLoraInfo>;
  decode(batch: AddonBatch, samplers: (AddonSampler | null)[]): Promise<AddonDecodeResult>;
  /** el_embed: mean hidden state after nLayers layers per prompt (nPrompts x nEmbd floats). */
  embed(tokens: Int32Array, nTokens: Int32Array, nLayers: number): Promise<Float32Array>;
  /** el_token_logprobs: log P(next given token) per position, prompt after prompt (sum of nTokens[p] - 1). */
  tokenLogprobs(tokens: Int32Array, nTokens: Int32Array, loraSlot?: Int32Array, loraScale?: Float32Array): Promise<Float32Array>;
  seqClear(seq: number): void;
  seqLength(seq: number): number;
  stats(): {
    kvBlocksTotal: number;
    kvBlocksUsed: number;
    kvBlockSize: number;
    kvBytes: number;
    threads: number;
    /** How the compute threads waited since the context was created, summed over threads. */
    poolSpinNs: number; // CPU time polling for work or for each other
    poolSleepNs: number; // asleep in the kernel
    poolSleeps: number;
    busy: boolean;
    nCtx: number;
    nSeqMax: number;
    nBatchMax: number;
  };
  dispose(): void;
}

export interface AddonModel {
  info(): AddonModelInfo;
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array;
  tokenPiece(id: number, renderSpecial: boolean): Buffer;
  isEog(id: number): boolean;
  metaString(key: string): string | null;
  createContext(params: AddonContextParams): Promise<AddonContext>;
  dispose(): void;
}

export interface Addon {
  loadModel(path: string, progress?: (bytesDone: number, bytesTotal: number) => void): Promise<AddonModel>;
  kernelPath(): string;
  setKernelPath(name: string): void;
  /** One datagram to systemd's NOTIFY_SOCKET (a path, or @name for the abstract namespace), from this process. */
  sdNotify(socket: string, message: string): void;
  Sampler: new (params: AddonSamplerParams) => AddonSampler;
}

/** The package root: the nearest folder above this file that holds package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("edgelora: cannot find the package root (no package.json above the code)");
    dir = up;
  }
  return dir;
}

let cached: Loaded<Addon> | undefined;

export function loadAddon(): Addon {
  cached ??= loadFirstAddon<Addon>(addonCandidates(packageRoot()));
  return cached.addon;
}

/** Which file loadAddon() loaded (after it has run), and from where: for `info` and the install check. */
export function loadedAddon(): AddonCandidate | null {
  return cached?.from ?? null;
}
