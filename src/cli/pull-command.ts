// `edgelora pull SOURCE`: download a model (GGUF) or a LoRA adapter (GGUF or PEFT folder) into the
// data dir (src/pull/), with progress, resume, size and SHA-256 checks, then check it.
import type { Command } from "commander";

import { loadConfig } from "../config/index.js";
import { checkPulled, pull } from "../pull/pull.js";
import { downloadReporter } from "../pull/progress.js";
import { planPull } from "../pull/source.js";

interface PullCliOptions {
  adapter?: boolean;
  name?: string;
  revision?: string;
  sha256?: string;
  force?: boolean;
  dataDir?: string;
  config?: string;
}

async function runPull(source: string, o: PullCliOptions): Promise<void> {
  const dataDir = o.dataDir ?? loadConfig({ file: o.config }).daemon.data_dir;
  const plan = planPull(source, { kind: o.adapter ? "adapter" : "model", name: o.name, revision: o.revision, hfEndpoint: process.env.HF_ENDPOINT });
  const r = await pull(plan, { dataDir, sha256: o.sha256, force: o.force, reporter: (label) => downloadReporter(label) });
  const say = (s: string) => process.stderr.write(`${s}\n`);
  if (r.alreadyThere) say(`${r.path} is already there (--force fetches it again)`);
  for (const d of r.downloads) {
    const resumed = d.resumedFrom > 0 ? `, resumed from byte ${d.resumedFrom}` : "";
    say(`${d.path}: ${d.bytes} bytes, sha256 ${d.sha256}${d.sha256Source ? ` (verified against the ${d.sha256Source.replace("+", " and the ")})` : " (no checksum to verify against)"}${resumed}`);
  }
  let summary: string;
  try {
    summary = (await checkPulled(plan, r.path)).summary;
  } catch (e) {
    throw new Error(`${r.path} was downloaded, but ${(e as Error).message}`);
  }
  say(`${r.path}: ${summary}`);
  if (plan.kind === "model") say(`serve it with model.path: ${plan.name.replace(/\.gguf$/, "")} (or EDGELORA_MODEL_PATH=${plan.name.replace(/\.gguf$/, "")})`);
  else say(`register it with adapters.directory: ${r.path.slice(0, r.path.length - plan.name.length - 1)} or adapters.entries: {name: ${r.path}}`);
  process.stdout.write(`${r.path}\n`);
}

export function registerPullCommand(program: Command): void {
  program
    .command("pull <source>")
    .description("download a GGUF model (or, with --adapter, a LoRA adapter: GGUF file or PEFT folder) into the data dir; " +
      "SOURCE is an http(s) URL or hf:<owner>/<repo>/<file>")
    .option("--adapter", "a LoRA adapter (into <data_dir>/adapters) instead of a model (<data_dir>/models)")
    .option("--name <name>", "file or folder name to save under (default: from the source)")
    .option("--revision <rev>", "hf: sources: branch, tag or commit (default main)")
    .option("--sha256 <hex>", "expected SHA-256 of the file (checked besides any the server gives)")
    .option("--force", "download again even if it is already there")
    .option("--data-dir <dir>", "instead of the config's daemon.data_dir")
    .option("-c, --config <file>", "config file whose daemon.data_dir to use")
    .action((source: string, o: PullCliOptions) => runPull(source, o));
}
