// The workload sweep's figures, as the paper draws them, for every server on the same axes: throughput vs
// offered rate, SLO attainment vs offered rate, and the TTFT CDF at one rate. Vega-Lite specs rendered headless
// by vega to SVG, and to PNG by resvg (a prebuilt binary, no browser).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { RequestRecord, Summary } from "../../src/bench/metrics.js";
import { LABEL, type Server } from "./workload-servers.js";

export interface SweepPoint {
  server: string;
  rate: number; // offered (trace parameter)
  requestsPerS: number;
  tokensPerS: number;
  generatedTokensPerS: number; // unfinished requests' tokens too: the better measure of capacity in a short overloaded run
  sloAttainment: number;
  ttftsMs: number[]; // of answered requests
  requests: number;
}

/** A run's figures for the plots. */
export function sweepPoint(server: string, rate: number, summary: Summary, records: RequestRecord[]): SweepPoint {
  return {
    server: LABEL[server as Server] ?? server, rate, requestsPerS: summary.requestsPerS, tokensPerS: summary.tokensPerS,
    generatedTokensPerS: summary.generatedTokensPerS, sloAttainment: summary.sloAttainment, requests: summary.requests,
    ttftsMs: records.filter((r) => r.error === null && r.firstTokenMs !== null).map((r) => r.firstTokenMs! - r.arrivalMs),
  };
}

const WIDTH = 420;
const HEIGHT = 280;
const LEGEND = { orient: "bottom", direction: "vertical", labelLimit: 0 };
const CONFIG = { font: "DejaVu Sans" };

async function render(spec: TopLevelSpec, dir: string, name: string): Promise<string[]> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { background: "white", fitTo: { mode: "zoom", value: 2 }, font: { loadSystemFonts: true } }).render().asPng();
  const svgPath = join(dir, `${name}.svg`);
  const pngPath = join(dir, `${name}.png`);
  writeFileSync(svgPath, svg);
  writeFileSync(pngPath, png);
  return [svgPath, pngPath];
}

function lineSpec(title: string, values: object[], y: { field: string; title: string; format?: string }, extra: object = {}): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "rate", type: "quantitative", title: "offered load (requests/s)" },
      y: { field: y.field, type: "quantitative", title: y.title, axis: y.format ? { format: y.format } : {} },
      color: { field: "server", type: "nominal", title: null, legend: LEGEND },
    },
    config: CONFIG,
    ...extra,
  } as TopLevelSpec;
}

/** Writes throughput, tokens, slo and ttft-cdf (each .svg and .png) into `dir`; returns the paths. */
export async function writeWorkloadFigures(points: SweepPoint[], dir: string, cdfRate: number, caption: string): Promise<string[]> {
  const rows = points.map((p) => ({
    server: p.server, rate: p.rate, requestsPerS: p.requestsPerS, generatedTokensPerS: p.generatedTokensPerS, sloAttainment: p.sloAttainment,
  }));
  const out: string[] = [];
  out.push(...(await render(lineSpec(`Throughput (${caption})`, rows, { field: "requestsPerS", title: "completed requests/s" }), dir, "throughput")));
  out.push(...(await render(lineSpec(`Tokens generated (${caption})`, rows, { field: "generatedTokensPerS", title: "generated tokens/s" }), dir, "tokens")));
  out.push(
    ...(await render(
      lineSpec(`SLO attainment, TTFT <= 6 s (${caption})`, rows, { field: "sloAttainment", title: "requests within the SLO", format: "%" }),
      dir,
      "slo",
    )),
  );
  const cdf: { server: string; ttftS: number; share: number }[] = [];
  for (const p of points.filter((q) => q.rate === cdfRate)) {
    const sorted = [...p.ttftsMs].sort((a, b) => a - b);
    // The share is of all requests: unanswered ones keep the curve below 1.
    sorted.forEach((t, i) => cdf.push({ server: p.server, ttftS: t / 1000, share: (i + 1) / p.requests }));
  }
  const cdfSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `TTFT CDF at ${cdfRate} requests/s (${caption})`,
    width: WIDTH,
    height: HEIGHT,
    data: { values: cdf },
    mark: { type: "line", interpolate: "step-after" },
    encoding: {
      x: { field: "ttftS", type: "quantitative", title: "time to first token (s)", scale: { type: "symlog" } },
      y: { field: "share", type: "quantitative", title: "share of requests", axis: { format: "%" }, scale: { domain: [0, 1] } },
      color: { field: "server", type: "nominal", title: null, legend: LEGEND },
    },
    config: CONFIG,
  } as TopLevelSpec;
  out.push(...(await render(cdfSpec, dir, "ttft-cdf")));
  return out;
}
