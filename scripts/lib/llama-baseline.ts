// llama.cpp (node-llama-cpp 3.21.1) as the speed baseline, in two builds: the CPU variant it picks
// by itself (AVX-512 here) and its AVX2 ("haswell") build, the like-for-like comparison for our
// AVX2 kernels. Each run is a child process (llama-child.ts), so both builds load in one benchmark.
//
// How node-llama-cpp finds its binaries: it imports "@node-llama-cpp/linux-x64" (resolved from its
// own location), whose getBinsDir() names bins/linux-x64/; the addon there loads every
// libggml-cpu-*.so of that folder and keeps the best one the CPU supports. So the AVX2 install is
// a temporary node_modules whose @node-llama-cpp/linux-x64 is a copy keeping only the haswell CPU
// library, every other package a symlink to the real one; the child runs with --preserve-symlinks
// so that node-llama-cpp, reached through its symlink, resolves the copy.
import { fork } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import type { LlamaChildResult, LlamaJob } from "./llama-child.js";
import type { Workload } from "./workload.js";

export interface LlamaInstall {
  name: string; // "default" | "avx2"
  entry: string; // node-llama-cpp's dist/index.js
  preserveSymlinks: boolean;
  dispose(): void;
}

const BINARIES_PACKAGE = ["@node-llama-cpp", "linux-x64"];
const KEEP_CPU_LIBRARY = "libggml-cpu-haswell.so";

export function defaultInstall(nodeModules: string): LlamaInstall {
  return {
    name: "default",
    entry: join(nodeModules, "node-llama-cpp", "dist", "index.js"),
    preserveSymlinks: false,
    dispose: () => undefined,
  };
}

/** A temporary install that can only load llama.cpp's AVX2 CPU build. */
export function avx2Install(nodeModules: string): LlamaInstall {
  const root = mkdtempSync(join(tmpdir(), "edgelora-llama-avx2-"));
  const nm = join(root, "node_modules");
  mkdirSync(nm);
  for (const entry of readdirSync(nodeModules)) {
    if (entry === BINARIES_PACKAGE[0] || entry.startsWith(".")) continue;
    symlinkSync(join(nodeModules, entry), join(nm, entry));
  }
  const scope = join(nm, BINARIES_PACKAGE[0]);
  mkdirSync(scope);
  const src = join(nodeModules, ...BINARIES_PACKAGE);
  const dst = join(scope, BINARIES_PACKAGE[1]);
  cpSync(src, dst, { recursive: true, filter: (from) => !from.startsWith(join(src, "bins")) });
  const bins = join("bins", "linux-x64");
  mkdirSync(join(dst, bins), { recursive: true });
  for (const f of readdirSync(join(src, bins))) {
    if (f.startsWith("libggml-cpu-") && f !== KEEP_CPU_LIBRARY) continue;
    copyFileSync(join(src, bins, f), join(dst, bins, f));
  }
  return {
    name: "avx2",
    entry: join(nm, "node-llama-cpp", "dist", "index.js"),
    preserveSymlinks: true,
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}

type ChildMessage = { ok: true; result: LlamaChildResult } | { ok: false; error: string };

/** One benchmark run of llama.cpp in a child process. */
export function runLlama(install: LlamaInstall, modelPath: string, threads: number, workload: Workload): Promise<LlamaChildResult> {
  const job: LlamaJob = { entry: install.entry, modelPath, threads, workload };
  const child = fork(fileURLToPath(new URL("./llama-child.js", import.meta.url)), [JSON.stringify(job)], {
    execArgv: install.preserveSymlinks ? ["--preserve-symlinks"] : [],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    let message: ChildMessage | undefined;
    child.on("message", (m: ChildMessage) => (message = m));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (message?.ok) resolve(message.result);
      else reject(new Error(`llama.cpp (${install.name}) child failed (exit ${code}): ${message?.error ?? "no result"}`));
    });
  });
}
