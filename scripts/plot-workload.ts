// Draws a bench:workload run's figures again from its JSON (after a change to the figures, or for another TTFT CDF
// rate), into the run's folder.
// Usage: node dist/scripts/plot-workload.js bench-results/workload-<date>.json [--cdf-rate R]
import { readFileSync } from "node:fs";
import { Command } from "commander";
import type { RequestRecord, Summary } from "../src/bench/metrics.js";
import { sweepPoint, writeWorkloadFigures } from "./lib/workload-plots.js";

interface Results {
  outDir: string;
  options: { type: string; adapters: number; alpha: number; cv: number; cdfRate?: number };
  runs: { server: string; rate: number; summary: Summary; records: RequestRecord[] }[];
}

const program = new Command().argument("<results>", "bench-results/workload-<date>.json").option("--cdf-rate <r>", "rate of the TTFT CDF", Number).parse();
const r = JSON.parse(readFileSync(program.args[0], "utf8")) as Results;
const o = r.options;
const cdfRate = program.opts<{ cdfRate?: number }>().cdfRate ?? o.cdfRate ?? Math.max(...r.runs.map((x) => x.rate));
const points = r.runs.map((x) => sweepPoint(x.server, x.rate, x.summary, x.records));
writeWorkloadFigures(points, r.outDir, cdfRate, `${o.type}, ${o.adapters} adapters, alpha ${o.alpha}, cv ${o.cv}`).then(
  (files) => files.forEach((f) => process.stderr.write(`wrote ${f}\n`)),
  (err: unknown) => {
    process.stderr.write(`plot-workload: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
